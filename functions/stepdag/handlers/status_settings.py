"""Status-recorder Lambda settings: the API function's (``api_settings.py``), read the same way.

Validated at import (cold start), one message naming every bad variable.  The recorder
writes the store the node runner and the API use, and maps state machines to workflows
to adopt executions it has no record of:

    STEPDAG_TABLE_NAME, STEPDAG_BUCKET_NAME, STEPDAG_OFFLOAD_THRESHOLD_BYTES,
    STEPDAG_RETENTION_DAYS, POWERTOOLS_*, LOG_LEVEL   as for the node runner
    STEPDAG_STATE_MACHINES   required: JSON ``{"<workflow>": "<state machine or alias ARN>"}``;
                             only the state machine's name in each ARN is used

The workflow variables are accepted but unused: the recorder never imports user code.
"""

from __future__ import annotations

from collections.abc import Mapping

from stepdag.handlers.api_settings import ApiSettings, load_api_settings

StatusSettings = ApiSettings


def load_status_settings(environ: Mapping[str, str] | None = None) -> StatusSettings:
    return load_api_settings(environ, function="status-recorder")

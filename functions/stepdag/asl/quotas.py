"""AWS's documented quotas on definitions and names (service-quotas page).

Payload (256 KiB) and history (25,000 events) limits are enforced where the data is
produced: ``states/base.py`` and ``history.py``.
"""

from __future__ import annotations

import re
from typing import Final

# "Maximum size of state machine definition: 1 MB" (a hard quota).
MAX_DEFINITION_BYTES: Final = 1024 * 1024
# "Names of state machines, executions, and activity tasks must not exceed 80 characters
# ... and must not contain: whitespace, wildcard characters (? *), bracket characters
# (< > { } [ ]), special characters (" # % \ ^ | ~ ` $ & , ; : /), control characters
# (\u0000 - \u001f or \u007f - \u009f)."
MAX_NAME_LENGTH: Final = 80
_FORBIDDEN: Final = re.compile(r"[\s?*<>{}\[\]\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def definition_size_problem(text: str) -> str | None:
    """Why a definition (its JSON text) is over the quota, or None."""
    if len(text) <= MAX_DEFINITION_BYTES // 4:
        return None  # at most 4 UTF-8 bytes per character
    size = len(text.encode("utf-8"))
    if size <= MAX_DEFINITION_BYTES:
        return None
    return (
        f"definition: {size} bytes exceeds the maximum state machine definition size "
        f"of {MAX_DEFINITION_BYTES} bytes (1 MiB)"
    )


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid execution/state machine name, or None."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"Invalid {kind} name {name!r}: must be 1 to {MAX_NAME_LENGTH} characters long"
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        return f"Invalid {kind} name {name!r}: character {bad.group()!r} is not allowed"
    return None


__all__ = ["MAX_DEFINITION_BYTES", "MAX_NAME_LENGTH", "definition_size_problem", "name_problem"]

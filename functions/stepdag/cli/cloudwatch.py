"""The node runners' log lines from CloudWatch Logs (``stepdag logs`` on AWS).

The lines are the JSON documents Powertools' Logger prints in the node-runner Lambda,
the same shape ``runtime/logs.py`` captures for local runs, so one view renders both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from stepdag.runtime.logs import LogEntry, matches

# The window around an execution that FilterLogEvents scans: its lines cannot be older
# than its start; a little slack for clock skew between Step Functions and Lambda.
_SLACK = timedelta(minutes=2)


class CloudWatchLogs:
    """The node runners' log groups, read with ``FilterLogEvents``.

    The filter pattern is the execution id as a quoted term (every Powertools line of
    the invocation carries it as ``correlation_id``); the JSON is then parsed and
    filtered exactly (node, map index), because a term also matches ``…:run10`` for
    ``…:run1``.  Lines that are not JSON (``START RequestId…``) are ignored.
    """

    def __init__(
        self,
        groups: Sequence[str],
        *,
        session: Any = None,
        client: Any = None,
        region: str | None = None,
        limit: int = 10_000,
    ) -> None:
        self.groups = tuple(groups)
        self._session = session
        self._region = region
        self._client = client
        self.limit = limit

    def client(self) -> Any:
        if self._client is None:
            if self._session is None:
                # Here, not at the top: boto3 is the aws extra, and slow to import.
                import boto3  # type: ignore[import-untyped]

                self._session = boto3.session.Session(region_name=self._region)
            self._client = self._session.client("logs")
        return self._client

    def read_window(
        self,
        execution: str,
        *,
        node: str | None = None,
        index: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LogEntry]:
        found: list[tuple[int, int, LogEntry]] = []
        kwargs: dict[str, Any] = {"filterPattern": json.dumps(execution)}
        if start is not None:
            kwargs["startTime"] = int((start - _SLACK).timestamp() * 1000)
        if end is not None:
            kwargs["endTime"] = int((end + _SLACK).timestamp() * 1000)
        for group in self.groups:
            paginator = self.client().get_paginator("filter_log_events")
            for page in paginator.paginate(logGroupName=group, **kwargs):
                for event in page.get("events", []):
                    entry = parse_line(event.get("message", ""))
                    if entry is not None and matches(entry, execution, node, index):
                        found.append((int(event.get("timestamp", 0)), len(found), entry))
                if len(found) >= self.limit:
                    break
        found.sort(key=lambda t: (t[0], t[1]))
        return [entry for _, _, entry in found[: self.limit]]

    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]:
        return self.read_window(execution, node=node, index=index)


def parse_line(message: str) -> LogEntry | None:
    """A Powertools JSON line, or None for anything else Lambda writes."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


__all__ = ["CloudWatchLogs", "parse_line"]

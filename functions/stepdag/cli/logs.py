"""``stepdag logs``: a node's Powertools log lines, locally or from CloudWatch Logs.

Both sources yield the same JSON documents (``runtime/logs.py`` captures local runs in
the shape the node-runner Lambda's Powertools Logger prints), so one view renders them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from stepdag.cli.main import app, friendly, out
from stepdag.cli.remote import RegionOpt, RemoteOpt, StackOpt, Target, TokenOpt
from stepdag.runtime.logs import LogEntry, matches

_LEVEL_STYLE = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
# Keys every line carries; shown in the line's prefix or not at all.
_STANDARD = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "logger",
        "correlation_id",
        "workflow",
        "node",
        "phase",
        "attempt",
        "index",
        "exception",
        "exception_name",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
    }
)
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


def _where(entry: LogEntry) -> str:
    node = str(entry.get("node", "?"))
    if entry.get("index") is not None:
        node += f"[{entry['index']}]"
    attempt = entry.get("attempt")
    return f"{node}#{attempt}" if attempt not in (None, 0) else node


def log_view(entries: Iterable[LogEntry]) -> Group:
    """One line per entry: time, level, node[index]#attempt, message, extra keys;
    an exception's traceback indented below its line."""
    lines: list[Text] = []
    for e in entries:
        level = str(e.get("level", ""))
        extra = {k: v for k, v in e.items() if k not in _STANDARD}
        line = Text.assemble(
            (str(e.get("timestamp", "")), "dim"),
            " ",
            (f"{level:<7}", _LEVEL_STYLE.get(level, "")),
            " ",
            (_where(e), "bold"),
            "  ",
            str(e.get("message", "")),
        )
        if extra:
            line.append("  " + json.dumps(extra, default=str, sort_keys=True), style="cyan")
        lines.append(line)
        if e.get("exception"):
            lines.append(Text("    " + str(e["exception"]).replace("\n", "\n    "), style="red"))
    if not lines:
        lines.append(Text("no log lines", style="dim"))
    return Group(*lines)


# ---------------------------------------------------------------- the command


@app.command()
@friendly
def logs(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    *,
    node: Annotated[str | None, typer.Option(help="only this node's lines")] = None,
    index: Annotated[int | None, typer.Option(min=0, help="only this Map item")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, as stored")] = False,
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """A node's (or every node's) Powertools log lines: captured locally, CloudWatch on AWS."""
    from stepdag.cli.runs import client_for

    client = client_for(Target(remote, token, region, stack))
    rec = client.get(execution)
    entries = client.logs(rec, node=node, index=index)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, default=str, sort_keys=True) + "\n")
        return
    out.print(log_view(entries))


__all__ = ["CloudWatchLogs", "log_view", "logs", "parse_line"]

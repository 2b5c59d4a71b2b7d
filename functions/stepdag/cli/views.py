"""Rich renderables shared by the CLI views (local and remote show the same thing):
executions, node tables, timelines, and node log lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from stepdag.runtime.logs import LogEntry

_STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
    "RUNNING": "yellow",
    "SKIPPED": "dim",
    "PENDING": "dim",
    "PENDING_REDRIVE": "yellow",
}


def status_style(status: str) -> Text:
    return Text(status, style=_STYLE.get(status, ""))


def _dur(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.3f}s"


def node_table(nodes: Sequence[Any]) -> Table:
    table = Table(box=None, pad_edge=False)
    for col in ("NODE", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"):
        table.add_column(col)
    for n in sorted(nodes, key=lambda r: (r.started_at or datetime.max.astimezone(), r.node)):
        if n.map_index is not None:
            continue
        detail = ""
        if n.error:
            detail = f"{n.error}: {(n.cause or '')[:120]}"
        elif n.skip_reason:
            detail = n.skip_reason
        elif n.items is not None:
            detail = f"{n.items} items"
        if n.cache_hit:
            detail = (detail + " (cache hit)").strip()
        table.add_row(
            n.node,
            status_style(n.status.value),
            str(n.attempts),
            _dur(n.started_at, n.ended_at),
            detail,
        )
    return table


def execution_view(rec: Any, nodes: Sequence[Any]) -> Group:
    head = Text.assemble(
        (f"{rec.name}", "bold"),
        f"  workflow {rec.workflow}  ",
        status_style(rec.status.value),
        f"  {_dur(rec.started_at, rec.ended_at)}",
        f"  redrives {rec.redrive_count}" if rec.redrive_count else "",
    )
    parts: list[Any] = [head, Text(f"id {rec.execution_id}", style="dim")]
    if rec.rerun_of:
        parts.append(Text(f"rerun of {rec.rerun_of} from node {rec.rerun_from}", style="dim"))
    if rec.error:
        parts.append(Text(f"error {rec.error}: {rec.cause or ''}", style="red"))
    parts.append(node_table(nodes))
    return Group(*parts)


def timeline(rec: Any, nodes: Sequence[Any], width: int = 40) -> Text:
    """A text Gantt chart: one bar per node over the execution's wall time."""
    spans = [
        (n.node, n.started_at, n.ended_at)
        for n in nodes
        if n.map_index is None and n.started_at is not None
    ]
    if not spans:
        return Text("timeline: no node has started", style="dim")
    t0 = min(s for _, s, _ in spans)
    t1 = max((e or s) for _, s, e in spans)
    total = max((t1 - t0).total_seconds(), 1e-9)
    label = max(len(n) for n, _, _ in spans)
    out = Text(f"timeline ({total:.3f}s)\n", style="bold")
    for name, s, e in sorted(spans, key=lambda x: x[1]):
        a = int((s - t0).total_seconds() / total * width)
        b = max(a + 1, int(((e or t1) - t0).total_seconds() / total * width))
        out.append(f"  {name:<{label}} |" + " " * a + "█" * (b - a) + " " * (width - b) + "|\n")
    return out


def execution_list(records: Sequence[Any]) -> Table:
    """``executions list``: one row per execution, newest first as given."""
    table = Table(box=None, pad_edge=False)
    for col in ("NAME", "WORKFLOW", "STATUS", "STARTED", "DURATION"):
        table.add_column(col)
    for rec in records:
        dur = (rec.ended_at - rec.started_at).total_seconds() if rec.ended_at else None
        table.add_row(
            rec.name,
            rec.workflow,
            status_style(rec.status.value),
            rec.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            "-" if dur is None else f"{dur:.2f}s",
        )
    return table


# ---------------------------------------------------------------- log lines

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

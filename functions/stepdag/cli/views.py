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

from stepdag.core.failures import (
    MapProgress,
    clean,
    is_failure,
    is_retrying,
    located,
    message,
    one_line,
    progress,
    where,
)
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


def _shown_status(whole: Any, items: Sequence[Any], prog: MapProgress | None, running: bool) -> str:
    """The status a row shows: the record's own, except a Map whose own record has not
    caught up with its items yet (it turns terminal only when they all have), and a
    failed node waiting for its retry."""
    status: str = whole.status.value
    if prog is not None and not whole.status.is_terminal and items:
        if prog.running or prog.retrying:
            return "RUNNING"
        if prog.failed:
            return "FAILED"
    if prog is None and is_retrying(whole, running=running):
        return "RETRYING"
    return status


def _span(records: Sequence[Any]) -> tuple[datetime | None, datetime | None]:
    starts = [r.started_at for r in records if r.started_at is not None]
    ends = [r.ended_at for r in records if r.ended_at is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _items_by_node(nodes: Sequence[Any]) -> dict[str, list[Any]]:
    items: dict[str, list[Any]] = {}
    for n in nodes:
        if n.map_index is not None:
            items.setdefault(n.node, []).append(n)
    return items


def node_table(nodes: Sequence[Any], *, running: bool = False) -> Table:
    """One row per node; a Map's row counts its items (done/running/retrying/failed of
    total).  ``running``: the execution is still going (a failed attempt may be retried)."""
    table = Table(box=None, pad_edge=False)
    for col in ("NODE", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"):
        table.add_column(col)
    items_of = _items_by_node(nodes)
    for n in sorted(nodes, key=lambda r: (r.started_at or datetime.max.astimezone(), r.node)):
        if n.map_index is not None:
            continue
        items = items_of.get(n.node, [])
        is_map = n.items is not None or bool(items)
        prog = progress(n, items, running=running) if is_map else None
        bits: list[str] = []
        if prog is not None:
            bits.append(f"items {prog}")
        if n.error:
            bits.append(one_line(n.error, n.cause, limit=120))
        elif n.skip_reason:
            bits.append(clean(n.skip_reason))
        if n.cache_hit:
            bits.append("(cache hit)")
        start, end = (n.started_at, n.ended_at)
        if is_map and items and not n.status.is_terminal:
            start, end = _span([n, *items])
        table.add_row(
            clean(n.node),
            status_style(_shown_status(n, items, prog, running)),
            "-" if is_map and not n.attempts else str(n.attempts),
            _dur(start, end),
            "  ".join(bits),
        )
    return table


def failures(nodes: Sequence[Any], *, running: bool = False, limit: int = 20) -> Text | None:
    """Every failed node and Map item, one line each: node, item, attempt, error."""
    whole = {n.node: n for n in nodes if n.map_index is None}
    failed = [n for n in nodes if is_failure(n.status)]
    if not failed:
        return None
    failed.sort(key=lambda r: (r.node, -1 if r.map_index is None else r.map_index))
    out = Text("failures\n", style="bold")
    for n in failed[:limit]:
        parent = whole.get(n.node) if n.map_index is not None else None
        parent_done = parent is not None and parent.status.is_terminal
        retrying = is_retrying(n, running=running, parent_done=parent_done)
        out.append(f"  {located(n)}", style="yellow" if retrying else "red")
        out.append(" (retrying)\n" if retrying else "\n", style="yellow")
    if len(failed) > limit:
        out.append(f"  … and {len(failed) - limit} more", style="dim")
    out.rstrip()
    return out


def live_view(rec: Any, nodes: Sequence[Any]) -> Group:
    """What ``run`` shows while the execution runs: the node table and its failures."""
    running = not rec.is_terminal
    parts: list[Any] = [node_table(nodes, running=running)]
    failed = failures(nodes, running=running)
    if failed is not None:
        parts.append(failed)
    return Group(*parts)


def execution_view(rec: Any, nodes: Sequence[Any], *, verbose: bool = False) -> Group:
    head = Text.assemble(
        (clean(rec.name), "bold"),
        f"  workflow {clean(rec.workflow)}  ",
        status_style(rec.status.value),
        f"  {_dur(rec.started_at, rec.ended_at)}",
        f"  redrives {rec.redrive_count}" if rec.redrive_count else "",
    )
    parts: list[Any] = [head, Text(f"id {clean(rec.execution_id)}", style="dim")]
    if rec.rerun_of:
        parts.append(
            Text(f"rerun of {clean(rec.rerun_of)} from node {clean(rec.rerun_from)}", style="dim")
        )
    if rec.error:
        parts.append(Text(f"error {execution_error(rec, nodes)}", style="red"))
    parts.append(live_view(rec, nodes))
    if verbose:
        parts.extend(_causes(rec, nodes))
    return Group(*parts)


def execution_error(rec: Any, nodes: Sequence[Any]) -> str:
    """The execution's error on one line, located when a failed node (or item) carries
    the same error: Step Functions' own error says what, never where."""
    what = one_line(rec.error, rec.cause)
    same = [n for n in nodes if is_failure(n.status) and one_line(n.error, n.cause) == what]
    if not same:
        return what
    last = max(same, key=lambda n: n.ended_at or datetime.min.astimezone())
    return located(last)


def _causes(rec: Any, nodes: Sequence[Any]) -> list[Text]:
    """``--verbose``: each failure's whole message and its cause as recorded (escaped)."""
    shown: list[Text] = []
    if rec.error:
        shown.append(Text(f"execution error {clean(rec.error)}\n", style="bold"))
        shown.append(Text(_indent(clean(rec.cause or "", newlines=True))))
    for n in nodes:
        if is_failure(n.status):
            shown.append(Text(f"{where(n.node, n.map_index, n.attempts)}\n", style="bold"))
            shown.append(Text(_indent(message(n.error, n.cause))))
            if n.cause and message(n.error, n.cause) != clean(n.cause, newlines=True):
                shown.append(Text(_indent("cause: " + clean(n.cause, newlines=True))))
    return shown


def _indent(text: str) -> str:
    return "    " + text.replace("\n", "\n    ") + "\n"


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
            clean(rec.name),
            clean(rec.workflow),
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
    node = clean(entry.get("node", "?"))
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
            (clean(e.get("timestamp", "")), "dim"),
            " ",
            (f"{clean(level):<7}", _LEVEL_STYLE.get(level, "")),
            " ",
            (_where(e), "bold"),
            "  ",
            clean(e.get("message", "")),
        )
        if extra:
            # json.dumps escapes control characters itself (ensure_ascii).
            line.append("  " + json.dumps(extra, default=str, sort_keys=True), style="cyan")
        lines.append(line)
        if e.get("exception"):
            exc = clean(e["exception"], newlines=True)
            lines.append(Text("    " + exc.replace("\n", "\n    "), style="red"))
    if not lines:
        lines.append(Text("no log lines", style="dim"))
    return Group(*lines)

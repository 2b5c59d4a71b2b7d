"""Failures as users read them: where (node, item, attempt) and what (one line).

One rule for every surface that shows a failure -- the CLI's views, the API's read
models, and (mirrored in ``console/util.js``) the console:

- ``clean`` makes user data safe to print: terminal control characters (ESC, CR, the
  other C0 and C1 codes, DEL) become visible ``\\xNN`` escapes, so a node's error cannot
  recolour, rewrite or clear the terminal it is shown on.
- ``one_line`` reads a Lambda-style cause (``{"errorMessage": .., "errorType": ..}``,
  what Step Functions records for a failed Lambda task) as ``errorType: errorMessage``.
- ``located`` is the message format: ``node 'each' item 1, attempt 2: KeyError: bad``.
- ``progress`` counts a Map's items, telling an item waiting for its retry from one
  that failed for good (see ``is_retrying`` for what the records can and cannot say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from stepdag.core.status import NodeStatus

ONE_LINE_MAX = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_NO_NL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class NodeLike(Protocol):
    """What the views read of a node record (a store record or the API's read model)."""

    @property
    def node(self) -> str: ...
    @property
    def map_index(self) -> int | None: ...
    @property
    def status(self) -> NodeStatus: ...
    @property
    def attempts(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def items(self) -> int | None: ...


def clean(text: object, *, newlines: bool = False) -> str:
    """``text`` with every terminal control character escaped (``\\x1b``, ``\\r``, ...);
    tabs and, with ``newlines``, line breaks are kept."""
    pattern = _CONTROL if newlines else _CONTROL_NO_NL
    s = str(text).replace("\t", " ") if not newlines else str(text)
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def _lambda_error(cause: str) -> tuple[str, str] | None:
    """(errorType, errorMessage) of a Lambda-style cause, unwrapping a message that is
    itself one (a node re-raising a downstream Lambda's error); None if it is not one."""
    try:
        doc = json.loads(cause, strict=False)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "errorMessage" not in doc:
        return None
    kind, text = str(doc.get("errorType") or ""), str(doc.get("errorMessage"))
    inner = _lambda_error(text) if text.lstrip().startswith("{") else None
    # The innermost error is the one that says what went wrong.
    return inner if inner is not None else (kind, text)


def message(error: str | None, cause: str | None) -> str:
    """The full message of a failure (``errorType: errorMessage``), every line kept,
    control characters escaped: what ``--verbose`` and the console's detail show."""
    error, cause = error or "", cause or ""
    parsed = _lambda_error(cause) if cause.lstrip().startswith("{") else None
    if parsed is not None:
        kind, text = parsed
        error = kind or error
        cause = text
    if not cause:
        return clean(error, newlines=True)
    if not error or f"{error}:" in cause:  # a cause that already names its error
        return clean(cause, newlines=True)
    return clean(f"{error}: {cause}", newlines=True)


def one_line(error: str | None, cause: str | None, *, limit: int = ONE_LINE_MAX) -> str:
    """``message`` on one line: its first non-empty line, cut to ``limit`` characters."""
    full = message(error, cause)
    lines = [ln.strip() for ln in full.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    if len(lines) > 1:
        first += " …"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def where(node: str, index: int | None = None, attempt: int | None = None) -> str:
    """``node 'each' item 1, attempt 2``: the location part of every failure message."""
    out = f"node {clean(node)!r}"
    if index is not None:
        out += f" item {index}"
    if attempt:
        out += f", attempt {attempt}"
    return out


def located(rec: NodeLike) -> str:
    """One line saying where a node (or item) failed and why."""
    return f"{where(rec.node, rec.map_index, rec.attempts)}: {one_line(rec.error, rec.cause)}"


def is_failure(status: NodeStatus) -> bool:
    """FAILED, or any other end that is neither a success nor a skip (a time-out)."""
    return status.is_terminal and status not in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED)


def is_retrying(rec: NodeLike, *, running: bool, parent_done: bool = False) -> bool:
    """Whether a FAILED record is (as far as the records tell) waiting for its retry.

    A node's record turns FAILED when an attempt fails, before Step Functions decides to
    retry it; the records hold no retry policy or retry schedule.  What they do tell:
    a failure that ends the run ends the execution (or, under ``continue_on_failure``,
    marks the Map's own record FAILED).  So a FAILED item of a Map still in progress, or
    a FAILED node of a running execution, is shown as retrying; the window where a final
    failure has been recorded but not yet propagated is milliseconds.
    """
    return is_failure(rec.status) and running and not parent_done


@dataclass(frozen=True, slots=True)
class MapProgress:
    total: int | None
    done: int = 0
    running: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.done}/{total} done"]
        for label, n in (
            ("running", self.running),
            ("retrying", self.retrying),
            ("failed", self.failed),
            ("skipped", self.skipped),
        ):
            if n:
                parts.append(f"{n} {label}")
        return ", ".join(parts)


def progress(whole: NodeLike, items: Iterable[NodeLike], *, running: bool) -> MapProgress:
    """Counts of a Map's items (``whole`` is the Map's own record)."""
    counts = {"done": 0, "running": 0, "retrying": 0, "failed": 0, "skipped": 0}
    parent_done = whole.status.is_terminal
    for it in items:
        if it.status is NodeStatus.SUCCEEDED:
            counts["done"] += 1
        elif it.status is NodeStatus.RUNNING:
            counts["running"] += 1
        elif it.status is NodeStatus.SKIPPED:
            counts["skipped"] += 1
        elif is_failure(it.status):
            retrying = is_retrying(it, running=running, parent_done=parent_done)
            counts["retrying" if retrying else "failed"] += 1
    return MapProgress(total=whole.items, **counts)


__all__ = [
    "MapProgress",
    "NodeLike",
    "clean",
    "is_failure",
    "is_retrying",
    "located",
    "message",
    "one_line",
    "progress",
    "where",
]

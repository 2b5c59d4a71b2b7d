"""Per-node log capture: what a node's code logs while it runs, kept as Powertools JSON.

On Lambda every line of a node invocation is a Powertools Logger JSON document carrying
the execution id as ``correlation_id`` plus ``workflow``/``node``/``phase``/``attempt``/
``index`` (see ``handlers/observability.py``); ``stepdag logs`` reads them back from
CloudWatch Logs.  Locally nothing printed those lines, so this module captures them: the
runner wraps each node function call in :meth:`LogCapture.capture`, and one
``logging.Handler`` on the root logger routes every record emitted *inside* a capture to
that capture's sink, formatted with the same keys.

Why a contextvar: nodes run in interpreter threads of one process, several at once; the
handler is process-wide, so each record must find the capture of the thread (context)
that emitted it.  A thread the node's code starts itself does not inherit the context
(``threading`` starts threads in an empty context), so its records are not captured.

Why the handler also goes onto non-propagating loggers: Powertools' own ``Logger`` sets
``propagate = False``, so its records never reach the root logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

LogEntry = dict[str, Any]

# LogRecord attributes that are not user ``extra=`` keys (Powertools drops them too).
_RESERVED = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class LogContext:
    """Who is logging: the keys the Lambda's Powertools Logger appends to every line."""

    execution: str
    workflow: str
    node: str
    phase: str = "run"
    attempt: int = 0
    index: int | None = None

    def keys(self) -> dict[str, Any]:
        keys: dict[str, Any] = {
            "correlation_id": self.execution,
            "workflow": self.workflow,
            "node": self.node,
            "phase": self.phase,
            "attempt": self.attempt,
        }
        if self.index is not None:
            keys["index"] = self.index
        return keys


class LogSink(Protocol):
    """Where captured entries go; ``read`` answers ``stepdag logs``."""

    def write(self, entry: LogEntry) -> None: ...

    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]: ...


def matches(entry: Mapping[str, Any], execution: str, node: str | None, index: int | None) -> bool:
    """The one filter every log source applies (files, memory, CloudWatch lines)."""
    if entry.get("correlation_id") != execution:
        return False
    if node is not None and entry.get("node") != node:
        return False
    return index is None or entry.get("index") == index


class MemoryLogSink:
    """Entries in a list (replay: shown once, never persisted)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def write(self, entry: LogEntry) -> None:
        with self._lock:
            self.entries.append(entry)

    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]:
        with self._lock:
            return [e for e in self.entries if matches(e, execution, node, index)]


class FileLogSink:
    """JSON lines, one file per (execution, node): ``<root>/<execution>/<node>.jsonl``.

    Each entry is appended with a single ``write`` on a file opened in append mode, under
    a process-wide lock: lines of concurrent nodes (threads) never interleave, and two
    processes appending to one file (a CLI run, a ``stepdag serve``) write whole lines.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def _file(self, execution: str, node: str) -> Path:
        return self.root / _SAFE_NAME.sub("_", execution) / f"{_SAFE_NAME.sub('_', node)}.jsonl"

    def write(self, entry: LogEntry) -> None:
        path = self._file(str(entry["correlation_id"]), str(entry["node"]))
        line = json.dumps(entry, default=str, separators=(",", ":")) + "\n"
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(line)

    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]:
        folder = self.root / _SAFE_NAME.sub("_", execution)
        files = (
            [self._file(execution, node)] if node is not None else sorted(folder.glob("*.jsonl"))
        )
        entries: list[LogEntry] = []
        for path in files:
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # a torn last line of a crashed process: skip it
                    continue
                if isinstance(entry, dict) and matches(entry, execution, node, index):
                    entries.append(entry)
        # Files are per node: merge them back into one time-ordered stream.
        entries.sort(key=lambda e: str(e.get("timestamp", "")))
        return entries


def powertools_timestamp(at: datetime) -> str:
    """Powertools Logger's default ``datefmt`` (``%Y-%m-%d %H:%M:%S,%F%z``), in UTC."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S,") + f"{at.microsecond // 1000:03d}" + "+0000"


def entry_from_record(record: logging.LogRecord, ctx: LogContext, service: str) -> LogEntry:
    """A LogRecord as the JSON document Powertools Logger prints for it on Lambda."""
    entry: LogEntry = {
        "level": record.levelname,
        "location": f"{record.funcName}:{record.lineno}",
        "message": record.getMessage(),
        "timestamp": powertools_timestamp(datetime.fromtimestamp(record.created, UTC)),
        "service": service,
        "logger": record.name,
        **ctx.keys(),
    }
    for key, value in vars(record).items():
        if key not in _RESERVED and not key.startswith("_") and key not in entry:
            entry[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        entry["exception_name"] = record.exc_info[0].__name__
    return entry


@dataclass(frozen=True, slots=True)
class _Active:
    ctx: LogContext
    sink: LogSink
    service: str


_ACTIVE: ContextVar[_Active | None] = ContextVar("stepdag_log_capture", default=None)


class _RoutingHandler(logging.Handler):
    """Process-wide: hands a record to the capture active in the emitting context."""

    def emit(self, record: logging.LogRecord) -> None:
        active = _ACTIVE.get()
        if active is None:
            # Installing a root handler retires logging.lastResort (it only serves a root
            # with no handlers): keep its job, warnings still reach stderr.
            root = logging.getLogger()
            if root.handlers == [self] and record.levelno >= logging.WARNING:
                logging.lastResort.handle(record)  # type: ignore[union-attr]
            return
        if getattr(record, "_stepdag_captured", False):
            return  # seen on a non-propagating logger and again on an ancestor
        record._stepdag_captured = True
        try:
            active.sink.write(entry_from_record(record, active.ctx, active.service))
        except Exception:
            self.handleError(record)


_HANDLER = _RoutingHandler()
_INSTALL_LOCK = threading.Lock()
_SEEN_LOGGERS = [-1]  # size of the logger registry at the last scan


def _install(level: int) -> None:
    with _INSTALL_LOCK:
        root = logging.getLogger()
        if _HANDLER not in root.handlers:
            root.addHandler(_HANDLER)
            # The root's untouched default (WARNING) would drop a node's INFO lines
            # before any handler sees them; Lambda's LOG_LEVEL defaults to INFO.
            if root.level == logging.WARNING and level < logging.WARNING:
                root.setLevel(level)
        registry = logging.Logger.manager.loggerDict
        if len(registry) != _SEEN_LOGGERS[0]:
            for logger in list(registry.values()):
                if (
                    isinstance(logger, logging.Logger)
                    and not logger.propagate
                    and _HANDLER not in logger.handlers
                ):
                    logger.addHandler(_HANDLER)
            _SEEN_LOGGERS[0] = len(registry)


class LogCapture:
    """Captures the records a node's code logs while :meth:`capture` is active."""

    def __init__(self, sink: LogSink, *, service: str | None = None, level: str | None = None):
        self.sink = sink
        self.service = service or os.environ.get("POWERTOOLS_SERVICE_NAME") or "stepdag"
        name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
        self.level = logging.getLevelNamesMapping().get(name, logging.INFO)

    @contextmanager
    def capture(self, ctx: LogContext) -> Iterator[None]:
        """Route records of this context to the sink; an exception escaping the node is
        logged like the Lambda app does (``node invocation failed``), then re-raised."""
        _install(self.level)
        token = _ACTIVE.set(_Active(ctx, self.sink, self.service))
        try:
            yield
        except Exception as exc:
            record = logging.LogRecord(
                "stepdag.runner",
                logging.ERROR,
                __file__,
                0,
                "node invocation failed",
                None,
                (type(exc), exc, exc.__traceback__),
                func="handle",
            )
            record.error = type(exc).__name__
            self.sink.write(entry_from_record(record, ctx, self.service))
            raise
        finally:
            _ACTIVE.reset(token)


__all__ = [
    "FileLogSink",
    "LogCapture",
    "LogContext",
    "LogEntry",
    "LogSink",
    "MemoryLogSink",
    "entry_from_record",
    "matches",
    "powertools_timestamp",
]

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
from typing import Any, BinaryIO, Protocol

from stepdag.constants import ENV_LOG_LEVEL, ENV_POWERTOOLS_SERVICE_NAME

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


class LogWriter(Protocol):
    """Writes the entries of one capture (one node attempt or Map item), then is closed."""

    def write(self, entry: LogEntry) -> None: ...

    def close(self) -> None: ...


class LogSink(Protocol):
    """Where captured entries go; ``read`` answers ``stepdag logs``."""

    def open(self, ctx: LogContext) -> LogWriter:
        """A writer for one capture of ``ctx``: whatever it costs to get ready to write
        (folders, a file handle) is paid once per capture, not once per line."""
        ...

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

    def open(self, ctx: LogContext) -> LogWriter:
        return self

    def write(self, entry: LogEntry) -> None:
        with self._lock:
            self.entries.append(entry)

    def close(self) -> None:
        return None

    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]:
        with self._lock:
            return [e for e in self.entries if matches(e, execution, node, index)]


_FILE_WRITE_LOCK = threading.Lock()
"""Process-wide, for every :class:`FileLogSink`: held around one line's write only."""


class FileLogSink:
    """JSON lines, one file per (execution, node): ``<root>/<execution>/<node>.jsonl``.

    Each capture (:meth:`open`) makes the folder and opens its file once, on its first
    line, and closes it when the capture ends; the items of a Map node each hold their own
    handle on the node's one file.  Every line is a single unbuffered ``write`` on a file
    opened in append mode, under a process-wide lock (:data:`_FILE_WRITE_LOCK`): lines
    of concurrent nodes (threads) never interleave, and two processes appending to one
    file (a CLI run, a ``stepdag serve``) write whole lines (``O_APPEND``).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _file(self, execution: str, node: str) -> Path:
        return self.root / _SAFE_NAME.sub("_", execution) / f"{_SAFE_NAME.sub('_', node)}.jsonl"

    def open(self, ctx: LogContext) -> LogWriter:
        return _FileWriter(self._file(ctx.execution, ctx.node))

    def write(self, entry: LogEntry) -> None:
        """One entry on its own (opens and closes the file: captures use :meth:`open`)."""
        writer = _FileWriter(self._file(str(entry["correlation_id"]), str(entry["node"])))
        try:
            writer.write(entry)
        finally:
            writer.close()

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


class _FileWriter:
    """One capture's handle on its node's file, opened on the first line (a node that
    logs nothing leaves no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO | None = None

    def write(self, entry: LogEntry) -> None:
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
        with _FILE_WRITE_LOCK:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Unbuffered: each line leaves in one write(2), never split by a buffer.
                self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
            view = memoryview(line)
            while view:  # a regular file writes everything at once; loop if it did not
                view = view[self._fh.write(view) :]

    def close(self) -> None:
        with _FILE_WRITE_LOCK:
            fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()


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
    writer: LogWriter
    service: str
    level: int


_ACTIVE: ContextVar[_Active | None] = ContextVar("stepdag_log_capture", default=None)


def _handled_elsewhere(record: logging.LogRecord, ours: logging.Handler) -> bool:
    """Whether ``logging`` finds a handler other than ours for the record: the walk of
    ``Logger.callHandlers`` (the record's logger, then its ancestors while they
    propagate)."""
    logger: logging.Logger | None = None
    if record.name != "root":
        found = logging.Logger.manager.loggerDict.get(record.name)
        logger = found if isinstance(found, logging.Logger) else None
    logger = logger or logging.getLogger()
    while logger is not None:
        if any(h is not ours for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


class _RoutingHandler(logging.Handler):
    """Process-wide: hands a record to the capture active in the emitting context."""

    def emit(self, record: logging.LogRecord) -> None:
        active = _ACTIVE.get()
        if active is None or record.levelno < active.level:
            self._last_resort(record)
            return
        if getattr(record, "_stepdag_captured", False):
            return  # seen on a non-propagating logger and again on an ancestor
        record._stepdag_captured = True
        try:
            active.writer.write(entry_from_record(record, active.ctx, active.service))
        except Exception:
            self.handleError(record)

    def _last_resort(self, record: logging.LogRecord) -> None:
        """A record that is not captured gets what it would get without us.

        ``logging`` hands a record to ``logging.lastResort`` (stderr, WARNING and up) only
        when no handler at all is found in the logger chain, and ours now counts as one:
        do its job, but only when no *other* handler in the chain took the record (a
        logger's own StreamHandler, Powertools' handler), or it would print twice.
        """
        last = logging.lastResort
        if last is None or record.levelno < last.level or _handled_elsewhere(record, self):
            return
        last.handle(record)


_HANDLER = _RoutingHandler()
_INSTALL_LOCK = threading.Lock()
_SEEN_LOGGERS = [-1]  # size of the logger registry at the last scan


@dataclass
class _RootLevel:
    """What captures did to the root logger's level, to undo it after the last one."""

    active: list[int]  # the levels of the captures running now
    saved: int | None = None  # root's level before captures lowered it
    lowered_to: int | None = None


_ROOT = _RootLevel([])


def _install() -> None:
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
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


def _enter(level: int) -> None:
    """Install the handler; lower the root logger's level while captures run.

    Why root's level at all: ``Logger.info`` checks the logger's *effective* level before
    any handler sees a record, and a node's ``logging.getLogger("x")`` inherits root's
    (WARNING unless configured): its INFO lines would be dropped before they reach us,
    and no handler or filter can see them.  So while captures run, root is at most the
    lowest level one of them asked for (never raised), and its level is restored when
    the last capture ends -- unless someone else changed it in between.  Loggers with
    their own level keep it; records below a capture's level are dropped in ``emit``.
    """
    with _INSTALL_LOCK:
        _install()
        _ROOT.active.append(level)
        root = logging.getLogger()
        if root.level > level:  # NOTSET (0) on root passes everything already
            if _ROOT.saved is None:
                _ROOT.saved = root.level
            root.setLevel(level)
            _ROOT.lowered_to = level


def _exit(level: int) -> None:
    with _INSTALL_LOCK:
        _ROOT.active.remove(level)
        if _ROOT.active or _ROOT.saved is None:
            return
        root = logging.getLogger()
        if root.level == _ROOT.lowered_to:  # nobody reconfigured it meanwhile
            root.setLevel(_ROOT.saved)
        _ROOT.saved = _ROOT.lowered_to = None


class LogCapture:
    """Captures the records a node's code logs while :meth:`capture` is active: those at
    ``level`` (default: ``LOG_LEVEL``, else INFO, as Powertools reads it) and above."""

    def __init__(self, sink: LogSink, *, service: str | None = None, level: str | None = None):
        self.sink = sink
        self.service = service or os.environ.get(ENV_POWERTOOLS_SERVICE_NAME) or "stepdag"
        name = (level or os.environ.get(ENV_LOG_LEVEL) or "INFO").upper()
        self.level = logging.getLevelNamesMapping().get(name, logging.INFO)

    @contextmanager
    def capture(self, ctx: LogContext) -> Iterator[None]:
        """Route records of this context to the sink; an exception escaping the node is
        logged like the Lambda app does (``node invocation failed``), then re-raised."""
        writer = self.sink.open(ctx)
        _enter(self.level)
        token = _ACTIVE.set(_Active(ctx, writer, self.service, self.level))
        try:
            yield
        except Exception as exc:
            if self.level <= logging.ERROR:  # Powertools would drop it too
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
                writer.write(entry_from_record(record, ctx, self.service))
            raise
        finally:
            _ACTIVE.reset(token)
            _exit(self.level)
            writer.close()


__all__ = [
    "FileLogSink",
    "LogCapture",
    "LogContext",
    "LogEntry",
    "LogSink",
    "LogWriter",
    "MemoryLogSink",
    "entry_from_record",
    "matches",
    "powertools_timestamp",
]

"""The protocol every CLI target answers (:class:`Client`), and what all of them share.

Split from ``cli/remote.py`` so the REST client (``cli/rest.py``) and the service-backed
clients (``cli/remote.py``) depend on this module, not on each other.
"""

from __future__ import annotations

from typing import Any, Protocol

from stepdag.core.errors import InputValidationError, StepdagError
from stepdag.core.status import RunStatus
from stepdag.runtime.logs import LogEntry
from stepdag.runtime.records import ExecutionRecord, NodeRecord, Page


class RemoteError(StepdagError):
    """The remote target failed (a 5xx answer, a time-out, an AWS service error), or
    refused a request: ``http_status`` is then the remote's own 4xx status, so the
    CLI's exit code (``cli/app.py``) tells the two apart."""

    code = "remote_error"

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status


class TargetError(RemoteError):
    """The target, as given, cannot serve the request: nothing listens at its address,
    it is not a stepdag API, it serves no logs, a library it needs is not installed.
    The caller's to fix (its ``--remote``, environment or installation)."""

    http_status = 400
    code = "bad_target"


class NoOutput(StepdagError):
    """The execution (or node) asked for has no output (yet)."""

    http_status = 409
    code = "no_output"


class LogReader(Protocol):
    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]: ...


class Client(Protocol):
    label: str
    poll_seconds: float
    full_records: bool

    def get(self, ref: str) -> ExecutionRecord: ...

    def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]: ...

    def list_executions(
        self, *, workflow: str | None, status: RunStatus | None, limit: int, next_token: str | None
    ) -> Page[ExecutionRecord]: ...

    def node_output(self, ref: str, node: str) -> Any: ...

    def start(
        self, workflow: str, input: Any, *, name: str | None, idempotency_key: str | None
    ) -> tuple[ExecutionRecord, bool]: ...

    def cancel(self, ref: str) -> ExecutionRecord: ...

    def redrive(self, ref: str) -> ExecutionRecord: ...

    def rerun(self, ref: str, from_node: str, *, name: str | None) -> ExecutionRecord:
        """A new execution of ``ref``'s workflow and input that reuses the stored outputs
        of every node not downstream of ``from_node``; started, not awaited."""
        ...

    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        """The node's record *with its output* when it succeeded (replay's inputs)."""
        ...

    def logs(
        self, rec: ExecutionRecord, *, node: str | None, index: int | None
    ) -> list[LogEntry]: ...

    def close(self, *, wait: bool = True) -> None:
        """Release the client; ``wait``: first let this process's runs finish their
        writes (local target).  Ctrl-C passes False: those runs end with the process."""
        ...


def read_logs(
    reader: LogReader, rec: ExecutionRecord, *, node: str | None, index: int | None
) -> list[LogEntry]:
    window = getattr(reader, "read_window", None)
    if window is not None:  # CloudWatch: scan only the execution's time window
        entries: list[LogEntry] = window(
            rec.execution_id, node=node, index=index, start=rec.started_at, end=rec.ended_at
        )
        return entries
    return reader.read(rec.execution_id, node=node, index=index)


def run_name(name: str | None, idempotency_key: str | None) -> str | None:
    """The API's rule, applied before any request: the key *is* the execution name."""
    if idempotency_key and name and name != idempotency_key:
        raise InputValidationError("--name and --idempotency-key differ; the key is the name")
    return idempotency_key or name


__all__ = [
    "Client",
    "LogReader",
    "NoOutput",
    "RemoteError",
    "TargetError",
    "read_logs",
    "run_name",
]

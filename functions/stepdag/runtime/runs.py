"""One run of an execution on the local engine (:class:`LocalRun`), and the named hooks
that see runs from the inside (:class:`EngineHooks`)."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stepdag.asl import ExecutionHandle, HistoryEvent, TaskContext
from stepdag.runtime.executions import CANCEL_CAUSE, CANCEL_ERROR
from stepdag.runtime.records import ExecutionRecord

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class InFlight:
    """A Task invocation of a run that has not returned (yet): what it was asked to do,
    its context (timeout) and when it started on the run's clock."""

    payload: Payload
    ctx: TaskContext
    started: float

    @property
    def elapsed(self) -> float:
        return self.ctx.clock.now() - self.started


class LocalRun:
    """One run of an execution on the engine: wait for it, or stop it.

    ``record`` is the execution as the run started it; ``handle`` the interpreter's once
    it runs (None while the run waits for admission).
    """

    def __init__(
        self, record: ExecutionRecord, on_event: Callable[[HistoryEvent], None] | None
    ) -> None:
        self.record = record
        self.on_event = on_event
        self.handle: ExecutionHandle | None = None
        self.final: ExecutionRecord | None = None
        self.error: BaseException | None = None
        self._stop: tuple[str, str] | None = None
        self._lock = threading.Lock()
        self._attached = threading.Event()
        self._done = threading.Event()
        self._inflight: dict[int, InFlight] = {}
        self._ids = itertools.count()

    @property
    def execution_id(self) -> str:
        return self.record.execution_id

    def stop(self, error: str = CANCEL_ERROR, cause: str = CANCEL_CAUSE) -> None:
        """Abort the run like ``StopExecution``; before its interpreter started, as soon
        as it does.  Non-blocking: :meth:`join` waits for the ABORTED record."""
        with self._lock:
            self._stop = (error, cause)
            handle = self.handle
        if handle is not None:
            handle.stop(error, cause)

    def done(self) -> bool:
        return self._done.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the run has recorded its end; False if ``timeout`` passed first."""
        return self._done.wait(timeout)

    def wait(self, timeout: float | None = None) -> ExecutionRecord:
        """The final record; re-raises what ended the run outside the interpreter."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"execution {self.record.name} still running after {timeout}s")
        if self.error is not None:
            raise self.error
        assert self.final is not None
        return self.final

    def _attach(self, handle: ExecutionHandle) -> None:
        with self._lock:
            self.handle = handle
            stop = self._stop
        if stop is not None:  # stopped while waiting for its interpreter
            handle.stop(*stop)
        self._attached.set()

    @contextlib.contextmanager
    def _tracking(self, payload: Payload, ctx: TaskContext) -> Iterator[None]:
        """Count the Task invocation in flight while it runs (see :meth:`in_flight`)."""
        with self._lock:
            key = next(self._ids)
            self._inflight[key] = InFlight(payload, ctx, ctx.clock.now())
        try:
            yield
        finally:
            with self._lock:
                del self._inflight[key]

    def in_flight(self) -> list[InFlight]:
        """Task invocations still running: once the interpreter has ended, the ones it
        abandoned (timed out, or cut short by a failure or a stop) -- a thread cannot be
        killed, so their node functions may still be running."""
        with self._lock:
            return list(self._inflight.values())

    def _task_allowed(self) -> bool:
        """Whether a Task may call its node: not once the run was stopped.  The
        interpreter starts running as it is created, before the stop of a run cancelled
        while it waited can reach it; its first Task waits for that."""
        self._attached.wait()
        return self._stop is None


class EngineHooks:
    """Named points of a local run, Hamilton-style: subclass, override the hooks you
    need, pass instances as ``LocalEngine(hooks=[...])``.

    ``on_start`` and ``on_finish`` observe: what they raise is logged, the run goes on.
    ``invoke`` wraps every Task (the node runner's invocation), outermost hook first.
    """

    def on_start(self, run: LocalRun) -> None:
        """The interpreter runs ``run`` (``run.handle`` is set)."""

    def invoke(
        self,
        run: LocalRun,
        payload: Payload,
        ctx: TaskContext,
        proceed: Callable[[Payload], Any],
    ) -> Any:
        """One Task: ``proceed(payload)`` runs the node.  Raise to fail the Task the way
        a Lambda does (the exception's class name is the error name)."""
        return proceed(payload)

    def on_finish(self, run: LocalRun) -> None:
        """The run ended: ``run.final`` is the stored record, or ``run.error`` is set."""


__all__ = ["EngineHooks", "InFlight", "LocalRun", "Payload"]

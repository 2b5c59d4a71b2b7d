"""Per-execution runtime: shared execution state, frames (threads of control), tasks.

An :class:`Execution` is shared by every thread of one run. A :class:`Frame` is one
thread of control (the top level, a Parallel branch, a Map iteration); it owns the
``previousEventId`` chain of the events it emits and a cancellation flag that the
parent sets when a sibling fails or the whole execution is stopped.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stepdag.asl.clock import Clock, ClockEvent
from stepdag.asl.errors import ExecutionAborted, StatesError, to_json
from stepdag.asl.history import HistoryRecorder
from stepdag.asl.variables import Scope


@dataclass(frozen=True)
class TaskContext:
    """What a task handler gets besides the resource and its parameters."""

    context: dict[str, Any]
    state_name: str
    clock: Clock
    task_token: str | None = None
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    # Set when the task has been abandoned (timeout, branch failure, stop); a
    # cooperative handler can poll it or use :meth:`sleep`, which returns early.
    cancelled: ClockEvent | None = field(default=None, repr=False)
    _heartbeat: Callable[[], None] | None = field(default=None, repr=False)

    def sleep(self, seconds: float) -> None:
        """Sleep on the execution's clock; returns early if the task is cancelled."""
        self.clock.sleep(seconds)

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled is not None and self.cancelled.is_set()

    def heartbeat(self) -> None:
        """Equivalent to ``send_task_heartbeat`` for this task's token."""
        if self._heartbeat is not None:
            self._heartbeat()


class TaskHandler(Protocol):
    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any: ...


@dataclass
class TokenWait:
    """A waiting callback task: the outcome once reported, and the current wake-up event."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    outcome: tuple[str, Any, str | None, str | None] | None = None  # kind, output, error, cause
    last_heartbeat: float = 0.0
    wake: ClockEvent | None = None

    def _poke(self) -> None:
        with self.lock:
            wake = self.wake
        if wake is not None:
            wake.set()


class TokenRegistry:
    """Task tokens of ``.waitForTaskToken`` tasks that are waiting for a callback."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waits: dict[str, TokenWait] = {}

    def new(self) -> tuple[str, TokenWait]:
        token = uuid.uuid4().hex + uuid.uuid4().hex
        wait = TokenWait(last_heartbeat=self._clock.now())
        with self._lock:
            self._waits[token] = wait
        return token, wait

    def discard(self, token: str) -> None:
        with self._lock:
            self._waits.pop(token, None)

    def _get(self, token: str) -> TokenWait:
        with self._lock:
            wait = self._waits.get(token)
        if wait is None:
            raise KeyError(f"Invalid or expired task token: {token!r}")
        return wait

    def success(self, token: str, output: Any) -> None:
        wait = self._get(token)
        with wait.lock:
            if wait.outcome is None:
                wait.outcome = ("success", output, None, None)
        wait._poke()

    def failure(self, token: str, error: str | None, cause: str | None) -> None:
        wait = self._get(token)
        with wait.lock:
            if wait.outcome is None:
                wait.outcome = ("failure", None, error, cause)
        wait._poke()

    def heartbeat(self, token: str) -> None:
        wait = self._get(token)
        with wait.lock:
            wait.last_heartbeat = self._clock.now()
        # Wakes the waiter so it re-arms its heartbeat deadline.
        wait._poke()


class Execution:
    """State shared by all frames of one execution."""

    def __init__(
        self,
        *,
        clock: Clock,
        handler: TaskHandler | None,
        recorder: HistoryRecorder,
        rng: random.Random,
        context_base: dict[str, Any],
        region: str = "us-east-1",
        seed: int | None = None,
        item_reader: Any = None,
        result_writer: Any = None,
        owner: Any = None,
        on_child_event: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.region = region
        # Distributed Map's S3 ports (item_io.ItemReader / ResultWriter), and the
        # StateMachine this execution runs (its identity names the child executions).
        self.item_reader = item_reader
        self.result_writer = result_writer
        self.owner = owner
        self.on_child_event = on_child_event
        # Per-decision random streams (retry jitter) are derived from this seed plus
        # where the decision happens, so concurrent branches draw reproducibly.
        self.seed = seed if seed is not None else rng.getrandbits(64)
        self.clock = clock
        self.handler = handler
        self.recorder = recorder
        self.rng = rng
        self.context_base = context_base
        self.tokens = TokenRegistry(clock)
        self.lock = threading.Lock()
        # Why the execution is being torn down: (status, error, cause).
        self.termination: tuple[str, str | None, str | None] | None = None

    def terminate(self, status: str, error: str | None, cause: str | None) -> bool:
        with self.lock:
            if self.termination is not None:
                return False
            self.termination = (status, error, cause)
            return True


class Frame:
    """One thread of control; cancelling it cancels its descendants."""

    def __init__(
        self,
        execution: Execution,
        previous_event_id: int,
        parent: Frame | None = None,
        map_item: tuple[int, Any] | None = None,
        key: str = "",
        *,
        scope: Scope | None = None,
    ) -> None:
        self.execution = execution
        # Workflow variables: a branch/iteration reads its parent's and assigns its own.
        self.scope = scope if scope is not None else Scope()
        self.key = key  # position in the branch/iteration tree, e.g. "/0/3"
        self.previous_event_id = previous_event_id
        self.parent = parent
        self.map_item = map_item
        self.cancel_event = execution.clock.event()
        self._lock = threading.Lock()
        self._listeners: list[ClockEvent] = []
        self._children: list[Frame] = []
        self.cancelled = False
        self._last_json: tuple[Any, str] | None = None

    def child(self, map_item: tuple[int, Any] | None = None, key: str = "") -> Frame:
        frame = Frame(
            self.execution,
            self.previous_event_id,
            self,
            map_item,
            f"{self.key}/{key}",
            scope=self.scope.child(),
        )
        with self._lock:
            self._children.append(frame)
            cancelled = self.cancelled
        if cancelled:
            frame.cancel()
        return frame

    def adopt(self, frame: Frame) -> None:
        """Cancel ``frame`` (another execution's root) whenever this frame is cancelled."""
        with self._lock:
            self._children.append(frame)
            cancelled = self.cancelled
        if cancelled:
            frame.cancel()

    def forget(self, frame: Frame) -> None:
        with self._lock:
            if frame in self._children:
                self._children.remove(frame)

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            children = list(self._children)
            listeners = list(self._listeners)
        self.cancel_event.set()
        for ev in listeners:
            ev.set()
        for ch in children:
            ch.cancel()

    def listen(self, event: ClockEvent) -> None:
        """Have ``event`` set when this frame is cancelled (to wake blocked waits)."""
        with self._lock:
            self._listeners.append(event)
            cancelled = self.cancelled
        if cancelled:
            event.set()

    def unlisten(self, event: ClockEvent) -> None:
        with self._lock:
            if event in self._listeners:
                self._listeners.remove(event)

    def check(self) -> None:
        if self.cancelled:
            raise ExecutionAborted()

    def json_text(self, value: Any) -> str:
        """``to_json(value)``, reusing the text when ``value`` is the object this frame
        serialized last: a state's output is usually the next state's input, so a
        history of N transitions holds one copy of an unchanged payload, not 2N
        (payloads are never mutated in place)."""
        last = self._last_json
        if last is not None and last[0] is value:
            return last[1]
        text = to_json(value)
        self._last_json = (value, text)
        return text

    def event(self, event_type: str, details: dict[str, Any] | None = None) -> int:
        event_id = self.execution.recorder.add(event_type, self.previous_event_id, details)
        self.previous_event_id = event_id
        return event_id

    def context(self, state_name: str, entered_time: str, retry_count: int = 0) -> dict[str, Any]:
        ctx = dict(self.execution.context_base)
        ctx["State"] = {"EnteredTime": entered_time, "Name": state_name, "RetryCount": retry_count}
        return ctx


def sleep_or_cancel(frame: Frame, seconds: float) -> None:
    """Sleep on the clock, unwinding immediately if the frame is cancelled."""
    if seconds > 0 and frame.cancel_event.wait(seconds):
        raise ExecutionAborted()
    frame.check()


def failure_output(err: StatesError) -> dict[str, Any]:
    """The ``{"Error", "Cause"}`` object a Catcher passes on."""
    # Step Functions always passes both keys; a missing cause becomes "".
    return {"Error": err.error or "", "Cause": err.cause or ""}


__all__ = [
    "Execution",
    "Frame",
    "TaskContext",
    "TaskHandler",
    "TokenRegistry",
    "failure_output",
    "sleep_or_cancel",
]

"""Execution history events in the shape of ``GetExecutionHistory``."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from stepdag.asl.clock import Clock
from stepdag.asl.errors import RUNTIME, ExecutionAborted

_log = logging.getLogger(__name__)

# AWS: "a hard quota of 25,000 entries in the execution event history. When an
# execution reaches 24,999 events ... If the event number 25,000 isn't
# ExecutionSucceeded, the ExecutionFailed event is logged" (bp-history-limit).
MAX_HISTORY_EVENTS: Final = 25_000
HISTORY_LIMIT_CAUSE: Final = (
    f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
)


class HistoryLimitExceeded(ExecutionAborted):
    """Unwinds the thread whose event hit the history quota (the execution has failed)."""


# Which ``*EventDetails`` key each event type carries, as in the AWS API.
_DETAILS_KEY: Final[dict[str, str]] = {
    "ExecutionStarted": "executionStartedEventDetails",
    "ExecutionSucceeded": "executionSucceededEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
    "TaskScheduled": "taskScheduledEventDetails",
    "TaskStarted": "taskStartedEventDetails",
    "TaskSubmitted": "taskSubmittedEventDetails",
    "TaskSucceeded": "taskSucceededEventDetails",
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "MapStateStarted": "mapStateStartedEventDetails",
    "MapIterationStarted": "mapIterationStartedEventDetails",
    "MapIterationSucceeded": "mapIterationSucceededEventDetails",
    "MapIterationFailed": "mapIterationFailedEventDetails",
    "MapIterationAborted": "mapIterationAbortedEventDetails",
    "MapRunStarted": "mapRunStartedEventDetails",
    "MapRunFailed": "mapRunFailedEventDetails",
    "MapRunRedriven": "mapRunRedrivenEventDetails",
    "EvaluationFailed": "evaluationFailedEventDetails",
}


def details_key(event_type: str) -> str | None:
    if event_type in _DETAILS_KEY:
        return _DETAILS_KEY[event_type]
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    id: int
    previous_event_id: int
    timestamp: datetime
    type: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def details_key(self) -> str | None:
        return details_key(self.type)

    def to_dict(self) -> dict[str, Any]:
        """The event as the AWS API returns it (timestamp as ISO-8601 text)."""
        out: dict[str, Any] = {
            "timestamp": self.timestamp.isoformat(),
            "type": self.type,
            "id": self.id,
            "previousEventId": self.previous_event_id,
        }
        key = self.details_key
        if key is not None and self.details:
            out[key] = dict(self.details)
        return out


class HistoryRecorder:
    """Assigns ids in a single total order and streams events to ``on_event``.

    With ``max_events`` (Standard executions) the event that would take the last id
    becomes the quota's ``ExecutionFailed`` unless it is ``ExecutionSucceeded``; then
    ``on_limit`` is called (outside the lock, to fail the execution) and the thread
    that emitted it unwinds with :class:`HistoryLimitExceeded`.
    """

    def __init__(
        self,
        clock: Clock,
        on_event: Callable[[HistoryEvent], None] | None,
        *,
        max_events: int | None = None,
        on_limit: Callable[[], None] | None = None,
        retain: bool = True,
    ) -> None:
        self._clock = clock
        self._on_event = on_event
        self._lock = threading.Lock()
        self.events: list[HistoryEvent] = []
        # A Distributed Map's child executions only count their events (bounded memory).
        self._retain = retain
        self.count = 0
        self._closed = False
        self._max_events = max_events
        self._on_limit = on_limit
        self.limit_exceeded = False
        self.listener_error: BaseException | None = None

    def add(
        self,
        event_type: str,
        previous: int,
        details: dict[str, Any] | None = None,
        *,
        final: bool = False,
    ) -> int:
        """Record an event; after the ``final`` (execution-closing) one, events are dropped."""
        unwind = False
        with self._lock:
            if self._closed:
                # A straggler thread of a finished execution (e.g. a branch unwinding
                # after a stop): the history is already complete.
                return previous
            event_id = self.count + 1
            if (
                self._max_events is not None
                and event_id >= self._max_events
                and not (final and event_type == "ExecutionSucceeded")
            ):
                self.limit_exceeded = True
                unwind = not final
                event_type, final = "ExecutionFailed", True
                details = {"error": RUNTIME, "cause": HISTORY_LIMIT_CAUSE}
            self._closed = final
            event = HistoryEvent(
                id=event_id,
                previous_event_id=previous,
                timestamp=self._clock.now_datetime(),
                type=event_type,
                details=details or {},
            )
            self.count = event_id
            if self._retain:
                self.events.append(event)
            # Streamed under the lock so listeners see events in id order.
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:
                    # A failing listener (e.g. persistence) must not corrupt the run;
                    # the first failure is kept for the caller to inspect.
                    _log.exception("on_event listener failed for event %s", event.id)
                    if self.listener_error is None:
                        self.listener_error = sys.exc_info()[1]
        if unwind:
            if self._on_limit is not None:
                self._on_limit()
            raise HistoryLimitExceeded()
        return event.id


__all__ = [
    "HISTORY_LIMIT_CAUSE",
    "MAX_HISTORY_EVENTS",
    "HistoryEvent",
    "HistoryLimitExceeded",
    "HistoryRecorder",
    "details_key",
]

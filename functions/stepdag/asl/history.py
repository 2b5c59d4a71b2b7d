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

_log = logging.getLogger(__name__)

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
    """Assigns ids in a single total order and streams events to ``on_event``."""

    def __init__(self, clock: Clock, on_event: Callable[[HistoryEvent], None] | None) -> None:
        self._clock = clock
        self._on_event = on_event
        self._lock = threading.Lock()
        self.events: list[HistoryEvent] = []
        self._closed = False
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
        with self._lock:
            if self._closed:
                # A straggler thread of a finished execution (e.g. a branch unwinding
                # after a stop): the history is already complete.
                return previous
            self._closed = final
            event = HistoryEvent(
                id=len(self.events) + 1,
                previous_event_id=previous,
                timestamp=self._clock.now_datetime(),
                type=event_type,
                details=details or {},
            )
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
            return event.id


__all__ = ["HistoryEvent", "HistoryRecorder", "details_key"]

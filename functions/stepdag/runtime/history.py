"""The local engine's history writer: interpreter events to the store, in batches."""

from __future__ import annotations

import logging
import threading
from typing import Any

from stepdag.asl import HistoryEvent
from stepdag.runtime.store import ExecutionStore

logger = logging.getLogger("stepdag.engine")


class HistoryWriter:
    """Writes history events to the store from one background thread, in batches.

    The interpreter hands events over while holding its history lock (that keeps their
    order), so the hand-over is a list append. The writer wakes every ``interval`` seconds
    or when someone flushes, never per event: a thread woken per event would compete for
    the GIL with the workers running nodes. History is for inspection; node outputs,
    which must survive a crash, are committed by the runner itself.
    """

    def __init__(self, store: ExecutionStore, interval: float = 0.2) -> None:
        self.store = store
        self.interval = interval
        self._buf: list[tuple[str, int, HistoryEvent] | threading.Event] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, execution_id: str, offset: int, event: HistoryEvent) -> None:
        with self._cond:
            self._buf.append((execution_id, offset, event))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="stepdag-history", daemon=True
                )
                self._thread.start()

    def flush(self) -> None:
        """Block until every event put before this call is in the store."""
        done = threading.Event()
        with self._cond:
            if self._thread is None:
                return
            self._buf.append(done)
            self._cond.notify()
        done.wait()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._buf:
                    self._cond.wait(self.interval)
                items, self._buf = self._buf, []
            if items:
                self._write(items)

    def _write(self, items: list[tuple[str, int, HistoryEvent] | threading.Event]) -> None:
        batches: dict[str, list[dict[str, Any]]] = {}
        barriers = []
        for item in items:
            if isinstance(item, threading.Event):
                barriers.append(item)
                continue
            execution_id, offset, event = item
            data = event.to_dict()
            if offset:  # a redrive continues the stored history's numbering
                data["id"] += offset
                if data.get("previousEventId"):
                    data["previousEventId"] += offset
            batches.setdefault(execution_id, []).append(data)
        for execution_id, events in batches.items():
            try:
                self.store.append_events(execution_id, events)
            except Exception:  # history must never take a run down; keep going
                logger.exception("could not store %d history events", len(events))
        for barrier in barriers:
            barrier.set()


__all__ = ["HistoryWriter"]

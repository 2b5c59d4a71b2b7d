"""Clocks: wall time, and a discrete-event virtual clock for deterministic runs.

Every blocking wait inside an execution goes through a :class:`ClockEvent` or
:meth:`Clock.sleep`, and every thread that runs execution code is started with
:meth:`Clock.spawn`. That is what lets :class:`VirtualClock` know when *all*
participating threads are blocked: only then does it jump to the earliest pending
deadline, so Wait states, retry back-off and handler sleeps cost no wall time while
Parallel/Map makespans come out exactly as they would in real time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime


class ClockEvent(ABC):
    """A one-shot flag that clock-aware threads can block on."""

    @abstractmethod
    def set(self) -> None: ...

    @abstractmethod
    def is_set(self) -> bool: ...

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or until ``timeout`` clock-seconds pass; return whether set."""


class Clock(ABC):
    @abstractmethod
    def now(self) -> float:
        """Seconds since the Unix epoch, in this clock's time."""

    @abstractmethod
    def sleep(self, seconds: float) -> None: ...

    @abstractmethod
    def event(self) -> ClockEvent: ...

    @abstractmethod
    def spawn(self, target: Callable[[], None], name: str = "asl") -> threading.Thread:
        """Start ``target`` in a new thread that takes part in this clock's time."""

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def now_iso(self) -> str:
        """The context object's timestamp format: ``2024-01-02T03:04:05.678Z``."""
        return self.now_datetime().isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RealEvent(ClockEvent):
    def __init__(self) -> None:
        self._ev = threading.Event()

    def set(self) -> None:
        self._ev.set()

    def is_set(self) -> bool:
        return self._ev.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ev.wait(None if timeout is None else max(0.0, timeout))


class RealClock(Clock):
    """Wall-clock time; sleeps really sleep."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def event(self) -> ClockEvent:
        return _RealEvent()

    def spawn(self, target: Callable[[], None], name: str = "asl") -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread


class _Waiter:
    """One blocked thread. Its own condition (on the clock's lock) is notified alone,
    so an event wakes only its waiters, not every blocked participant."""

    __slots__ = ("cond", "woken")

    def __init__(self, lock: threading.Lock) -> None:
        self.woken = False
        self.cond = threading.Condition(lock)


class _VirtualEvent(ClockEvent):
    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._flag = False
        self._waiters: list[_Waiter] = []

    def set(self) -> None:
        clock = self._clock
        with clock._cond:
            if self._flag:
                return
            self._flag = True
            for waiter in self._waiters:
                clock._wake(waiter)
            self._waiters.clear()

    def is_set(self) -> bool:
        with self._clock._cond:
            return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        clock = self._clock
        with clock._cond:
            if self._flag:
                return True
            if timeout is not None and timeout <= 0:
                return False
            waiter = _Waiter(clock._lock)
            self._waiters.append(waiter)
            clock._block(waiter, None if timeout is None else clock._now + timeout)
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return self._flag


class VirtualClock(Clock):
    """Discrete-event time: advances only when every participating thread is blocked.

    ``start`` is the initial time in epoch seconds (default 0, so ``now()`` after a run
    is its makespan). Threads that are not started through :meth:`spawn` (e.g. the
    caller waiting on a result, or a thread calling ``send_task_success``) do not
    count as participants; setting an event from them wakes participants normally.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._now = float(start)
        self._active = 0
        self._timers: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        # Called (lock held) when every participant is blocked, before time advances;
        # a hook that starts a participant (``spawn_when_idle``) keeps time still.
        self._idle_hooks: list[Callable[[], bool]] = []

    def now(self) -> float:
        with self._cond:
            return self._now

    @property
    def active_threads(self) -> int:
        with self._cond:
            return self._active

    def sleep(self, seconds: float) -> None:
        with self._cond:
            if seconds <= 0:
                return
            self._block(_Waiter(self._lock), self._now + seconds)

    def event(self) -> ClockEvent:
        return _VirtualEvent(self)

    def spawn(self, target: Callable[[], None], name: str = "asl") -> threading.Thread:
        with self._cond:
            # Counted before the thread starts so time cannot jump in between.
            self._active += 1
        return self._start(target, name)

    def _start(self, target: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            finally:
                with self._cond:
                    self._active -= 1
                    self._maybe_advance()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def add_idle_hook(self, hook: Callable[[], bool]) -> None:
        """``hook()`` runs, with the clock's lock held, whenever every participant is
        blocked and before time advances; it returns True if it started a participant
        with :meth:`spawn_when_idle` (then time stays where it is)."""
        with self._cond:
            self._idle_hooks.append(hook)
            self._maybe_advance()

    def remove_idle_hook(self, hook: Callable[[], bool]) -> None:
        with self._cond:
            if hook in self._idle_hooks:
                self._idle_hooks.remove(hook)

    def spawn_when_idle(self, target: Callable[[], None], name: str = "asl") -> None:
        """:meth:`spawn` for idle hooks (the caller holds the clock's lock)."""
        self._active += 1
        self._start(target, name)

    # -- internals (called with self._cond held) -----------------------------------

    def _block(self, waiter: _Waiter, deadline: float | None) -> None:
        if deadline is not None:
            heapq.heappush(self._timers, (deadline, next(self._seq), waiter))
        self._active -= 1
        self._maybe_advance()
        while not waiter.woken:
            waiter.cond.wait()

    def _wake(self, waiter: _Waiter) -> None:
        if not waiter.woken:
            waiter.woken = True
            self._active += 1
            waiter.cond.notify()

    def _maybe_advance(self) -> None:
        while self._active <= 0:
            if any(hook() for hook in list(self._idle_hooks)):
                return
            while self._timers and self._timers[0][2].woken:
                heapq.heappop(self._timers)
            if not self._timers:
                return
            deadline = self._timers[0][0]
            self._now = max(self._now, deadline)
            while self._timers and self._timers[0][0] <= deadline:
                _, _, waiter = heapq.heappop(self._timers)
                self._wake(waiter)


class CancellableClock(Clock):
    """The clock handed to a task handler: sleeps end early once the task is abandoned.

    A task is abandoned when it times out, a sibling branch fails or the execution
    stops; its handler cannot be killed, but it should not keep (virtual) time busy.
    """

    def __init__(self, inner: Clock, cancelled: ClockEvent) -> None:
        self._inner = inner
        self._cancelled = cancelled

    def now(self) -> float:
        return self._inner.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._cancelled.wait(seconds)

    def event(self) -> ClockEvent:
        return self._inner.event()

    def spawn(self, target: Callable[[], None], name: str = "asl") -> threading.Thread:
        return self._inner.spawn(target, name)


__all__ = ["CancellableClock", "Clock", "ClockEvent", "RealClock", "VirtualClock"]

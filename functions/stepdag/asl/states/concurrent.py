"""Bounded fan-out of child frames (Parallel branches, Map iterations).

A fixed pool of worker threads pulls job indexes in index order, so the concurrency
bound is also the thread count; the parent blocks on a clock event so virtual time
sees it as idle. The ``judge`` callback decides, under a lock, whether an outcome
must stop the remaining jobs (AWS stops all branches when one fails).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from stepdag.asl.clock import ClockEvent, RealClock, VirtualClock
from stepdag.asl.errors import ExecutionAborted, StatesError
from stepdag.asl.runtime import Frame

# AWS runs at most 40 iterations of an inline Map at once, whatever MaxConcurrency
# says; using the same bound keeps virtual-time makespans faithful and threads few.
INLINE_MAP_CONCURRENCY: Final = 40
# Distributed Map runs up to 10,000 child executions at once, one worker thread each
# while they block (workers are added only when all are blocked, so instant children
# share one): 10,000 blocked children measured at ~330 MB peak RSS.
DISTRIBUTED_MAP_CONCURRENCY: Final = 10_000
# How long every worker may sit on its current job before another worker is added.
RAMP_INTERVAL: Final = 0.002
# While jobs keep completing, the check backs off up to this interval.
RAMP_MAX_INTERVAL: Final = 0.05


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    ok: bool
    value: Any = None
    error: StatesError | None = None
    aborted: bool = False


def run_concurrently(
    frame: Frame,
    count: int,
    max_concurrency: int,
    work: Callable[[int, Frame], Any],
    judge: Callable[[Outcome], bool],
    *,
    ramp_up: bool = False,
) -> tuple[list[Outcome | None], bool]:
    """Run ``work(i, child_frame)`` for ``i in range(count)``.

    Returns the outcomes by index (None for jobs never started) and whether ``judge``
    asked to stop. ``max_concurrency`` 0 means all jobs at once.

    With ``ramp_up`` and a :class:`RealClock`, workers are added only while the
    existing ones are all stuck on their current job (no job taken for
    ``RAMP_INTERVAL``): iterations that block (I/O, sleeps) still reach full
    concurrency within milliseconds, while iterations that return at once run on one
    or two threads instead of 40 fighting over the GIL and the locks.
    """
    outcomes: list[Outcome | None] = [None] * count
    if count == 0:
        return outcomes, False
    workers = count if max_concurrency <= 0 else min(count, max_concurrency)
    lock = threading.Lock()
    clock = frame.execution.clock
    done = clock.event()
    state = {"next": 0, "running": 0, "stopped": False, "takes": 0}
    active: dict[int, Frame] = {}
    last_event = [frame.previous_event_id]

    def take() -> tuple[int, Frame] | None:
        with lock:
            if state["stopped"] or state["next"] >= count or frame.cancelled:
                return None
            i = state["next"]
            state["next"] = i + 1
            state["takes"] += 1
            child = frame.child(key=str(i))
            active[i] = child
            return i, child

    def record(outcome: Outcome, child: Frame) -> None:
        with lock:
            outcomes[outcome.index] = outcome
            active.pop(outcome.index, None)
            last_event[0] = max(last_event[0], child.previous_event_id)
            stop = not state["stopped"] and judge(outcome)
            if stop:
                state["stopped"] = True
                to_cancel = list(active.values())
            else:
                to_cancel = []
        frame.forget(child)
        for other in to_cancel:
            other.cancel()

    def worker() -> None:
        try:
            while True:
                job = take()
                if job is None:
                    return
                i, child = job
                try:
                    value = work(i, child)
                    outcome = Outcome(i, True, value)
                except StatesError as err:
                    outcome = Outcome(i, False, error=err)
                except ExecutionAborted:
                    outcome = Outcome(i, False, aborted=True)
                record(outcome, child)
        finally:
            with lock:
                state["running"] -= 1
                last = state["running"] == 0
            if last:
                done.set()

    if workers == 1:
        # Sequential: no thread needed, and the semantics are identical.
        state["running"] = 1
        worker()
    elif ramp_up and isinstance(clock, RealClock):
        _ramp(
            clock,
            worker,
            workers=workers,
            state=state,
            lock=lock,
            done=done,
            count=count,
            frame=frame,
        )
    elif ramp_up and isinstance(clock, VirtualClock):
        _lazy(
            clock,
            worker,
            workers=workers,
            state=state,
            lock=lock,
            done=done,
            count=count,
            frame=frame,
        )
    else:
        state["running"] = workers
        for n in range(workers):
            clock.spawn(worker, name=f"asl-worker-{n}")
        # Cancelling ``frame`` cancels the children, so this wait ends promptly on stop.
        done.wait()
    if frame.cancelled:
        raise ExecutionAborted()
    # The parent's next event follows the last event any child emitted.
    frame.previous_event_id = last_event[0]
    return outcomes, bool(state["stopped"])


def _lazy(
    clock: VirtualClock,
    worker: Callable[[], None],
    *,
    workers: int,
    state: dict[str, int],
    lock: threading.Lock,
    done: ClockEvent,
    count: int,
    frame: Frame,
) -> None:
    """Virtual time: add a worker only when every participant is blocked, before time
    moves on. Makespans are those of starting all ``workers`` at once (a job that
    blocks lets the next one start at the same instant), but jobs that never block run
    on one thread instead of waking hundreds on every clock event."""
    spawned = [0]

    def hook() -> bool:
        # Runs with the clock's lock held. A thread holding ``lock`` is not blocked on
        # the clock, so when every participant is blocked ``lock`` is free.
        if not lock.acquire(blocking=False):
            return False
        try:
            pending = state["next"] < count and not state["stopped"] and not frame.cancelled
            if spawned[0] >= workers or not pending:
                return False
            state["running"] += 1
            spawned[0] += 1
        finally:
            lock.release()
        clock.spawn_when_idle(worker, name=f"asl-worker-{spawned[0] - 1}")
        return True

    clock.add_idle_hook(hook)
    try:
        done.wait()
    finally:
        clock.remove_idle_hook(hook)


def _ramp(
    clock: RealClock,
    worker: Callable[[], None],
    *,
    workers: int,
    state: dict[str, int],
    lock: threading.Lock,
    done: ClockEvent,
    count: int,
    frame: Frame,
) -> None:
    with lock:
        state["running"] = 1
    spawned = 1
    clock.spawn(worker, name="asl-worker-0")
    seen = -1
    interval = RAMP_INTERVAL
    while not done.wait(interval):
        with lock:
            stalled = state["takes"] == seen
            seen = state["takes"]
            pending = state["next"] < count and not state["stopped"] and not frame.cancelled
            grow = stalled and spawned < workers and pending
            if grow:
                # Counted under the lock: the last exiting worker cannot miss it.
                state["running"] += 1
        if grow:
            clock.spawn(worker, name=f"asl-worker-{spawned}")
            spawned += 1
            interval = RAMP_INTERVAL
        elif not pending or spawned >= workers:
            # Nothing left to hand out: stop polling (thousands of concurrent executions
            # polling every 2 ms would starve the workers of the GIL).
            done.wait()
            break
        else:
            # Jobs are flowing: look again less often.
            interval = min(interval * 2, RAMP_MAX_INTERVAL)


__all__ = ["DISTRIBUTED_MAP_CONCURRENCY", "INLINE_MAP_CONCURRENCY", "Outcome", "run_concurrently"]

"""Attempt fencing end to end on the local engine (real clock: Task timeouts are real).

A node's ``timeout`` fences each attempt: a result that arrives after it is refused and
the node recorded TIMED_OUT; an attempt still running when the execution ends is ended in
the store then, so no node stays RUNNING in a finished execution.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepdag import Retry, Workflow
from stepdag.asl import TaskContext
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.records import NodeKey
from stepdag.runtime.runs import EngineHooks, LocalRun, Payload
from stepdag.runtime.sqlite import SqliteStore

# Past the 1 s timeout, short of the retry's claim 1 s later (the figures).
LATE_S = 1.6


@pytest.fixture()
def engine(tmp_path: Path) -> LocalEngine:
    return LocalEngine(SqliteStore(tmp_path / "s.db"))


def test_a_retry_after_a_timeout_is_not_answered_by_the_late_first_attempt(
    engine: LocalEngine,
) -> None:
    calls: list[int] = []
    finished = threading.Semaphore(0)
    wf = Workflow("fenced_retry")

    @wf.node(timeout=1, retry=Retry(max_attempts=2, interval=1, errors=("States.Timeout",)))
    def slow() -> int:
        calls.append(len(calls) + 1)
        try:
            time.sleep(LATE_S)
            return len(calls)
        finally:
            finished.release()

    rec = engine.run(wf, name="r1")
    assert (rec.status, rec.error) == (RunStatus.FAILED, "States.Timeout")
    assert rec.cause == "node 'slow' timed out after 1.0 s (attempt 2 of 2)"
    assert calls == [1, 2]
    node = engine.store.get_node(NodeKey(rec.execution_id, "slow"))
    assert node is not None and node.status is NodeStatus.TIMED_OUT  # not RUNNING
    assert node.attempts == 2 and node.cause == rec.cause
    finished.acquire()
    finished.acquire()  # both late attempts have returned now: neither was stored
    node = engine.store.get_node(NodeKey(rec.execution_id, "slow"))
    assert node is not None and (node.status, node.output) == (NodeStatus.TIMED_OUT, None)


class _Returned(EngineHooks):
    """Sets ``event`` once a Task invocation -- the node runner, store write included --
    has returned (or raised)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def invoke(
        self, run: LocalRun, payload: Payload, ctx: TaskContext, proceed: Callable[[Payload], Any]
    ) -> Any:
        try:
            return proceed(payload)
        finally:
            self.event.set()


def test_a_late_result_never_becomes_the_output_resume_reuses(tmp_path: Path) -> None:
    returned = _Returned()
    engine = LocalEngine(SqliteStore(tmp_path / "s.db"), hooks=[returned])
    release = threading.Event()
    calls: list[str] = []
    wf = Workflow("fenced_resume")

    @wf.node(timeout=1)
    def slow() -> str:
        calls.append("call")
        if len(calls) == 1:
            release.wait(30)  # the first attempt answers only after the run has ended
            return "late"
        return "fresh"

    @wf.node
    def after(slow: str) -> str:
        return slow + "!"

    rec = engine.run(wf, name="r1")
    assert (rec.status, rec.error) == (RunStatus.FAILED, "States.Timeout")
    key = NodeKey(rec.execution_id, "slow")
    node = engine.store.get_node(key)
    assert node is not None and node.status is NodeStatus.TIMED_OUT
    assert node.started_at is not None and node.ended_at is not None
    assert rec.cause == "node 'slow' timed out after 1.0 s (attempt 1 of 1)"
    returned.event.clear()  # the run's `after` never ran: only the late attempt is left
    release.set()
    assert returned.event.wait(30)  # the late attempt has been to the store
    node = engine.store.get_node(key)
    assert node is not None and (node.status, node.output) == (NodeStatus.TIMED_OUT, None)
    resumed = engine.resume(rec.execution_id)
    assert (resumed.status, resumed.output) == (RunStatus.SUCCEEDED, "fresh!")
    assert calls == ["call", "call"]


def test_no_node_stays_running_in_a_finished_execution(engine: LocalEngine) -> None:
    release = threading.Event()
    wf = Workflow("fenced_map")

    @wf.node
    def items() -> list[int]:
        return [0, 1, 2]

    @wf.node(map_over="items", timeout=1)
    def work(items: int) -> int:
        if items == 1:
            release.wait(30)
        return items

    try:
        rec = engine.run(wf, name="m1")
        assert (rec.status, rec.error) == (RunStatus.FAILED, "States.Timeout")
        records = engine.store.list_nodes(rec.execution_id, include_items=True)
        assert [str(r.key) for r in records if r.status is NodeStatus.RUNNING] == []
        assert rec.cause == "node 'work' item 1 timed out after 1.0 s (attempt 1 of 1)"
        item = engine.store.get_node(NodeKey(rec.execution_id, "work", 1))
        assert item is not None and item.status is NodeStatus.TIMED_OUT
    finally:
        release.set()


def test_a_caught_timeout_is_recorded_timed_out_and_dependents_carry_on(
    engine: LocalEngine,
) -> None:
    release = threading.Event()
    wf = Workflow("fenced_catch")

    @wf.node(timeout=1, continue_on_failure=True)
    def slow() -> int:
        release.wait(30)
        return 1

    @wf.node(on_upstream_skipped="run")
    def after(slow: int | None) -> str:
        return f"got {slow}"

    try:
        rec = engine.run(wf, name="c1")
        assert (rec.status, rec.output) == (RunStatus.SUCCEEDED, "got None")
        node = engine.store.get_node(NodeKey(rec.execution_id, "slow"))
        assert node is not None and (node.status, node.error, node.cause) == (
            NodeStatus.TIMED_OUT,
            "States.Timeout",
            "node 'slow' timed out after 1.0 s (attempt 1 of 1)",
        )
    finally:
        release.set()

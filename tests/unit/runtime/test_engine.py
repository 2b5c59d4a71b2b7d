"""LocalEngine's non-blocking runs (start, cancel, LocalRun) and its named hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepdag import Workflow
from stepdag.asl import TaskContext
from stepdag.core.errors import Conflict
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.engine import EngineHooks, LocalEngine, LocalRun
from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.api import workflows


@pytest.fixture(autouse=True)
def _gate() -> Iterator[None]:
    workflows.GATE.clear()
    yield
    workflows.GATE.set()


def _engine(tmp_path: Path, **kw: Any) -> LocalEngine:
    return LocalEngine(SqliteStore(tmp_path / "engine.db"), **kw)


def _until(condition: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(1000):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("condition not reached")


def test_start_returns_while_the_run_goes_on(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    rec = engine.create(workflows.gated, {}, name="g1")
    run = engine.start(rec)
    assert isinstance(run, LocalRun) and run.execution_id == rec.execution_id
    node = NodeKey(rec.execution_id, "hold")
    _until(lambda: getattr(engine.store.get_node(node), "status", None) is NodeStatus.RUNNING)
    assert not run.done() and engine.running(rec.execution_id) is run
    workflows.GATE.set()
    final = run.wait(30)
    assert final.status is RunStatus.SUCCEEDED
    assert engine.running(rec.execution_id) is None


def test_cancel_stops_a_live_run_and_none_when_nothing_runs(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    rec = engine.create(workflows.gated, {}, name="g2")
    run = engine.start(rec)
    _until(lambda: run.handle is not None)
    assert engine.cancel(rec.execution_id, error="Stop", cause="test") is run
    assert run.join(30)
    final = run.wait()
    assert (final.status, final.error, final.cause) == (RunStatus.ABORTED, "Stop", "test")
    assert engine.cancel(rec.execution_id) is None


def test_a_run_cancelled_before_its_interpreter_started_ends_aborted(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_active=1)
    first = engine.start(engine.create(workflows.gated, {}, name="holds-the-slot"))
    _until(lambda: first.handle is not None)
    waiting = engine.start(engine.create(workflows.demo, {"x": 1}, name="waits"))
    assert waiting.handle is None  # admission is held by the first run
    engine.cancel(waiting.execution_id)
    workflows.GATE.set()
    assert first.wait(30).status is RunStatus.SUCCEEDED
    final = waiting.wait(30)
    assert (final.status, final.error) == (RunStatus.ABORTED, "Cancelled")
    assert engine.store.get_node(NodeKey(final.execution_id, "first")) is None  # never ran


def test_a_second_run_of_a_live_execution_is_refused(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    rec = engine.create(workflows.gated, {}, name="g3")
    engine.start(rec)
    with pytest.raises(Conflict, match="is running in this engine"):
        engine.start(rec)


class Recorder(EngineHooks):
    def __init__(self, label: str, log: list[Any]) -> None:
        self.label = label
        self.log = log

    def on_start(self, run: LocalRun) -> None:
        self.log.append((self.label, "start", run.handle is not None))

    def invoke(
        self, run: LocalRun, payload: Any, ctx: TaskContext, proceed: Callable[[Any], Any]
    ) -> Any:
        self.log.append((self.label, "invoke", payload["node"], payload["redrive"]))
        out = proceed(payload)
        self.log.append((self.label, "done", payload["node"]))
        return out

    def on_finish(self, run: LocalRun) -> None:
        assert run.final is not None
        self.log.append((self.label, "finish", run.final.status.value))


def test_hooks_are_called_at_their_points_outer_hook_first(tmp_path: Path) -> None:
    log: list[Any] = []
    engine = _engine(tmp_path, hooks=[Recorder("outer", log), Recorder("inner", log)])
    final = engine.run(workflows.demo, {"x": 1}, name="h1")
    assert final.status is RunStatus.SUCCEEDED and final.output == 4
    assert log == [
        ("outer", "start", True),
        ("inner", "start", True),
        ("outer", "invoke", "first", 0),
        ("inner", "invoke", "first", 0),
        ("inner", "done", "first"),
        ("outer", "done", "first"),
        ("outer", "invoke", "second", 0),
        ("inner", "invoke", "second", 0),
        ("inner", "done", "second"),
        ("outer", "done", "second"),
        ("outer", "finish", "SUCCEEDED"),
        ("inner", "finish", "SUCCEEDED"),
    ]


class Injected(Exception):
    pass


def test_an_invoke_hook_that_raises_fails_the_task_like_a_lambda(tmp_path: Path) -> None:
    class Refuse(EngineHooks):
        def invoke(
            self, run: LocalRun, payload: Any, ctx: TaskContext, proceed: Callable[[Any], Any]
        ) -> Any:
            raise Injected(f"no {payload['node']}")

    engine = _engine(tmp_path, hooks=[Refuse()])
    final = engine.run(workflows.demo, {"x": 1}, name="h2")
    assert (final.status, final.error) == (RunStatus.FAILED, "Injected")
    assert final.cause is not None and '"errorMessage":"no first"' in final.cause


def test_an_observer_hook_that_raises_is_logged_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(EngineHooks):
        def on_start(self, run: LocalRun) -> None:
            raise RuntimeError("observer bug")

    engine = _engine(tmp_path, hooks=[Broken()])
    with caplog.at_level(logging.ERROR, logger="stepdag.engine"):
        final = engine.run(workflows.demo, {"x": 1}, name="h3")
    assert final.status is RunStatus.SUCCEEDED
    assert "hook Broken.on_start failed" in caplog.text


def test_a_run_that_fails_outside_the_interpreter_is_recorded_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)

    def broken(*args: Any) -> Any:
        raise RuntimeError("output lost")

    monkeypatch.setattr(engine, "workflow_output", broken)
    blocking = engine.create(workflows.demo, {"x": 1}, name="o1")
    with pytest.raises(RuntimeError, match="output lost"):
        engine.execute(blocking)
    background = engine.start(engine.create(workflows.demo, {"x": 1}, name="o2"))
    assert background.join(30)
    assert isinstance(background.error, RuntimeError)
    for name in ("o1", "o2"):
        rec = engine.store.get_execution(name)
        failed = (rec.status, rec.error, rec.cause)
        assert failed == (RunStatus.FAILED, "RuntimeError", "output lost")


def test_workflows_and_unknown_workflow(tmp_path: Path) -> None:
    from stepdag.core.errors import WorkflowLoadError

    engine = _engine(tmp_path)
    wf = Workflow("solo")

    @wf.node
    def only() -> int:
        return 1

    engine.register(wf)
    assert list(engine.workflows) == ["solo"]
    with pytest.raises(WorkflowLoadError, match="no workflow named 'other' is loaded"):
        engine.dag("other")

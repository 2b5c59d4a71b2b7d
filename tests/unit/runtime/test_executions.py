"""The execution lifecycle's rules, run against both launchers.

``local``: the LocalEngine's threads on SQLite.  ``stepfunctions``: moto's Step Functions
interpreter, every Lambda Task answered in-process by the real NodeRunner on a DynamoDB
store (moto), as in tests/functional/test_api_aws_moto.py; the lifecycle is the one the
Step Functions service wires (its ``refresh`` reads Step Functions' status).

Both sides go through a launcher wrapper that counts launches, so "one execution" means
one launch, not just one record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from stepdag.core.compile import Targets, compile_dag
from stepdag.core.errors import (
    BadRequest,
    Conflict,
    IdempotencyConflict,
    RequestError,
    WorkflowLoadError,
)
from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.engine import LocalEngine, LocalLauncher
from stepdag.runtime.executions import Executions, Launcher, reusable_nodes
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.sqlite import SqliteStore
from stepdag.runtime.store import ExecutionStore
from tests.unit.api import workflows

TABLE = "stepdag-lifecycle-moto"
FUNCTION = "stepdag-node-runner"


class CountingLauncher:
    """Delegates to a launcher, recording which of its methods the lifecycle called."""

    def __init__(self, inner: Launcher) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return call

    def launches(self) -> int:
        return sum(c in ("launch", "relaunch") for c in self.calls)


@dataclass
class Side:
    kind: str
    executions: Executions
    launcher: CountingLauncher
    store: ExecutionStore
    finish: Callable[[str], ExecutionRecord]
    """Wait for the run of an execution id to end; its record, brought up to date."""
    extras: dict[str, Any] = field(default_factory=dict)


def _dags() -> dict[str, Dag]:
    return {wf.name: wf.build() for wf in workflows.ALL}


@pytest.fixture(autouse=True)
def _reset_workflows() -> Iterator[None]:
    workflows.GATE.clear()
    workflows.FAIL["on"] = True
    yield
    workflows.GATE.set()


@pytest.fixture
def local_side(tmp_path: Path) -> Iterator[Side]:
    store = SqliteStore(tmp_path / "lifecycle.db")
    engine = LocalEngine(store, workflows=_dags())
    launcher = CountingLauncher(LocalLauncher(engine))
    executions = Executions(store, launcher)  # type: ignore[arg-type]

    def finish(execution_id: str) -> ExecutionRecord:
        run = engine.running(execution_id)
        if run is not None:
            run.join(30)
        return store.get_execution(execution_id)

    yield Side("local", executions, launcher, store, finish, {"engine": engine})
    workflows.GATE.set()
    engine.wait_idle(30)


@pytest.fixture
def sfn_side(monkeypatch: pytest.MonkeyPatch) -> Iterator[Side]:
    from stepdag.api.aws import StepFunctionsExecutionService
    from stepdag.runtime.dynamodb import DynamoDbStore, create_table
    from stepdag.runtime.runner import NodeRunner
    from tests.support.lambdas import REGION, lambda_arn
    from tests.support.moto_sfn import moto_sfn, wait_for_execution

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    dags = _dags()
    runner: list[NodeRunner] = []

    def node_runner(fn_name: str, payload: Any) -> Any:
        assert fn_name == FUNCTION
        return runner[0].handle(payload)

    with moto_sfn(node_runner) as sfn:
        create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        store = DynamoDbStore(TABLE)
        runner.append(NodeRunner(dags, store))
        to_runner = Targets(lambda _n: lambda_arn(FUNCTION))
        targets = {
            name: sfn.create_state_machine(compile_dag(dag, to_runner).definition, name)
            for name, dag in dags.items()
        }
        service = StepFunctionsExecutionService(store, dags, targets, client=sfn.client)
        launcher = CountingLauncher(service._launcher)
        # The service's wiring, with the counting launcher: refresh = DescribeExecution.
        executions = Executions(store, launcher, refresh=service._fresh)  # type: ignore[arg-type]

        def finish(execution_id: str) -> ExecutionRecord:
            wait_for_execution(sfn.client, execution_id, timeout=30)
            return executions.get(execution_id)

        try:
            yield Side(
                "stepfunctions", executions, launcher, store, finish, {"sfn": sfn, "svc": service}
            )
        finally:
            workflows.GATE.set()
            for page in sfn.client.get_paginator("list_executions").paginate(
                stateMachineArn=targets["api_gated"]
            ):
                for ex in page["executions"]:
                    wait_for_execution(sfn.client, ex["executionArn"], timeout=15)


@pytest.fixture(params=["local", pytest.param("stepfunctions", marks=pytest.mark.moto)])
def side(request: pytest.FixtureRequest) -> Side:
    name = "local_side" if request.param == "local" else "sfn_side"
    found: Side = request.getfixturevalue(name)
    return found


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def _held(side: Side, name: str) -> ExecutionRecord:
    """A started run of api_gated whose node is running (blocked on the gate)."""
    rec, _ = side.executions.start("api_gated", {}, name=name)
    _until(lambda: _node_status(side, rec, "hold") is NodeStatus.RUNNING)
    return rec


def _node_status(side: Side, rec: ExecutionRecord, node: str) -> NodeStatus | None:
    found = side.store.get_node(NodeKey(rec.execution_id, node))
    return None if found is None else found.status


# ------------------------------------------------------------------ start


def test_start_stores_the_record_first_and_runs_it(side: Side) -> None:
    rec, created = side.executions.start("api_demo", {"x": 1}, name="s1")
    assert created
    assert rec.name == "s1" and rec.status is RunStatus.RUNNING
    assert rec.execution_id.endswith(":execution:api_demo:s1")
    final = side.finish(rec.execution_id)
    assert final.status is RunStatus.SUCCEEDED
    assert side.store.get_node(NodeKey(rec.execution_id, "second")).output == 4  # type: ignore[union-attr]
    assert side.launcher.launches() == 1


def test_same_key_twice_is_one_execution(side: Side) -> None:
    first, created = side.executions.start("api_demo", {"x": 1}, name="once")
    again, created_again = side.executions.start("api_demo", {"x": 1}, name="once")
    assert (created, created_again) == (True, False)
    assert again.execution_id == first.execution_id
    assert side.launcher.launches() == 1
    assert side.finish(first.execution_id).status is RunStatus.SUCCEEDED
    # A replay after the run ended answers the ended run, still without a launch.
    late, created_late = side.executions.start("api_demo", {"x": 1}, name="once")
    assert not created_late and late.status is RunStatus.SUCCEEDED
    assert side.launcher.launches() == 1


def test_same_key_other_input_or_tenant_is_a_conflict(side: Side) -> None:
    side.executions.start("api_demo", {"x": 1}, name="k", tenant="acme")
    with pytest.raises(IdempotencyConflict) as other_input:
        side.executions.start("api_demo", {"x": 2}, name="k", tenant="acme")
    assert (other_input.value.http_status, other_input.value.field) == (409, "input")
    with pytest.raises(IdempotencyConflict) as other_tenant:
        side.executions.start("api_demo", {"x": 1}, name="k", tenant="globex")
    assert other_tenant.value.field == "name"
    assert side.launcher.launches() == 1


def test_bad_input_and_unknown_workflow_are_refused_before_anything_is_stored(
    side: Side,
) -> None:
    from stepdag.core.errors import InputValidationError

    with pytest.raises(InputValidationError):
        side.executions.start("api_demo", {"x": "not a number"}, name="bad")
    with pytest.raises(WorkflowLoadError):
        side.executions.start("nope", {}, name="bad")
    assert side.store.list_executions(workflow=None, status=None, limit=10).items == []
    assert side.launcher.launches() == 0


# ------------------------------------------------------------------ cancel


def test_cancel_stops_a_live_run_and_an_ended_one_is_a_conflict(side: Side) -> None:
    rec = _held(side, "held")
    cancelled = side.executions.cancel(rec.execution_id)
    assert cancelled.status is RunStatus.ABORTED
    assert cancelled.error == "Cancelled"
    workflows.GATE.set()
    assert side.finish(rec.execution_id).status is RunStatus.ABORTED
    with pytest.raises(Conflict, match="already ended ABORTED"):
        side.executions.cancel(rec.execution_id)


def test_cancel_of_a_record_no_run_is_behind_marks_it_aborted(side: Side) -> None:
    # Stored but never launched (a crashed process, a failed StartExecution).
    dag = side.executions.launcher.workflow("api_demo")
    rec = side.executions.create(dag, {"x": 1}, name="orphan")
    cancelled = side.executions.cancel(rec.execution_id)
    assert cancelled.status is RunStatus.ABORTED
    assert cancelled.cause is not None and "no live run" in cancelled.cause
    assert cancelled.ended_at is not None


# ------------------------------------------------------------------ redrive


def test_redrive_of_a_succeeded_run_is_refused(side: Side) -> None:
    rec, _ = side.executions.start("api_demo", {"x": 1}, name="ok")
    assert side.finish(rec.execution_id).status is RunStatus.SUCCEEDED
    with pytest.raises(Conflict, match="already SUCCEEDED") as refused:
        side.executions.redrive(rec.execution_id)
    assert refused.value.http_status == 409
    after = side.store.get_execution(rec.execution_id)
    assert (after.status, after.redrive_count) == (RunStatus.SUCCEEDED, 0)
    assert side.launcher.launches() == 1


def test_redrive_of_a_live_run_is_refused(side: Side) -> None:
    rec = _held(side, "live")
    with pytest.raises(Conflict, match="is running; cancel it first"):
        side.executions.redrive(rec.execution_id)
    assert side.store.get_execution(rec.execution_id).redrive_count == 0


def test_redrive_bumps_the_count_before_the_run_and_restores_it_when_refused(
    side: Side,
) -> None:
    rec, _ = side.executions.start("api_flaky", {}, name="flaky")
    failed = side.finish(rec.execution_id)
    assert failed.status is RunStatus.FAILED

    with (
        mock.patch.object(side.launcher.inner, "relaunch", side_effect=Conflict("refused")),
        pytest.raises(Conflict, match="refused"),
    ):
        side.executions.redrive(rec.execution_id)
    restored = side.store.get_execution(rec.execution_id)
    assert (restored.status, restored.redrive_count, restored.error) == (
        RunStatus.FAILED,
        0,
        failed.error,
    )

    seen: list[int] = []
    accept = mock.Mock(side_effect=lambda r: seen.append(r.redrive_count))
    with mock.patch.object(side.launcher.inner, "relaunch", accept):
        bumped = side.executions.redrive(rec.execution_id)
    assert seen == [1]  # the launcher saw the bumped count: the node runner numbers from it
    assert (bumped.status, bumped.redrive_count, bumped.error) == (RunStatus.RUNNING, 1, None)


def test_local_redrive_runs_only_unfinished_work(local_side: Side) -> None:
    # (moto has no RedriveExecution: the Step Functions redrive is the mocked one above.)
    side = local_side
    rec, _ = side.executions.start("api_flaky", {}, name="again")
    assert side.finish(rec.execution_id).status is RunStatus.FAILED
    workflows.FAIL["on"] = False
    side.executions.redrive(rec.execution_id)
    final = side.finish(rec.execution_id)
    assert (final.status, final.redrive_count, final.output) == (RunStatus.SUCCEEDED, 1, 7)


@pytest.mark.moto
def test_stepfunctions_redrive_refusal_is_a_conflict(sfn_side: Side) -> None:
    from botocore.exceptions import ClientError

    side = sfn_side
    rec, _ = side.executions.start("api_flaky", {}, name="nope")
    assert side.finish(rec.execution_id).status is RunStatus.FAILED
    refusal = ClientError(
        {"Error": {"Code": "ExecutionNotRedrivable", "Message": "no"}}, "RedriveExecution"
    )
    client = side.extras["sfn"].client
    with (
        mock.patch.object(client, "redrive_execution", side_effect=refusal, create=True),
        pytest.raises(Conflict, match="cannot be redriven"),
    ):
        side.executions.redrive(rec.execution_id)
    assert side.store.get_execution(rec.execution_id).redrive_count == 0


# ------------------------------------------------------------------ rerun


def test_rerun_reuses_upstream_outputs(side: Side) -> None:
    old, _ = side.executions.start("api_demo", {"x": 1}, name="base")
    assert side.finish(old.execution_id).status is RunStatus.SUCCEEDED
    new = side.executions.rerun(old.execution_id, "second", name="again")
    assert (new.rerun_of, new.rerun_from) == (old.execution_id, "second")
    assert side.finish(new.execution_id).status is RunStatus.SUCCEEDED
    before = side.store.get_node(NodeKey(old.execution_id, "first"))
    copied = side.store.get_node(NodeKey(new.execution_id, "first"))
    assert before is not None and copied is not None
    assert (copied.started_at, copied.attempts) == (before.started_at, before.attempts)
    with pytest.raises(Conflict, match="is taken") as taken:
        side.executions.rerun(old.execution_id, "second", name="again")
    assert taken.value.field == "name"


def test_rerun_from_a_missing_node_is_a_caller_error(side: Side) -> None:
    old, _ = side.executions.start("api_demo", {"x": 1}, name="base")
    side.finish(old.execution_id)
    with pytest.raises(BadRequest, match="has no node 'zz'; nodes: first, second") as bad:
        side.executions.rerun(old.execution_id, "zz")
    assert (bad.value.http_status, bad.value.code, bad.value.field) == (400, "bad_request", "from")
    assert side.launcher.launches() == 1  # nothing started, nothing stored
    assert len(side.store.list_executions(workflow="api_demo", status=None, limit=10).items) == 1


@pytest.mark.moto
def test_rerun_from_a_missing_node_is_a_4xx_on_every_path(tmp_path: Path, sfn_side: Side) -> None:
    """The engine raised a 500 StepdagError, both services a 400: now 400 everywhere."""
    from stepdag.api.service import LocalExecutionService

    store = SqliteStore(tmp_path / "paths.db")
    engine = LocalEngine(store, workflows=_dags())
    done = engine.run("api_demo", {"x": 1}, name="base")
    service = LocalExecutionService(store, workflows.ALL)
    refusals: list[RequestError] = []
    for rerun in (
        lambda: engine.rerun(done.execution_id, "zz"),
        lambda: service.rerun(done.execution_id, "zz", name=None, tenant=None),
    ):
        with pytest.raises(RequestError) as refused:
            rerun()
        refusals.append(refused.value)
    rec, _ = sfn_side.executions.start("api_demo", {"x": 1}, name="base")
    sfn_side.finish(rec.execution_id)
    with pytest.raises(RequestError) as refused:
        sfn_side.extras["svc"].rerun(rec.execution_id, "zz", name=None, tenant=None)
    refusals.append(refused.value)
    assert [(e.http_status, e.field) for e in refusals] == [(400, "from")] * 3


def test_reusable_nodes_are_the_succeeded_ones_not_downstream(side: Side) -> None:
    old, _ = side.executions.start("api_demo", {"x": 1}, name="base")
    side.finish(old.execution_id)
    dag = side.executions.launcher.workflow("api_demo")
    assert reusable_nodes(side.store, dag, old.execution_id, "second") == ["first"]
    assert reusable_nodes(side.store, dag, old.execution_id, "first") == []

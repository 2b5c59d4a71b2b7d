"""The REAL status-recorder handler on moto DynamoDB, fed real-shaped status-change events.

The etl example runs in moto's Step Functions interpreter (its Tasks answered by the real
NodeRunner on the same DynamoDB store); its final state is read from DescribeExecution
and turned into the EventBridge event Step Functions would send; the handler -- with its
Powertools decorators and the production store factory -- must make the record terminal
so the store-only listing shows the run finished.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest

from stepdag.api.aws import StepFunctionsExecutionService
from stepdag.api.status import InvalidStatusEvent
from stepdag.core.loader import discover
from stepdag.core.status import RunStatus
from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.runner import NodeRunner
from tests.support.lambdas import REGION, lambda_arn
from tests.support.moto_sfn import MotoSfn, moto_sfn, substitute, wait_for_execution
from tests.support.status_events import from_description
from tests.unit.handlers.support import FakeLambdaContext, emf_documents, metric_values

pytestmark = [
    pytest.mark.moto,
    # A refused event flushes no metric (Lambda's Errors metric counts it).
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

REPO = Path(__file__).resolve().parents[2]
FUNCTION = "stepdag-node-runner"
TABLE = "stepdag-status-moto"
BUCKET = "stepdag-status-moto-payloads"
ENV = {
    "STEPDAG_TABLE_NAME": TABLE,
    "STEPDAG_BUCKET_NAME": BUCKET,
    "STEPDAG_STATE_MACHINES": json.dumps(
        {"etl": f"arn:aws:states:{REGION}:123456789012:stateMachine:etl:live"}
    ),
    "POWERTOOLS_SERVICE_NAME": "stepdag-status-test",
    "POWERTOOLS_METRICS_NAMESPACE": "stepdag-test",
}


def import_status_handler() -> ModuleType:
    first = "stepdag.handlers.status" not in sys.modules
    with mock.patch.dict(os.environ, ENV):
        module = importlib.import_module("stepdag.handlers.status")
    if first:  # see tests/unit/handlers/support.py: Powertools binds stdout at import
        module.logger.registered_handler.setStream(sys.__stdout__)
    return module


@dataclass
class Env:
    sfn: MotoSfn
    store: DynamoDbStore
    service: StepFunctionsExecutionService
    handler: ModuleType
    logs: io.StringIO
    etl: str

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.handler(event, FakeLambdaContext())
        return result

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.logs.getvalue().splitlines() if x.strip()]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    h = import_status_handler()
    etl = next(lw.workflow for lw in discover(REPO / "statemachines") if lw.workflow.name == "etl")
    dags = {"etl": etl.build()}
    runner: NodeRunner | None = None

    def node_runner(fn_name: str, payload: Any) -> Any:
        assert runner is not None
        return runner.handle(payload)

    logs = io.StringIO()
    previous = h.logger.registered_handler.setStream(logs)
    try:
        with moto_sfn(node_runner) as sfn:
            create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
            store = DynamoDbStore(TABLE, bucket=BUCKET, offload_threshold=1024)
            runner = NodeRunner(dags, store)
            text = (REPO / "statemachines" / "etl.asl.json").read_text()
            arn = sfn.create_state_machine(
                substitute(text, {"NodeRunnerFunctionArn": lambda_arn(FUNCTION)}), "etl"
            )
            # The production app (store factory, lazy client) with this moto's ARNs.
            settings = h.settings.model_copy(update={"state_machines": {"etl": arn}})
            app = h.StatusApp(settings, logger=h.logger, metrics=h.metrics)
            monkeypatch.setattr(h, "app", app)
            service = StepFunctionsExecutionService(store, dags, {"etl": arn}, client=sfn.client)
            yield Env(sfn, store, service, h, logs, arn)
    finally:
        h.logger.registered_handler.setStream(previous)


def etl_input() -> Any:
    return json.loads((REPO / "statemachines" / "inputs" / "etl.json").read_text())


def listed(env: Env) -> dict[str, RunStatus]:
    page = env.service.list_executions(
        workflow="etl", status=None, tenant=None, limit=50, next_token=None
    )
    return {r.execution_id: r.status for r in page.items}


def test_end_to_end_the_status_event_finishes_the_listed_run(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    rec, created = env.service.start("etl", etl_input(), name="e2e", tenant="acme")
    assert created
    desc = wait_for_execution(env.sfn.client, rec.execution_id, timeout=30)
    assert desc["status"] == "SUCCEEDED"
    # The issue: nothing wrote the end, so the store-only listing says RUNNING.
    assert listed(env) == {rec.execution_id: RunStatus.RUNNING}

    capsys.readouterr()
    result = env.deliver(from_description(desc))
    assert result == {"action": "updated", "reason": "RUNNING -> SUCCEEDED", "status": "SUCCEEDED"}
    assert listed(env) == {rec.execution_id: RunStatus.SUCCEEDED}
    stored = env.store.get_execution(rec.execution_id)
    assert stored.output == json.loads(desc["output"])
    assert stored.ended_at is not None and stored.tenant == "acme"  # the API's record, kept

    # Redelivered, and the RUNNING event arriving last: nothing moves backwards.
    running = from_description({**desc, "status": "RUNNING", "stopDate": None, "output": None})
    assert env.deliver(running)["action"] == "ignored"
    assert env.deliver(from_description(desc))["action"] == "ignored"
    assert env.store.get_execution(rec.execution_id) == stored

    lines = env.log_lines()
    assert {line["correlation_id"] for line in lines} == {rec.execution_id}
    assert [line["action"] for line in lines] == ["updated", "ignored", "ignored"]
    metrics = [metric_values(doc) for doc in emf_documents(capsys.readouterr().out)]
    assert metrics == [
        {"StatusRecordsUpdated": 1.0},
        {"StatusEventsIgnored": 1.0},
        {"StatusEventsIgnored": 1.0},
    ]


def test_a_run_started_outside_the_api_is_finished_with_its_output_from_describe(
    env: Env,
) -> None:
    # As if started by an EventBridge rule or the console: the node runner adopted it.
    started = env.sfn.client.start_execution(
        stateMachineArn=env.etl, name="console-1", input=json.dumps(etl_input())
    )
    execution_id = started["executionArn"]
    desc = wait_for_execution(env.sfn.client, execution_id, timeout=30)
    assert desc["status"] == "SUCCEEDED"
    assert env.store.get_execution(execution_id).status is RunStatus.RUNNING

    event = from_description(desc)
    # Over EventBridge's limit: the output is left out of the event.
    event["detail"]["output"] = None
    event["detail"]["outputDetails"] = {"included": False}
    assert env.deliver(event)["status"] == "SUCCEEDED"
    stored = env.store.get_execution(execution_id)
    assert stored.output == json.loads(desc["output"])  # read back from DescribeExecution
    assert stored.tenant is None
    assert listed(env)[execution_id] is RunStatus.SUCCEEDED


def test_an_unknown_execution_is_adopted_from_its_running_event(env: Env) -> None:
    arn = env.etl.replace(":stateMachine:", ":execution:") + ":scheduled-7"
    desc = {
        "executionArn": arn,
        "stateMachineArn": env.etl,
        "status": "RUNNING",
        "input": json.dumps({"day": "2024-05-01"}),
    }
    assert env.deliver(from_description(desc))["action"] == "created"
    rec = env.store.get_execution(arn)
    assert (rec.workflow, rec.name, rec.status, rec.input) == (
        "etl",
        "scheduled-7",
        RunStatus.RUNNING,
        {"day": "2024-05-01"},
    )


def test_an_event_that_is_not_a_status_change_fails_the_invocation(env: Env) -> None:
    with pytest.raises(InvalidStatusEvent):
        env.deliver({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})
    assert [line["level"] for line in env.log_lines()] == ["ERROR"]
    assert env.store.list_executions().items == []

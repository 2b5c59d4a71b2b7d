"""The REST API on AWS, end to end in moto: the real resolver over
``StepFunctionsExecutionService``, state machines deployed in moto's Step Functions
interpreter, every Lambda Task answered in-process by the real ``NodeRunner`` on the same
DynamoDB store (moto DynamoDB + S3) the API reads from.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from stepdag.api.aws import StepFunctionsExecutionService, execution_arn
from stepdag.core.compile import Targets, compile_dag
from stepdag.core.loader import discover
from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.records import NodeKey
from stepdag.runtime.runner import NodeRunner
from tests.support.lambdas import REGION, lambda_arn
from tests.support.moto_sfn import MotoSfn, moto_sfn, substitute, wait_for_execution
from tests.unit.api import workflows
from tests.unit.api.conftest import Client, event

pytestmark = pytest.mark.moto

REPO = Path(__file__).resolve().parents[2]
FUNCTION = "stepdag-node-runner"
TABLE = "stepdag-api-moto"
BUCKET = "stepdag-api-moto-payloads"
ACME = {"custom:tenant": "acme", "cognito:groups": ["operator"]}
GLOBEX = {"custom:tenant": "globex", "cognito:groups": ["operator"]}


class CountingClient:
    """The moto Step Functions client, counting the calls the service makes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return method(**kwargs)

        return call


@dataclass
class Aws:
    sfn: MotoSfn
    client: Client
    service: StepFunctionsExecutionService
    counting: CountingClient
    store: DynamoDbStore
    invocations: list[dict[str, Any]]

    def wait(self, execution_id: str) -> str:
        desc = wait_for_execution(self.sfn.client, execution_id, timeout=30)
        return str(desc["status"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    workflows.GATE.clear()
    workflows.FAIL["on"] = True
    etl = next(lw.workflow for lw in discover(REPO / "statemachines") if lw.workflow.name == "etl")
    dags: dict[str, Dag] = {wf.name: wf.build() for wf in [*workflows.ALL, etl]}
    invocations: list[dict[str, Any]] = []
    lock = threading.Lock()
    runner: NodeRunner | None = None

    def node_runner(fn_name: str, payload: Any) -> Any:
        assert fn_name == FUNCTION
        with lock:
            invocations.append(payload)
        assert runner is not None
        return runner.handle(payload)

    with moto_sfn(node_runner) as sfn:
        create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        # The runner and the API share one table, as the two Lambdas do on AWS.
        store = DynamoDbStore(TABLE, bucket=BUCKET, offload_threshold=1024)
        runner = NodeRunner(dags, store)
        targets = {}
        for name, dag in dags.items():
            if name == "etl":  # the committed ASL, substituted as CDK does
                text = (REPO / "statemachines" / "etl.asl.json").read_text()
                definition = substitute(text, {"NodeRunnerFunctionArn": lambda_arn(FUNCTION)})
            else:
                definition = compile_dag(dag, Targets(lambda _n: lambda_arn(FUNCTION))).definition
            targets[name] = sfn.create_state_machine(definition, name)
        counting = CountingClient(sfn.client)
        service = StepFunctionsExecutionService(store, dags, targets, client=counting)
        try:
            yield Aws(sfn, Client(service), service, counting, store, invocations)  # type: ignore[arg-type]
        finally:
            workflows.GATE.set()
            for page in sfn.client.get_paginator("list_executions").paginate(
                stateMachineArn=targets["api_gated"]
            ):
                for ex in page["executions"]:
                    wait_for_execution(sfn.client, ex["executionArn"], timeout=15)


def example_input() -> Any:
    return json.loads((REPO / "statemachines" / "inputs" / "etl.json").read_text())


def test_execution_arn_drops_the_alias_qualifier() -> None:
    alias = "arn:aws:states:eu-west-1:123456789012:stateMachine:etl:live"
    assert execution_arn(alias, "r1") == "arn:aws:states:eu-west-1:123456789012:execution:etl:r1"
    with pytest.raises(ValueError):
        execution_arn("arn:aws:lambda:eu-west-1:123456789012:function:x", "r1")


def test_start_runs_the_example_in_step_functions_and_reads_come_from_the_store(
    aws: Aws,
) -> None:
    started = aws.client.start("etl", example_input(), headers={"Idempotency-Key": "etl-1"})
    assert started.status == 201, started.body
    execution_id = started.body["id"]
    assert execution_id.endswith(":execution:etl:etl-1")
    assert aws.wait(execution_id) == "SUCCEEDED"
    # The record was there first: the runner used it (no adoption), with its input.
    assert {p["execution"] for p in aws.invocations} == {execution_id}

    got = aws.client.get(f"/v1/executions/{execution_id}")
    assert got.status == 200
    assert got.body["status"] == "SUCCEEDED"
    assert got.body["input"] == example_input()
    assert aws.store.get_execution(execution_id).status is RunStatus.SUCCEEDED  # synced

    nodes = aws.client.get("/v1/executions/etl-1/nodes")
    assert nodes.status == 200
    dag = aws.service.workflow("etl")[0]
    top = {n["node"] for n in nodes.body["nodes"] if n.get("map_index") is None}
    assert top == set(dag.nodes)
    last = next(n for n in dag.nodes if not dag.succs.get(n))
    out = aws.client.get(f"/v1/executions/etl-1/nodes/{last}/output")
    assert out.status == 200, out.body
    stored = aws.store.get_node(NodeKey(execution_id, last))
    assert stored is not None and stored.status is NodeStatus.SUCCEEDED
    assert out.body["output"] == stored.output


def test_same_idempotency_key_starts_one_execution(aws: Aws) -> None:
    first = aws.client.start(headers={"Idempotency-Key": "once"})
    second = aws.client.start(headers={"Idempotency-Key": "once"})
    assert (first.status, second.status) == (201, 200)
    assert first.body["id"] == second.body["id"]
    assert aws.counting.calls.count("start_execution") == 1
    assert aws.wait(first.body["id"]) == "SUCCEEDED"
    other = aws.client.start(input={"x": 2}, headers={"Idempotency-Key": "once"})
    assert other.status == 409
    assert other.body["code"] == "idempotency_conflict"
    assert aws.counting.calls.count("start_execution") == 1


def test_a_start_whose_start_execution_failed_is_started_by_the_retry(aws: Aws) -> None:
    with mock.patch.object(aws.counting._client, "start_execution", side_effect=TimeoutError):
        failed = aws.client.start(headers={"Idempotency-Key": "retry-me"})
    assert failed.status == 500
    # The record stays RUNNING with no run behind it; the client retries the same key.
    retried = aws.client.start(headers={"Idempotency-Key": "retry-me"})
    assert retried.status == 200
    assert aws.wait(retried.body["id"]) == "SUCCEEDED"


def test_step_functions_duplicate_name_follows_the_replay_rule(aws: Aws) -> None:
    # A name Step Functions already has, unknown to the store (e.g. past its retention).
    arn = aws.service._targets["api_demo"]
    aws.sfn.client.start_execution(stateMachineArn=arn, name="old", input='{"x": 1}')
    conflict = aws.client.start(input={"x": 5}, headers={"Idempotency-Key": "old"})
    assert conflict.status == 409
    assert conflict.body["code"] == "idempotency_conflict"


def test_cancel_stops_a_running_execution(aws: Aws) -> None:
    started = aws.client.start("api_gated", headers={"Idempotency-Key": "held"})
    assert started.status == 201
    execution_id = started.body["id"]
    deadline = time.monotonic() + 60
    while not aws.invocations:  # the node is running (blocked on the gate)
        # Bounded: a run moto never got to its first Task fails here, not hangs the suite.
        assert time.monotonic() < deadline, aws.sfn.client.describe_execution(
            executionArn=execution_id
        )
        threading.Event().wait(0.01)
    cancelled = aws.client.post(f"/v1/executions/{execution_id}/cancel")
    assert cancelled.status == 200, cancelled.body
    assert cancelled.body["status"] == "ABORTED"
    # moto records the abort when the in-flight Task returns (AWS: at once).
    workflows.GATE.set()
    assert aws.wait(execution_id) == "ABORTED"
    assert "stop_execution" in aws.counting.calls
    again = aws.client.post(f"/v1/executions/{execution_id}/cancel")
    assert again.status == 409


def test_failed_execution_redrive_bumps_the_count_and_restores_it_when_refused(
    aws: Aws,
) -> None:
    started = aws.client.start("api_flaky", headers={"Idempotency-Key": "flaky"})
    execution_id = started.body["id"]
    assert aws.wait(execution_id) == "FAILED"
    assert aws.client.get(f"/v1/executions/{execution_id}").body["status"] == "FAILED"

    refused = mock.Mock(side_effect=_client_error("ExecutionNotRedrivable"))
    with mock.patch.object(aws.counting._client, "redrive_execution", refused, create=True):
        answer = aws.client.post(f"/v1/executions/{execution_id}/redrive")
    assert answer.status == 409
    rec = aws.store.get_execution(execution_id)
    assert (rec.status, rec.redrive_count) == (RunStatus.FAILED, 0)

    accepted = mock.Mock(return_value={"redriveDate": "now"})
    with mock.patch.object(aws.counting._client, "redrive_execution", accepted, create=True):
        answer = aws.client.post(f"/v1/executions/{execution_id}/redrive")
    assert answer.status == 202
    accepted.assert_called_once()
    assert accepted.call_args.kwargs["executionArn"] == execution_id
    rec = aws.store.get_execution(execution_id)
    assert (rec.status, rec.redrive_count) == (RunStatus.RUNNING, 1)


def test_rerun_reuses_upstream_outputs_and_starts_a_new_execution(aws: Aws) -> None:
    started = aws.client.start(headers={"Idempotency-Key": "base"})
    assert aws.wait(started.body["id"]) == "SUCCEEDED"
    before = len(aws.invocations)
    rerun = aws.client.post(
        f"/v1/executions/{started.body['id']}/rerun", query={"from": "second", "name": "again"}
    )
    assert rerun.status == 201, rerun.body
    assert aws.wait(rerun.body["id"]) == "SUCCEEDED"
    assert aws.store.get_execution("again").rerun_of == started.body["id"]
    out = aws.client.get("/v1/executions/again/nodes/second/output")
    assert out.body["output"] == 4
    # "first" was copied before the run started: the runner answered it from the store.
    old = aws.store.get_node(NodeKey(started.body["id"], "first"))
    new = aws.store.get_node(NodeKey(rerun.body["id"], "first"))
    assert old is not None and new is not None
    assert (new.started_at, new.attempts) == (old.started_at, old.attempts)
    assert any(p["execution"] == rerun.body["id"] for p in aws.invocations[before:])


def test_tenants_only_see_their_own_executions(aws: Aws) -> None:
    mine = aws.client.start(headers={"Idempotency-Key": "acme-1"}, claims=ACME)
    assert mine.status == 201
    execution_id = mine.body["id"]
    assert aws.store.get_execution(execution_id).tenant == "acme"
    assert aws.wait(execution_id) == "SUCCEEDED"
    assert aws.client.get(f"/v1/executions/{execution_id}", claims=ACME).status == 200
    hidden = aws.client.get(f"/v1/executions/{execution_id}", claims=GLOBEX)
    assert hidden.status == 404
    assert aws.client.get(f"/v1/executions/{execution_id}/nodes", claims=GLOBEX).status == 404
    assert aws.client.post(f"/v1/executions/{execution_id}/cancel", claims=GLOBEX).status == 404
    listed = aws.client.get("/v1/executions", claims=GLOBEX)
    assert listed.body["items"] == []
    assert [i["id"] for i in aws.client.get("/v1/executions", claims=ACME).body["items"]] == [
        execution_id
    ]
    taken = aws.client.start(headers={"Idempotency-Key": "acme-1"}, claims=GLOBEX)
    assert taken.status == 409
    assert aws.counting.calls.count("start_execution") == 1


def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}}, "RedriveExecution")


def _handler_env(aws: Aws) -> dict[str, str]:
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"pagination-{uuid.uuid4().hex}", SecretString="s" * 64
    )
    return {
        "STEPDAG_TABLE_NAME": TABLE,
        "STEPDAG_BUCKET_NAME": BUCKET,
        "STEPDAG_WORKFLOW_MODULES": json.dumps({"etl": "statemachines.etl:wf"}),
        "STEPDAG_STATE_MACHINES": json.dumps({"etl": aws.service._targets["etl"]}),
        "STEPDAG_PAGINATION_SECRET_ARN": secret["ARN"],
        "POWERTOOLS_SERVICE_NAME": "stepdag-api-test",
    }


def _cold_start(env: dict[str, str]) -> Any:
    """``stepdag.handlers.api`` imported afresh: one new Lambda execution environment."""
    import importlib
    import os
    import sys

    sys.modules.pop("stepdag.handlers.api", None)
    try:
        with mock.patch.dict(os.environ, env):
            return importlib.import_module("stepdag.handlers.api")
    finally:
        sys.modules.pop("stepdag.handlers.api", None)


def test_the_api_function_signs_page_tokens_with_the_stacks_secret(aws: Aws) -> None:
    from stepdag.handlers.settings import SettingsError
    from stepdag.runtime.records import make_page_token
    from tests.unit.handlers.support import FakeLambdaContext

    env = _handler_env(aws)
    with pytest.raises(SettingsError, match="STEPDAG_PAGINATION_SECRET_ARN is required"):
        _cold_start({k: v for k, v in env.items() if k != "STEPDAG_PAGINATION_SECRET_ARN"})
    for i in range(3):
        aws.client.start(headers={"Idempotency-Key": f"page-{i}"})
    one, other = _cold_start(env), _cold_start(env)  # two instances behind one API
    first = one.handler(event("GET", "/v1/executions", query={"limit": "1"}), FakeLambdaContext())
    token = _body(first)["next_token"]
    assert token
    second = other.handler(
        event("GET", "/v1/executions", query={"limit": "1", "next_token": token}),
        FakeLambdaContext(),
    )
    assert second["statusCode"] == 200, second
    assert _body(second)["items"] != _body(first)["items"]
    forged = make_page_token({"index": "x"}, [None, None, None], b"stepdag/pagination/v1")
    refused = other.handler(
        event("GET", "/v1/executions", query={"next_token": forged}), FakeLambdaContext()
    )
    assert refused["statusCode"] == 400 and _body(refused)["field"] == "next_token"


def test_the_lambda_handler_serves_the_api_on_step_functions(aws: Aws) -> None:
    """``stepdag.handlers.api.handler`` built from its environment, as at a cold start."""
    from tests.unit.handlers.support import FakeLambdaContext

    module = _cold_start(_handler_env(aws))
    start = event(
        "POST",
        "/v1/workflows/etl/executions",
        body={"input": example_input()},
        headers={"Idempotency-Key": "via-handler"},
    )
    start["requestContext"]["requestId"] = "req-123"
    raw = module.handler(start, FakeLambdaContext())
    assert raw["statusCode"] == 201, raw
    execution_id = _body(raw)["id"]
    # Powertools' correlation id is API Gateway's request id.
    assert module.logger.get_correlation_id() == "req-123"
    assert aws.wait(execution_id) == "SUCCEEDED"
    got = module.handler(event("GET", f"/v1/executions/{execution_id}"), FakeLambdaContext())
    assert json.loads(got["body"])["status"] == "SUCCEEDED"
    listed = module.handler(event("GET", "/v1/workflows"), FakeLambdaContext())
    assert [w["name"] for w in json.loads(listed["body"])["items"]] == ["etl"]
    live = module.handler(event("GET", "/v1/health/live"), FakeLambdaContext())
    assert live["statusCode"] == 200 and _body(live) == {"status": "ok"}
    ready = module.handler(event("GET", "/v1/health/ready"), FakeLambdaContext())
    assert ready["statusCode"] == 200, ready
    checks = {c["name"]: c["ok"] for c in _body(ready)["checks"]}
    assert checks == {"store": True, "stepfunctions": True, "settings": True}


def _body(raw: dict[str, Any]) -> Any:
    # A Lambda proxy response body must be JSON text (test_created_responses_are_serialized).
    return json.loads(raw["body"])


def test_the_start_rules_refuse_before_the_store_or_step_functions(aws: Aws) -> None:
    """Over 256 KiB (413), too deep, or a name Step Functions refuses: no record, no
    StartExecution (it used to store the record, then fail StartExecution)."""
    path = "/v1/workflows/api_demo/executions"
    big = aws.client.post(path, body={"input": {"x": 1, "pad": "a" * 300_000}})
    assert big.status == 413 and big.body["limit"] == 262_144, big.body
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    too_deep = aws.client.post(path, body={"input": {"deep": deep}})
    assert too_deep.status == 400 and too_deep.body["code"] == "input_too_deep"
    assert aws.client.post(path, body={"input": {"x": 1}, "name": "a b"}).status == 400
    assert "start_execution" not in aws.counting.calls
    listed = aws.store.list_executions(
        workflow=None, status=None, tenant=None, limit=10, next_token=None
    )
    assert listed.items == []


def test_created_responses_are_serialized(aws: Aws) -> None:
    start = event("POST", "/v1/workflows/api_demo/executions", body={"input": {"x": 1}})
    raw = aws.client.app.resolve(start, None)
    assert raw["statusCode"] == 201
    assert aws.wait(_body(raw)["id"]) == "SUCCEEDED"
    assert isinstance(raw["body"], str)


def test_api_settings_name_every_bad_variable() -> None:
    from stepdag.handlers.api_settings import load_api_settings
    from stepdag.handlers.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        load_api_settings({"STEPDAG_STATE_MACHINES": '{"etl": "arn:aws:lambda:x"}'})
    text = str(err.value)
    assert "STEPDAG_TABLE_NAME is required" in text
    assert "STEPDAG_STATE_MACHINES=" in text
    with pytest.raises(SettingsError, match="STEPDAG_STATE_MACHINES is required"):
        load_api_settings({"STEPDAG_TABLE_NAME": "t-1"})
    ok = load_api_settings(
        {
            "STEPDAG_TABLE_NAME": "t-1",
            "STEPDAG_STATE_MACHINES": json.dumps(
                {"etl": "arn:aws:states:eu-west-1:123456789012:stateMachine:s-etl:live"}
            ),
        }
    )
    assert ok.state_machines["etl"].endswith(":live")


def test_a_read_is_served_when_recording_the_final_status_fails(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepdag.runtime.errors import StoreUnavailable

    started = aws.client.start(headers={"Idempotency-Key": "unrecorded"})
    execution_id = started.body["id"]
    assert aws.wait(execution_id) == "SUCCEEDED"

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the table is throttling")

    with monkeypatch.context() as patch:
        patch.setattr(aws.service._recorder, "record", refuse)
        got = aws.client.get(f"/v1/executions/{execution_id}")
    # The record as stored (still RUNNING): the status-change event, or the next read,
    # records the end; the caller gets an answer, not a 5xx.
    assert got.status == 200, got.body
    assert got.body["status"] == "RUNNING"
    assert aws.client.get(f"/v1/executions/{execution_id}").body["status"] == "SUCCEEDED"


def test_the_api_function_in_multi_tenant_mode_refuses_callers_without_tenant(aws: Aws) -> None:
    from tests.unit.handlers.support import FakeLambdaContext

    module = _cold_start({**_handler_env(aws), "STEPDAG_TENANCY": "multi"})
    no_tenant = {"cognito:groups": ["admin"]}
    for method, path in (("GET", "/v1/executions"), ("POST", "/v1/workflows/etl/executions")):
        body = {"input": example_input()} if method == "POST" else None
        raw = module.handler(event(method, path, body=body, claims=no_tenant), FakeLambdaContext())
        assert raw["statusCode"] == 403, raw
    listed = module.handler(event("GET", "/v1/executions", claims=ACME), FakeLambdaContext())
    assert listed["statusCode"] == 200


def test_the_api_function_limits_each_tenant_through_the_table(aws: Aws) -> None:
    from tests.unit.handlers.support import FakeLambdaContext

    env = {**_handler_env(aws), "STEPDAG_TENANT_RATE_PER_S": "0.01", "STEPDAG_TENANT_BURST": "2"}
    one, other = _cold_start(env), _cold_start(env)  # two instances, one bucket per tenant
    began = time.monotonic()
    statuses = [
        (one if i % 2 else other).handler(
            event("GET", "/v1/executions", claims=ACME), FakeLambdaContext()
        )
        for i in range(3)
    ]
    assert [s["statusCode"] for s in statuses] == [200, 200, 429]
    refused = statuses[-1]
    headers = {**(refused.get("multiValueHeaders") or {}), **(refused.get("headers") or {})}
    retry = headers["Retry-After"]
    # One token per 100 s, less the time the first two requests took (a loaded machine
    # spends seconds on them; Retry-After is whole seconds, rounded up).
    elapsed = time.monotonic() - began
    wait = int(retry[0] if isinstance(retry, list) else retry)
    assert 100 - elapsed - 1 <= wait <= 100, (wait, elapsed)
    assert _body(refused)["code"] == "rate_limited"
    globex = one.handler(event("GET", "/v1/executions", claims=GLOBEX), FakeLambdaContext())
    assert globex["statusCode"] == 200

"""Health: ``/v1/health/live`` (the process answers: no store, no role) and
``/v1/health/ready`` (the store answers a read, Step Functions answers on AWS, the
settings hold; each check named with its latency; 200 all pass, 503 otherwise), locally
and on the Step Functions service the API Lambda runs.  ``/v1/health`` is ready's alias."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepdag.api.aws import StepFunctionsExecutionService
from stepdag.api.service import LocalExecutionService
from stepdag.runtime.errors import StoreUnavailable
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.api import workflows
from tests.unit.api.conftest import Client

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:api_demo:live"
VIEWER_LESS = {"custom:tenant": "acme", "roles": []}  # authenticated, no role at all


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "health.db") as store:
        yield store


def local(store: Any) -> Client:
    return Client(LocalExecutionService(store, [workflows.demo]))


class BrokenStore(SqliteStore):
    """A store whose reads fail like an unreachable DynamoDB."""

    def list_executions(self, **kwargs: Any) -> Any:
        raise StoreUnavailable("DynamoDB did not answer (EndpointConnectionError)")

    def get_execution(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("DynamoDB did not answer (EndpointConnectionError)")


class Sfn:
    """A Step Functions client: ``error`` None answers DescribeExecution's 'no such
    execution' (reachable, allowed); else that error code."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def describe_execution(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls.append(kwargs)
        code = self.error or "ExecutionDoesNotExist"
        raise ClientError({"Error": {"Code": code, "Message": code}}, "DescribeExecution")


def on_aws(store: Any, sfn: Sfn) -> Client:
    dags = {"api_demo": workflows.demo.build()}
    service = StepFunctionsExecutionService(store, dags, {"api_demo": ARN}, client=sfn)
    return Client(service)  # type: ignore[arg-type]


def checks(answer: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in answer.body["checks"]}


def test_live_answers_without_the_store_or_a_role(tmp_path: Path) -> None:
    client = local(BrokenStore(tmp_path / "broken.db"))
    answer = client.get("/v1/health/live", claims=VIEWER_LESS)
    assert answer.status == 200 and answer.body == {"status": "ok"}


def test_ready_names_each_check_with_its_latency(sqlite: SqliteStore) -> None:
    answer = local(sqlite).get("/v1/health/ready", claims=VIEWER_LESS)
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "ok"
    found = checks(answer)
    assert set(found) == {"store", "settings"}
    for check in found.values():
        assert check["ok"] is True and check["ms"] >= 0 and check["detail"]
    assert "SqliteStore" in found["store"]["detail"]
    assert "1 workflow" in found["settings"]["detail"]


def test_ready_is_503_when_the_store_fails_and_says_why(tmp_path: Path) -> None:
    answer = local(BrokenStore(tmp_path / "broken.db")).get("/v1/health/ready")
    assert answer.status == 503, answer.body
    assert answer.body["status"] == "unavailable"
    found = checks(answer)
    assert found["store"]["ok"] is False and "did not answer" in found["store"]["detail"]
    assert found["settings"]["ok"] is True  # the other checks still ran


def test_ready_without_workflows_is_not_ready(sqlite: SqliteStore) -> None:
    answer = Client(LocalExecutionService(sqlite, [])).get("/v1/health/ready")
    assert answer.status == 503
    assert checks(answer)["settings"]["ok"] is False


def test_health_is_readys_alias_with_todays_fields(tmp_path: Path, sqlite: SqliteStore) -> None:
    answer = local(sqlite).get("/v1/health")
    assert answer.status == 200
    assert answer.body["status"] == "ok" and answer.body["workflows"] == 1
    assert answer.body["store"] == "SqliteStore" and set(checks(answer)) == {"store", "settings"}
    assert local(BrokenStore(tmp_path / "b.db")).get("/v1/health").status == 503


def test_ready_on_aws_asks_step_functions(sqlite: SqliteStore) -> None:
    sfn = Sfn()
    answer = on_aws(sqlite, sfn).get("/v1/health/ready")
    assert answer.status == 200, answer.body
    found = checks(answer)
    assert set(found) == {"store", "stepfunctions", "settings"}
    assert found["stepfunctions"]["ok"] is True
    [call] = sfn.calls  # one cheap probe, on a workflow's execution ARN
    assert call["executionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:api_demo:"
    )
    assert "1 workflow" in found["settings"]["detail"]


def test_ready_on_aws_is_503_when_step_functions_refuses(sqlite: SqliteStore) -> None:
    answer = on_aws(sqlite, Sfn("AccessDeniedException")).get("/v1/health/ready")
    assert answer.status == 503
    found = checks(answer)
    assert found["stepfunctions"]["ok"] is False
    assert "AccessDeniedException" in found["stepfunctions"]["detail"]
    assert found["store"]["ok"] is True


def test_a_check_that_hangs_fails_at_the_deadline(
    sqlite: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from stepdag.api import health

    monkeypatch.setattr(health, "CHECK_TIMEOUT_S", 0.2)
    release = threading.Event()

    class Hanging(Sfn):
        def describe_execution(self, **kwargs: Any) -> Any:
            release.wait(10)
            return super().describe_execution(**kwargs)

    try:
        answer = on_aws(sqlite, Hanging()).get("/v1/health/ready")
    finally:
        release.set()
    assert answer.status == 503
    found = checks(answer)
    assert found["stepfunctions"]["ok"] is False
    assert "no answer within 200 ms" in found["stepfunctions"]["detail"]
    assert found["store"]["ok"] is True


def test_an_api_lambda_that_cannot_build_is_live_and_says_why_it_is_not_ready() -> None:
    """A workflow module that does not import used to fail every request of the API
    Lambda, the health route included; now liveness answers and readiness names it."""
    import importlib
    import json
    import os
    import sys
    from unittest import mock

    from tests.unit.api.conftest import event

    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "STEPDAG_TABLE_NAME": "stepdag-health",
        "STEPDAG_WORKFLOW_MODULES": json.dumps({"api_demo": "no_such_module_xyz:wf"}),
        "STEPDAG_STATE_MACHINES": json.dumps({"api_demo": ARN}),
        "STEPDAG_PAGINATION_SECRET_ARN": (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:stepdag-pagination-AbCdEf"
        ),
        # A service name of its own: Powertools' Logger state is per service name, and
        # other tests log as the default one.
        "POWERTOOLS_SERVICE_NAME": "stepdag-api-health-test",
    }
    sys.modules.pop("stepdag.handlers.api", None)
    try:
        with mock.patch.dict(os.environ, env):
            module = importlib.import_module("stepdag.handlers.api")
            resolve = module.app.resolver().resolve
            live = resolve(event("GET", "/v1/health/live"), None)
            ready = resolve(event("GET", "/v1/health/ready"), None)
            listed = resolve(event("GET", "/v1/workflows"), None)
    finally:
        sys.modules.pop("stepdag.handlers.api", None)
    assert live["statusCode"] == 200
    assert ready["statusCode"] == 503
    [check] = json.loads(ready["body"])["checks"]
    assert check["name"] == "settings" and check["ok"] is False
    assert "no_such_module_xyz" in check["detail"]
    assert listed["statusCode"] == 503
    assert json.loads(listed["body"])["code"] == "not_configured"

"""The API under test: the resolver over a LocalExecutionService, on SQLite and on
DynamoDB (moto), driven by synthetic API Gateway REST proxy events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stepdag.api.app import build_app
from stepdag.api.auth import Tenancy
from stepdag.api.service import LocalExecutionService
from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.sqlite import SqliteStore
from stepdag.runtime.store import ExecutionStore
from tests.support.moto_serial import serialize_moto
from tests.unit.api import workflows


@dataclass
class Answer:
    status: int
    headers: dict[str, Any]
    body: Any

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type")
        return value[0] if isinstance(value, list) else str(value)


def event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``claims``: a Cognito authorizer's; ``authorizer``: a Lambda authorizer's context."""
    ctx: dict[str, Any] = {"stage": "test", "path": path, "httpMethod": method}
    if claims is not None:
        ctx["authorizer"] = {"claims": claims}
    if authorizer is not None:
        ctx["authorizer"] = authorizer
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": ctx,
    }


class Client:
    def __init__(self, service: LocalExecutionService, **app: Any) -> None:
        self.service = service
        self.app = build_app(service, **app)

    def call(self, method: str, path: str, **kw: Any) -> Answer:
        raw = self.app.resolve(event(method, path, **kw), None)
        headers = {**(raw.get("multiValueHeaders") or {}), **(raw.get("headers") or {})}
        text = raw.get("body") or ""
        is_json = "json" in str(headers.get("Content-Type"))
        return Answer(raw["statusCode"], headers, json.loads(text) if text and is_json else text)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Answer:
        return self.call("POST", path, **kw)

    def start(self, workflow: str = "api_demo", input: Any = None, **kw: Any) -> Answer:
        body = {"input": {"x": 1} if input is None else input}
        return self.post(f"/v1/workflows/{workflow}/executions", body=body, **kw)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExecutionStore]:
    if request.param == "sqlite":
        with SqliteStore(tmp_path / "api.db") as s:
            yield s
        return
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        # Background runs write concurrently with the request thread; moto alone is not
        # atomic under threads (see tests/support/moto_serial.py).
        serialize_moto(patch)
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "stepdag-api-test")
        yield DynamoDbStore("stepdag-api-test", client=client)


def _client(store: ExecutionStore, **app: Any) -> Iterator[Client]:
    workflows.GATE.clear()
    workflows.FAIL["on"] = True
    service = LocalExecutionService(store, workflows.ALL)
    yield Client(service, **app)
    workflows.GATE.set()  # release any run a test left waiting
    service.wait_idle()


@pytest.fixture
def client(store: ExecutionStore) -> Iterator[Client]:
    yield from _client(store)


@pytest.fixture
def multi_client(store: ExecutionStore) -> Iterator[Client]:
    """The API in multi-tenant mode, as the stack deploys it behind a token authorizer."""
    yield from _client(store, tenancy=Tenancy.MULTI)

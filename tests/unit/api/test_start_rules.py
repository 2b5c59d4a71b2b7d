"""One rule set at the REST API's start (``stepdag serve`` and the API Lambda run this
resolver): Step Functions' execution-name rule, the 256 KiB input limit before anything
is stored (413 with size and limit), a nesting-depth limit (400), strict JSON (no NaN),
and start answers that do not echo the input back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from stepdag import Workflow
from stepdag.api.service import LocalExecutionService
from stepdag.core.inputs import MAX_INPUT_BYTES, MAX_INPUT_DEPTH
from stepdag.runtime.store import ExecutionStore
from tests.unit.api import workflows
from tests.unit.api.conftest import Client, event

anything = Workflow("api_any", description="takes any JSON input")


@anything.node
def first(params: Any) -> int:
    return 1


@anything.node
def second(first: int) -> int:
    return first + 1


@pytest.fixture
def client(store: ExecutionStore) -> Iterator[Client]:
    workflows.GATE.set()
    service = LocalExecutionService(store, [anything])
    yield Client(service)
    service.wait_idle()


def start(client: Client, input: Any, **kw: Any) -> Any:
    return client.post("/v1/workflows/api_any/executions", body={"input": input}, **kw)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def raw_post(client: Client, path: str, body: str, **kw: Any) -> tuple[int, Any]:
    ev = event("POST", path, **kw)
    ev["body"] = body
    ev["headers"] = {"Content-Type": "application/json", **ev["headers"]}
    raw = client.app.resolve(ev, None)
    return raw["statusCode"], json.loads(raw["body"]) if raw.get("body") else None


def stored(client: Client) -> int:
    page = client.service.store.list_executions(
        workflow=None, status=None, tenant=None, limit=100, next_token=None
    )
    return len(page.items)


@pytest.mark.parametrize(
    "name", ["has space", "a/b", "q?", "tab\tname", "x" * 81, "semi;colon", "ctl\x07", "ü\u0085"]
)
def test_names_step_functions_refuses_are_400_and_nothing_is_stored(
    client: Client, name: str
) -> None:
    answer = client.post("/v1/workflows/api_any/executions", body={"input": {"x": 1}, "name": name})
    assert answer.status == 400, answer.body
    assert answer.body["field"] == "name"
    assert stored(client) == 0


def test_names_step_functions_accepts_are_accepted_and_readable(client: Client) -> None:
    # Outside the old URL-safe subset, inside Step Functions' rule.
    for name in ["run@2026-12-04", "ünïcode-ok", "a+b=c!", "(paren)'quote'"]:
        answer = client.post(
            "/v1/workflows/api_any/executions", body={"input": {"x": 1}, "name": name}
        )
        assert answer.status == 201, (name, answer.body)
        read = client.get(f"/v1/executions/{name}")  # the path as the gateway decodes it
        assert read.status == 200 and read.body["name"] == name


def test_idempotency_key_follows_the_same_rule(client: Client) -> None:
    answer = start(client, {}, headers={"Idempotency-Key": "bad key"})
    assert answer.status == 400 and stored(client) == 0
    assert start(client, {}, headers={"Idempotency-Key": "key@1"}).status == 201


def test_an_input_over_256_kib_is_413_with_size_and_limit_and_is_not_stored(
    client: Client,
) -> None:
    big = {"x": 1, "pad": "a" * MAX_INPUT_BYTES}
    answer = start(client, big)
    assert answer.status == 413, answer.body
    assert answer.content_type == "application/problem+json"
    size = len(json.dumps(big, separators=(",", ":")).encode())
    assert answer.body["size"] == size and answer.body["limit"] == MAX_INPUT_BYTES == 262144
    assert f"{size:,}" in answer.body["detail"] and "262,144" in answer.body["detail"]
    assert answer.body["field"] == "input"
    assert stored(client) == 0


def test_the_size_is_utf8_bytes_of_compact_json(client: Client) -> None:
    # 50,000 "é" = 100,000 UTF-8 bytes (fits) but 300,000 bytes as \u00e9 escapes.
    fits = {"x": 1, "pad": "é" * 50_000}
    assert start(client, fits).status == 201
    over = {"x": 1, "pad": "é" * 131_072}
    assert start(client, over).status == 413


def test_an_input_nested_past_the_limit_is_400_and_later_reads_work(client: Client) -> None:
    ok = start(client, {"x": 1, "deep": nested(MAX_INPUT_DEPTH - 1)})
    assert ok.status == 201, ok.body
    client.service.wait_idle()
    assert client.get(f"/v1/executions/{ok.body['name']}").status == 200
    assert client.get(f"/v1/executions/{ok.body['name']}/nodes").status == 200
    for depth in (MAX_INPUT_DEPTH + 1, 900, 5000):
        status, body = raw_post(
            client,
            "/v1/workflows/api_any/executions",
            '{"input": {"x": 1, "deep": ' + "[" * depth + "]" * depth + "}}",
        )
        assert status == 400, (depth, body)
        assert body["code"] == "input_too_deep" and str(MAX_INPUT_DEPTH) in body["detail"]
    assert stored(client) == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_body_are_400(client: Client, constant: str) -> None:
    status, body = raw_post(
        client, "/v1/workflows/api_any/executions", '{"input": {"x": ' + constant + "}}"
    )
    assert status == 400, body
    assert constant.lstrip("-") in body["detail"]
    assert stored(client) == 0


def test_start_answers_do_not_echo_the_input(client: Client) -> None:
    payload = {"x": 1, "pad": "p" * 100_000}
    started = start(client, payload, headers={"Idempotency-Key": "echo"})
    assert started.status == 201 and "input" not in started.body
    assert len(json.dumps(started.body)) < 2_000
    replay = start(client, payload, headers={"Idempotency-Key": "echo"})
    assert replay.status == 200 and "input" not in replay.body
    client.service.wait_idle()
    rerun = client.post(f"/v1/executions/{started.body['id']}/rerun", query={"from": "second"})
    assert rerun.status == 201 and "input" not in rerun.body
    assert client.get(f"/v1/executions/{started.body['id']}").body["input"] == payload

"""Per-tenant rate limits: 429 with Retry-After and the RateLimit headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stepdag.runtime.ratelimit import Limit, MemoryRateLimiter
from stepdag.runtime.store import ExecutionStore
from tests.unit.api.conftest import Client, _client
from tests.unit.api.test_routes import assert_problem
from tests.unit.api.test_tenancy import cognito

NOW = [1_800_000_000.0]


@pytest.fixture
def limited(store: ExecutionStore) -> Iterator[Client]:
    NOW[0] = 1_800_000_000.0
    limiter = MemoryRateLimiter(Limit(rate_per_s=1, burst=3), clock=lambda: NOW[0])
    yield from _client(store, rate_limiter=limiter)


def header(answer: object, name: str) -> str:
    value = answer.headers[name]  # type: ignore[attr-defined]
    return value[0] if isinstance(value, list) else str(value)


def test_a_tenant_over_its_limit_gets_429_with_retry_after(limited: Client) -> None:
    acme = cognito("acme", "operator")
    answers = [limited.get("/v1/executions", claims=acme) for _ in range(3)]
    assert [a.status for a in answers] == [200] * 3
    assert header(answers[0], "RateLimit-Policy") == '"tenant";q=3;w=3'
    assert [header(a, "RateLimit") for a in answers] == [
        '"tenant";r=2;t=1',
        '"tenant";r=1;t=2',
        '"tenant";r=0;t=3',
    ]
    refused = limited.start(claims=acme)  # writes count too
    doc = assert_problem(refused, 429)
    assert doc["code"] == "rate_limited" and "retry in 1 s" in doc["detail"]
    assert header(refused, "Retry-After") == "1"
    assert header(refused, "RateLimit") == '"tenant";r=0;t=3'
    # Another tenant has its own bucket; health is never limited.
    assert limited.get("/v1/executions", claims=cognito("globex", "viewer")).status == 200
    assert limited.get("/v1/health", claims=acme).status == 200
    NOW[0] += 1
    assert limited.get("/v1/executions", claims=acme).status == 200


def test_callers_without_tenant_share_one_bucket(limited: Client) -> None:
    for _ in range(3):
        assert limited.get("/v1/workflows").status == 200
    assert_problem(limited.get("/v1/workflows", claims=cognito(None, "viewer")), 429)

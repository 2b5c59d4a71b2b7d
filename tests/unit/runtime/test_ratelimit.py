"""GCRA token buckets: the arithmetic, one process, and DynamoDB shared by instances."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from stepdag.runtime.dynamodb import create_table
from stepdag.runtime.ratelimit import DynamoDbRateLimiter, Limit, MemoryRateLimiter, RateLimiter
from tests.support.moto_serial import serialize_moto

LIMIT = Limit(rate_per_s=2, burst=4)  # 4 at once, then one every 0.5 s
T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "dynamodb"])
def limiter_factory(request: pytest.FixtureRequest) -> Iterator[object]:
    if request.param == "memory":
        yield lambda clock: MemoryRateLimiter(LIMIT, clock=clock)
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "limits")
        yield lambda clock: DynamoDbRateLimiter("limits", LIMIT, client=client, clock=clock)


def test_a_burst_then_one_per_interval(limiter_factory: object) -> None:
    clock = Clock()
    limiter: RateLimiter = limiter_factory(clock)  # type: ignore[operator]
    burst = [limiter.take("acme") for _ in range(4)]
    assert [d.allowed for d in burst] == [True] * 4
    assert [d.remaining for d in burst] == [3, 2, 1, 0]
    refused = limiter.take("acme")
    assert not refused.allowed and refused.retry_after_s == 1 and refused.remaining == 0
    assert refused.reset_s == 2  # 4 tokens at 2/s
    assert limiter.take("globex").allowed  # buckets are per key
    clock.now += 0.5  # one token back
    assert limiter.take("acme").allowed
    assert not limiter.take("acme").allowed
    clock.now += 10  # full again, and no more than full
    assert [limiter.take("acme").allowed for _ in range(5)] == [True] * 4 + [False]


def test_a_long_wait_is_reported_in_whole_seconds() -> None:
    clock = Clock()
    slow = MemoryRateLimiter(Limit(rate_per_s=0.1, burst=1), clock=clock)
    assert slow.take("k").allowed
    refused = slow.take("k")
    assert (refused.allowed, refused.retry_after_s) == (False, 10)
    clock.now += 9.5
    assert slow.take("k").retry_after_s == 1  # never 0: "retry now" would spin


def test_instances_sharing_the_table_share_the_bucket() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "limits")
        clock = Clock()
        instances = [DynamoDbRateLimiter("limits", LIMIT, client=client, clock=clock) for _ in "ab"]
        allowed = [instances[i % 2].take("acme").allowed for i in range(6)]
        assert allowed == [True] * 4 + [False] * 2
        ttl = client.get_item(
            TableName="limits", Key={"PK": {"S": "RATE#acme"}, "SK": {"S": "RATE"}}
        )["Item"]["ttl"]
        assert int(ttl["N"]) > T0  # the item expires once the bucket would be full


def test_concurrent_requests_never_exceed_the_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto alone is not atomic under threads; DynamoDB's conditional update is.
    serialize_moto(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "limits")
        limiter = DynamoDbRateLimiter("limits", LIMIT, client=client, clock=Clock())
        for round_ in range(10):  # a lost race shows in some rounds, not every one
            results: list[bool] = []
            lock = threading.Lock()
            start = threading.Barrier(12)

            def take(key: str = f"tenant-{round_}") -> None:
                start.wait()
                allowed = limiter.take(key).allowed
                with lock:
                    results.append(allowed)

            threads = [threading.Thread(target=take) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [False] * 8 + [True] * 4, round_


def test_limits_must_be_positive() -> None:
    for bad in ((0, 1), (1, 0), (-1, 5)):
        with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
            Limit(*bad)

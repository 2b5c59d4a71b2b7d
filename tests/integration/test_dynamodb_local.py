"""DynamoDbStore against DynamoDB Local, a real DynamoDB server (S3 on moto).

Unlike moto, DynamoDB Local evaluates conditions and transactions atomically on the
server, validates names and sizes like AWS, and serves concurrent requests -- so the
concurrency claims (one claimant, one side effect) are proven here against the real
protocol, through the real node runner.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stepdag.constants import TTL_ATTRIBUTE
from stepdag.core.status import NodeStatus
from stepdag.runtime.dynamodb import DynamoDbStore
from stepdag.runtime.records import CacheEntry, NodeKey
from stepdag.runtime.runner import NodeRunner
from stepdag.testing import workflow_from_adjacency
from tests.contract.store_contract import StoreContract
from tests.integration.conftest import BUCKET


@pytest.fixture
def store(ddb: Any, s3: Any, table: str) -> Iterator[DynamoDbStore]:
    # Each test has its own table; S3 objects of different tests may share keys, which
    # is harmless: keys are content-addressed (same key, same bytes).
    store = DynamoDbStore(table, client=ddb, s3_client=s3, bucket=BUCKET)
    yield store
    store.close()


class TestDynamoDbLocalContract(StoreContract):
    """The whole contract, on the ``store`` fixture above."""


def test_duplicate_concurrent_invocations_run_the_node_once(ddb: Any, s3: Any, table: str) -> None:
    """N deliveries of one attempt -- each its own runner and store, as separate Lambda
    invocations would be -- race for the node: one runs it, the rest wait for its result."""
    side_effects: list[str] = []
    lock = threading.Lock()

    def body(name: str, kwargs: dict[str, Any]) -> Any:
        with lock:
            side_effects.append(name)
        time.sleep(0.3)  # hold the claim while the duplicates arrive and wait
        return {"rows": "r" * 100_000}  # over the 64 KB threshold: offloaded to S3

    dag = workflow_from_adjacency("dup", {"extract": []}, body=body).build()
    execution = "arn:aws:states:us-east-1:123456789012:execution:dup:run-1"
    payload = {"workflow": "dup", "node": "extract", "phase": "run", "execution": execution}
    n = 12
    barrier = threading.Barrier(n)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def invoke() -> None:
        store = DynamoDbStore(table, client=ddb, s3_client=s3, bucket=BUCKET)
        runner = NodeRunner(workflows={"dup": dag}, store=store, poll_seconds=0.01)
        try:
            barrier.wait()
            results.append(runner.handle({**payload, "attempt": 0}))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=invoke) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert results == [{"node": "extract", "status": "SUCCEEDED"}] * n
    assert side_effects == ["extract"]  # exactly one side effect
    store = DynamoDbStore(table, client=ddb, s3_client=s3, bucket=BUCKET)
    rec = store.get_node(NodeKey(execution, "extract"))
    assert rec is not None and rec.status is NodeStatus.SUCCEEDED
    assert rec.attempts == 1 and rec.output == {"rows": "r" * 100_000}
    # Exactly one stored output: one node item, one S3 object for it.
    assert [r.key for r in store.list_nodes(execution, include_items=True)] == [rec.key]
    prefix = f"nodes/{execution}/extract/"
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    assert len(stored) == 1
    # The execution, adopted by whichever delivery came first, exists once.
    (adopted,) = store.list_executions().items
    assert adopted.execution_id == execution and adopted.name == "run-1"


def test_expired_cache_entry_is_not_returned(ddb: Any, store: DynamoDbStore, table: str) -> None:
    description = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert description["TimeToLiveStatus"] == "ENABLED"
    assert description["AttributeName"] == TTL_ATTRIBUTE
    now = datetime.now(UTC)
    expired = CacheEntry(
        key="old", output={"v": 1}, created_at=now - timedelta(hours=2), expires_at=now
    )
    fresh = CacheEntry(
        key="new", output={"v": 2}, created_at=now, expires_at=now + timedelta(hours=1)
    )
    store.cache_put(expired)
    store.cache_put(fresh)
    # The item may linger (TTL deletion runs late, and DynamoDB Local may never run it),
    # carrying its expiry as epoch seconds; reads must not return it regardless.
    raw = ddb.get_item(
        TableName=table, Key={"PK": {"S": "CACHE#old"}, "SK": {"S": "CACHE"}}, ConsistentRead=True
    ).get("Item")
    if raw is not None:
        assert int(raw[TTL_ATTRIBUTE]["N"]) == math.ceil(now.timestamp()) <= time.time() + 1
    assert store.cache_get("old") is None  # default now: the wall clock
    assert store.cache_get("new") == fresh

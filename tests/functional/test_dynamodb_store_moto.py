"""DynamoDbStore on moto (DynamoDB + S3 mocked in-process): the full store contract, plus
what only this backend must prove -- S3 offload, TTL attributes, the compare-and-swap
retry, error translation and lazy clients.

The same contract runs against a real DynamoDB server (DynamoDB Local) in
tests/integration/test_dynamodb_local.py; moto is the fast, always-available half.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from stepdag.constants import TTL_ATTRIBUTE
from stepdag.core.errors import StoreError
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.records import CacheEntry, NodeKey
from stepdag.runtime.store import InvalidPayload, StoreUnavailable
from tests.contract.store_contract import (
    EID,
    T0,
    StoreContract,
    at,
    execution,
    run_node,
)
from tests.support.moto_serial import serialize_moto

REGION = "us-east-1"
TABLE = "stepdag-test"
BUCKET = "stepdag-test-payloads"
MB_OUTPUT = {"blob": "x" * 1_000_000, "rows": list(range(2000))}

pytestmark = pytest.mark.moto


@pytest.fixture(scope="module")
def moto_clients() -> Iterator[tuple[Any, Any]]:
    """One mocked account and one pair of clients for the module: creating a boto3 client
    costs ~0.2 s (it loads the service model), more than most tests here."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        serialize_moto(patch)
        yield boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)


@pytest.fixture
def aws(moto_clients: tuple[Any, Any]) -> tuple[Any, Any]:
    """The clients, with a fresh empty table and bucket (``TABLE``/``BUCKET``) per test."""
    ddb, s3 = moto_clients
    for name in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=name)
    for bucket in s3.list_buckets()["Buckets"]:
        for key in objects(s3, bucket["Name"]):
            s3.delete_object(Bucket=bucket["Name"], Key=key)
        s3.delete_bucket(Bucket=bucket["Name"])
    create_table(ddb, TABLE)
    s3.create_bucket(Bucket=BUCKET)
    return ddb, s3


@pytest.fixture
def make_store(aws: tuple[Any, Any]) -> Callable[..., DynamoDbStore]:
    ddb, s3 = aws

    def make(**kwargs: Any) -> DynamoDbStore:
        kwargs.setdefault("client", ddb)
        kwargs.setdefault("s3_client", s3)
        kwargs.setdefault("bucket", BUCKET)
        return DynamoDbStore(TABLE, **kwargs)

    return make


class TestDynamoDbMotoContract(StoreContract):
    @pytest.fixture
    def store(self, make_store: Callable[..., DynamoDbStore]) -> Iterator[DynamoDbStore]:
        store = make_store()
        yield store
        store.close()


def raw_item(ddb: Any, pk: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = ddb.get_item(
        TableName=TABLE, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    )["Item"]
    return item


def objects(s3: Any, bucket: str = BUCKET) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# -- S3 offload ----------------------------------------------------------------------------


def test_one_megabyte_output_is_offloaded_and_the_item_keeps_a_reference(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, s3 = aws
    store = make_store()
    key = NodeKey(EID, "big")
    run_node(store, key, MB_OUTPUT)

    item = raw_item(ddb, f"EXEC#{EID}", "NODE#big")
    ref = item["output"]["S"]
    assert ref.startswith(f"s3://{BUCKET}/nodes/{EID}/big/-/") and ref.endswith(".json")
    assert len(json.dumps(item)) < 2_000  # the item holds the reference, not the blob
    (obj,) = objects(s3)
    assert ref == f"s3://{BUCKET}/{obj}"
    body = s3.get_object(Bucket=BUCKET, Key=obj)["Body"].read()
    assert json.loads(body) == MB_OUTPUT and int(item["output_bytes"]["N"]) == len(body)

    rec = store.get_node(key)
    assert rec is not None and rec.output == MB_OUTPUT  # reads are transparent
    # A Map item's output lands under its index; a copied node shares the object.
    run_node(store, NodeKey(EID, "m", 7), MB_OUTPUT)
    assert raw_item(ddb, f"EXEC#{EID}", "ITEM#m#0000000007")["output"]["S"].startswith(
        f"s3://{BUCKET}/nodes/{EID}/m/7/"
    )
    assert store.copy_nodes(EID, "exec-2", ["big"]) == ["big"]
    assert raw_item(ddb, "EXEC#exec-2", "NODE#big")["output"]["S"] == ref
    assert len(objects(s3)) == 2


def test_small_values_stay_inline(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, s3 = aws
    store = make_store(offload_threshold=100)
    run_node(store, NodeKey(EID, "small"), {"v": "x" * 80})
    run_node(store, NodeKey(EID, "over"), {"v": "x" * 100})
    assert raw_item(ddb, f"EXEC#{EID}", "NODE#small")["output"]["S"] == '{"v":"' + "x" * 80 + '"}'
    assert raw_item(ddb, f"EXEC#{EID}", "NODE#over")["output"]["S"].startswith("s3://")
    assert len(objects(s3)) == 1


def test_execution_cache_and_event_payloads_offload_too(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, s3 = aws
    store = make_store(offload_threshold=0)  # everything goes to S3
    big = {"payload": "y" * 200}
    store.create_execution(execution(input=big))
    store.update_execution(EID, status=RunStatus.SUCCEEDED, output=big)
    store.cache_put(CacheEntry(key="k", output=big, created_at=T0))
    store.append_events(EID, [{"id": 1, "type": "ExecutionStarted", "input": big}])
    item = raw_item(ddb, f"EXEC#{EID}", "META")
    assert item["input"]["S"].startswith("s3://") and item["output"]["S"].startswith("s3://")
    assert raw_item(ddb, "CACHE#k", "CACHE")["output"]["S"].startswith("s3://")
    got = store.get_execution(EID)
    assert (got.input, got.output) == (big, big)
    assert store.cache_get("k", now=T0).output == big  # type: ignore[union-attr]
    assert store.get_events(EID)[0]["input"] == big
    # The same JSON text is the same object (content-addressed per location).
    assert len(objects(s3)) == 4


def test_content_addressing_keeps_a_losers_upload_from_clobbering_the_winner(
    make_store: Callable[..., DynamoDbStore],
) -> None:
    store = make_store(offload_threshold=0)
    key = NodeKey(EID, "n")
    store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
    store.complete_node(key, owner="a", output="winner", now=at(1))
    with pytest.raises(StoreError):  # uploads its blob first, then loses the write
        store.complete_node(key, owner="zombie", output="loser", now=at(2))
    assert store.get_node(key).output == "winner"  # type: ignore[union-attr]


def test_a_vanished_cache_blob_is_a_miss_but_a_vanished_output_is_an_error(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    _, s3 = aws
    store = make_store(offload_threshold=0, clock=lambda: T0)
    store.cache_put(CacheEntry(key="k", output=[1], created_at=T0))  # never expires
    run_node(store, NodeKey(EID, "n"), [2])
    for key in objects(s3):  # what a bucket lifecycle rule does after N days
        s3.delete_object(Bucket=BUCKET, Key=key)
    assert store.cache_get("k", now=T0) is None  # recompute rather than fail the node
    with pytest.raises(StoreError, match="is gone"):
        store.get_node(NodeKey(EID, "n"))


def test_without_a_bucket_large_values_are_refused_before_any_write(
    make_store: Callable[..., DynamoDbStore],
) -> None:
    store = make_store(bucket=None)
    key = NodeKey(EID, "n")
    run_node(store, key, "z" * 200_000)  # over the threshold, under the item limit: inline
    assert store.get_node(key).output == "z" * 200_000  # type: ignore[union-attr]
    store.claim_node(NodeKey(EID, "m"), attempt=0, owner="a", lease_seconds=10, now=T0)
    with pytest.raises(InvalidPayload, match="bucket="):
        store.complete_node(NodeKey(EID, "m"), owner="a", output=MB_OUTPUT, now=at(1))
    assert store.get_node(NodeKey(EID, "m")).status is NodeStatus.RUNNING  # type: ignore[union-attr]


# -- TTL -----------------------------------------------------------------------------------


def test_cache_expiry_is_the_ttl_attribute_in_epoch_seconds(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, _ = aws
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}
    store = make_store()
    expires = at(60.5)
    store.cache_put(CacheEntry(key="t", output=1, created_at=T0, expires_at=expires))
    store.cache_put(CacheEntry(key="forever", output=1, created_at=T0))
    item = raw_item(ddb, "CACHE#t", "CACHE")
    assert int(item[TTL_ATTRIBUTE]["N"]) == math.ceil(expires.timestamp())
    assert TTL_ATTRIBUTE not in raw_item(ddb, "CACHE#forever", "CACHE")
    # TTL deletion is lazy (up to days late): expiry is decided on read, not by deletion.
    assert store.cache_get("t", now=at(60)) is not None
    assert store.cache_get("t", now=expires) is None


def test_retention_puts_a_ttl_on_every_execution_item(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, _ = aws
    store = make_store(retention=timedelta(days=30), clock=lambda: T0)
    store.create_execution(execution(name="nightly"))
    run_node(store, NodeKey(EID, "a"), 1)
    store.append_events(EID, [{"id": 1}])
    expected = str(math.ceil((T0 + timedelta(days=30)).timestamp()))
    for pk, sk in [
        (f"EXEC#{EID}", "META"),
        ("NAME#nightly", "WF#etl"),
        (f"EXEC#{EID}", "NODE#a"),
        (f"EXEC#{EID}", f"EVENT#{1:012d}"),
    ]:
        assert raw_item(ddb, pk, sk)[TTL_ATTRIBUTE] == {"N": expected}, (pk, sk)


# -- conditional writes --------------------------------------------------------------------


class Interposer:
    """Wraps a boto3 client: ``before(method, kwargs)`` runs before each forwarded call."""

    def __init__(self, client: Any, before: Callable[[str, dict[str, Any]], None]) -> None:
        self._client, self._before = client, before

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self._before(name, kwargs)
            return method(**kwargs)

        return call


def client_error(code: str, operation: str, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, **extra}, operation)


def test_lost_compare_and_swap_decides_again_on_the_winners_item(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, _ = aws
    rival = make_store()
    raced = []

    def before(method: str, kwargs: dict[str, Any]) -> None:
        # Between our read and our conditional write, a rival claims the node.
        if method == "put_item" and not raced:
            raced.append(rival.claim_node(key, attempt=0, owner="rival", lease_seconds=60, now=T0))

    store = make_store(client=Interposer(ddb, before))
    key = NodeKey(EID, "n")
    claim = store.claim_node(key, attempt=0, owner="me", lease_seconds=60, now=T0)
    assert raced[0].acquired
    assert not claim.acquired and claim.record.owner == "rival"
    assert store.get_node(key).version == 1  # type: ignore[union-attr]


def test_transaction_conflicts_are_retried(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, _ = aws
    failures = []

    def before(method: str, kwargs: dict[str, Any]) -> None:
        if method == "transact_write_items" and len(failures) < 2:
            reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (
                len(kwargs["TransactItems"]) - 1
            )
            failures.append(method)
            raise client_error(
                "TransactionCanceledException", "TransactWriteItems", CancellationReasons=reasons
            )

    store = make_store(client=Interposer(ddb, before))
    store.create_execution(execution())
    key = NodeKey(EID, "n")
    store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
    entry = CacheEntry(key="c", output=1, created_at=T0)
    store.complete_node(key, owner="a", output=1, now=at(1), cache=entry)
    assert len(failures) == 2
    assert store.get_execution(EID).execution_id == EID
    assert store.cache_get("c", now=at(2)) == entry


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"],
)
def test_throttling_becomes_store_unavailable_chained(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any], code: str
) -> None:
    ddb, _ = aws

    def before(method: str, kwargs: dict[str, Any]) -> None:
        raise client_error(code, method)

    store = make_store(client=Interposer(ddb, before))
    with pytest.raises(StoreUnavailable) as info:
        store.get_node(NodeKey(EID, "n"))
    assert isinstance(info.value.__cause__, ClientError)


def test_unreachable_endpoint_is_unavailable_and_missing_table_is_an_error(
    make_store: Callable[..., DynamoDbStore], aws: tuple[Any, Any]
) -> None:
    ddb, _ = aws
    with pytest.raises(StoreError, match="ResourceNotFoundException") as info:
        DynamoDbStore("no-such-table", client=ddb).get_node(NodeKey(EID, "n"))
    assert not isinstance(info.value, StoreUnavailable)

    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    # A real HTTP client outside moto's interception (not an amazonaws.com URL).
    config = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1)
    offline = boto3.client(
        "dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9", config=config
    )
    with pytest.raises(StoreUnavailable) as down:
        DynamoDbStore(TABLE, client=offline).get_node(NodeKey(EID, "n"))
    assert down.value.__cause__ is not None


# -- clients -------------------------------------------------------------------------------


def test_module_imports_without_boto3_and_clients_are_created_lazily() -> None:
    code = (
        "import sys; import stepdag.runtime.dynamodb as d; "
        "s = d.DynamoDbStore('t', bucket='b'); "
        "assert not {'boto3', 'botocore'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="functions")


def test_default_clients_come_from_the_session_on_first_use(aws: tuple[Any, Any]) -> None:
    session = boto3.session.Session(region_name=REGION)
    store = DynamoDbStore(TABLE, bucket=BUCKET, boto3_session=session, offload_threshold=0)
    assert store._ddb._client is None and store._blobs.client._client is None
    run_node(store, NodeKey(EID, "n"), {"v": 1})
    assert store.get_node(NodeKey(EID, "n")).output == {"v": 1}  # type: ignore[union-attr]
    assert store.client.meta.region_name == REGION
    assert store.client.meta.config.retries["mode"] == "standard"
    store.close()
    store.close()


def test_many_filtered_out_items_still_fill_pages(
    make_store: Callable[..., DynamoDbStore],
) -> None:
    store = make_store()
    for i in range(120):  # only every 40th is SUCCEEDED: most index reads are filtered out
        status = RunStatus.SUCCEEDED if i % 40 == 0 else RunStatus.RUNNING
        store.create_execution(execution(f"e{i:03d}", minute=i, status=status))
    seen, token, pages = [], None, 0
    while True:
        page = store.list_executions(
            workflow="etl", status=RunStatus.SUCCEEDED, limit=2, next_token=token
        )
        seen += [r.execution_id for r in page.items]
        pages += 1
        if (token := page.next_token) is None:
            break
    assert seen == ["e080", "e040", "e000"] and pages == 2

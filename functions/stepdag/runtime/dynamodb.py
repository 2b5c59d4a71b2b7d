"""DynamoDB backend (the AWS runtime's store): one table, large payloads offloaded to S3.

The design -- every item type, the GSIs and the queries they serve, TTL, the condition on
each write, pagination -- is documented in ``docs/dynamodb.md``; keep the two in step.

In short: the table has a generic ``PK``/``SK`` key and four sparse GSIs over execution
items.  Every node transition is an optimistic compare-and-swap: read the item
(strongly consistent), let the base class decide (``NodeRecord.claim_blocker`` etc.),
write the new item on the condition ``version = <version read>``, and on
``ConditionalCheckFailed`` decide again against the item the failure returned.  The
``version`` pins the exact item the rule was evaluated on, so a rule checked client-side
still holds at write time.  A completion that also writes a cache entry, and the creation
of an execution with its name-uniqueness item, are ``TransactWriteItems``.

Uses the low-level client (not the boto3 resource) and maps the store's flat items by
hand (``dynamodb_items.py``: attribute values, keys, expressions, the listing's index and
cursor): the values are only ``str``/``int``/``bool``/``None``, ints come back as ints
(the resource layer would make them ``Decimal``), and ``None`` is stored as *absent*.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from stepdag.constants import (
    INDEX_STATUS,
    INDEXES,
    PK,
    SK,
    TTL_ATTRIBUTE,
    table_spec,
)
from stepdag.core.errors import StoreError
from stepdag.runtime.aws import LazyClient, PayloadGone, S3Blobs, aws_errors, error_code, is_ref
from stepdag.runtime.dynamodb_items import (
    CACHE_COLUMNS,
    EVENT_DIGITS,
    EVENT_MAX,
    EXECUTION_COLUMNS,
    LEASE_COLUMNS,
    NODE_COLUMNS,
    Expr,
    Refusal,
    cache_key,
    cache_raw,
    cursor_after,
    event_key,
    exec_key,
    execution_raw,
    from_av,
    from_raw,
    lease_key,
    listing_query,
    name_key,
    node_key,
    refusal,
    start_key,
    to_raw,
)
from stepdag.runtime.records import (
    Item,
    NodeKey,
    to_micros,
)
from stepdag.runtime.store import (
    ExecutionStore,
    InvalidPayload,
    NodeDecision,
    StoreUnavailable,
)

# -- table definition (names and spec: stepdag.constants) -------------------------------


def create_table(client: Any, table_name: str) -> None:
    """Create the table, wait until it is ACTIVE and enable TTL (tests, dev stacks).

    ``client``: a boto3 DynamoDB client (``Any``: boto3 ships no type stubs)."""
    with aws_errors(f"create table {table_name}"):
        client.create_table(**table_spec(table_name))
        client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )


_MAX_INLINE: Final = 350_000  # without a bucket; DynamoDB's item limit is 400 KB
_MAX_THRESHOLD: Final = 150_000  # an execution holds input *and* output inline
_MAX_ATTEMPTS: Final = 50
_BATCH_GET_MAX: Final = 100


def _backoff(attempt: int) -> None:
    """Full-jitter backoff for transaction conflicts and throttled batches (a lost
    compare-and-swap needs none: the winner has committed, a re-read sees it)."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


class DynamoDbStore(ExecutionStore):
    """The execution store on one DynamoDB table (:func:`table_spec`), S3 for big values.

    ``client``/``s3_client``: boto3 clients (``Any``: boto3 ships no type stubs); when
    omitted they are created on first use from ``boto3_session`` (default: a new session)
    and ``boto_config``.  ``bucket``: where values over ``offload_threshold`` bytes go
    (under ``s3_prefix``); without one, values up to ~350 KB stay inline and bigger ones
    are refused.  ``retention``: executions, name items, nodes and events get a TTL of
    write time + retention (None: kept forever); cache entries expire by ``expires_at``.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        s3_client: Any = None,
        bucket: str | None = None,
        s3_prefix: str = "",
        offload_threshold: int = 64 * 1024,
        retention: timedelta | None = None,
        boto3_session: Any = None,
        boto_config: Any = None,
        clock: Callable[[], datetime] | None = None,
        pagination_key: bytes | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("table_name must be a non-empty string")
        if not 0 <= offload_threshold <= _MAX_THRESHOLD:
            raise ValueError(f"offload_threshold must be in [0, {_MAX_THRESHOLD}] bytes")
        if retention is not None and retention <= timedelta(0):
            raise ValueError("retention must be positive (or None)")
        super().__init__(clock=clock, pagination_key=pagination_key)
        self.table_name = table_name
        self.bucket = bucket
        self.offload_threshold = offload_threshold
        self.retention = retention
        self._ddb = LazyClient("dynamodb", client, session=boto3_session, config=boto_config)
        s3 = LazyClient("s3", s3_client, session=boto3_session, config=boto_config)
        self._blobs = S3Blobs(s3, bucket, s3_prefix)

    def __repr__(self) -> str:
        return f"DynamoDbStore({self.table_name!r}, bucket={self.bucket!r})"

    @property
    def client(self) -> Any:
        """The DynamoDB client (created on first access)."""
        return self._ddb.get()

    @property
    def s3_client(self) -> Any:
        """The S3 client (created on first access)."""
        return self._blobs.client.get()

    def close(self) -> None:
        self._ddb.close()
        self._blobs.client.close()

    # -- large payloads ------------------------------------------------------------------

    def _offload(self, key: str, blob: str) -> str:
        if len(blob) <= self.offload_threshold:  # ASCII JSON: characters == bytes
            return blob
        if self.bucket is None:
            if len(blob) > _MAX_INLINE:
                raise InvalidPayload(
                    f"{key} is {len(blob)} bytes, over DynamoDB's 400 KB item limit; "
                    "give DynamoDbStore a bucket= to offload large values to S3"
                )
            return blob
        return self._blobs.put(key, blob)

    def _load(self, ref: str) -> str:
        return self._blobs.get(ref) if is_ref(ref) else ref

    # -- calls ---------------------------------------------------------------------------

    def _call(self, operation: str, method: str, **kwargs: Any) -> Any:
        with aws_errors(f"{operation} ({self.table_name})"):
            return getattr(self.client, method)(**kwargs)

    def _write(self, operation: str, method: str, **kwargs: Any) -> tuple[Any, Refusal | None]:
        """A conditional write: (response, None) if it committed, else (None, refusal).
        Any other failure raises, translated."""
        try:
            return self._call(operation, method, **kwargs), None
        except StoreError as exc:
            cause = exc.__cause__
            code = None if cause is None else error_code(cause)
            refused = refusal(code, getattr(cause, "response", None))
            if refused is None:
                raise
            return None, refused

    def _put(self, item: dict[str, Any], condition: str, expr: Expr) -> dict[str, Any]:
        """A conditional Put, as a request or as one TransactWriteItems operation."""
        return expr(
            TableName=self.table_name,
            Item=item,
            ConditionExpression=condition,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def _put_if_absent(self, operation: str, raw: dict[str, Any]) -> bool:
        expr = Expr()
        put = self._put(raw, f"attribute_not_exists({expr.n(PK)})", expr)
        for attempt in range(_MAX_ATTEMPTS):
            _, refused = self._write(operation, "put_item", **put)
            if refused is None or refused[0][0] == "ConditionalCheckFailed":
                return refused is None
            _backoff(attempt)  # TransactionConflict: a transaction held the item
        raise StoreUnavailable(f"{operation}: too many conflicting writes")

    def _get(self, operation: str, key: dict[str, Any]) -> dict[str, Any] | None:
        resp = self._call(
            operation, "get_item", TableName=self.table_name, Key=key, ConsistentRead=True
        )
        item: dict[str, Any] | None = resp.get("Item")
        return item

    def _query(self, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query returns, following LastEvaluatedKey."""
        kwargs["TableName"] = self.table_name
        while True:
            resp = self._call(operation, "query", **kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _key_query(self, pk: str, sk_condition: str, *sk_values: str) -> Iterator[dict[str, Any]]:
        """Query one partition (strongly consistent); ``sk_condition`` names the sort key
        ``{sk}`` and its values ``{0}``, ``{1}``."""
        expr = Expr()
        values = [expr.v(v) for v in sk_values]
        condition = f"{expr.n(PK)} = {expr.v(pk)}"
        if sk_condition:
            condition += " AND " + sk_condition.format(*values, sk=expr.n(SK))
        query = expr(KeyConditionExpression=condition, ConsistentRead=True)
        return self._query(f"query {pk}", **query)

    def _batch_get(self, operation: str, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for i in range(0, len(keys), _BATCH_GET_MAX):
            pending = list(keys[i : i + _BATCH_GET_MAX])
            for attempt in range(_MAX_ATTEMPTS):
                request = {self.table_name: {"Keys": pending, "ConsistentRead": True}}
                resp = self._call(operation, "batch_get_item", RequestItems=request)
                found += resp.get("Responses", {}).get(self.table_name, [])
                pending = resp.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys")
                if not pending:
                    break
                _backoff(attempt)  # the throttled part of the batch comes back unprocessed
            else:
                raise StoreUnavailable(f"{operation}: keys left unprocessed (throttled)")
        return found

    def _ttl(self) -> Item:
        if self.retention is None:
            return {}
        return {TTL_ATTRIBUTE: math.ceil((self._clock() + self.retention).timestamp())}

    # -- executions ----------------------------------------------------------------------

    def _insert_execution(self, item: Item) -> Item | None:
        eid, name, workflow = item["execution_id"], item["name"], item["workflow"]
        ttl = self._ttl()  # one value: the name claim must not outlive its execution
        name_item = to_raw(name_key(name, workflow), {"execution_id": eid, **ttl})
        puts = []
        for raw in (execution_raw(item, ttl), name_item):
            expr = Expr()
            puts.append({"Put": self._put(raw, f"attribute_not_exists({expr.n(PK)})", expr)})
        for attempt in range(_MAX_ATTEMPTS):
            _, refused = self._write(
                f"create execution {eid}", "transact_write_items", TransactItems=puts
            )
            if refused is None:
                return None
            (by_id, old), (by_name, _) = refused
            if by_id == "ConditionalCheckFailed":
                old = old or self._get("get execution", exec_key(eid))
                if old is not None:
                    return from_raw(old, EXECUTION_COLUMNS)
            if by_name == "ConditionalCheckFailed":
                found = self._find_executions_by_name(name, workflow)
                if found:
                    return found[0]
            # A concurrent transaction, or the item we collided with vanished (TTL)
            # before we read it: try again.
            _backoff(attempt)
        raise StoreUnavailable(f"create execution {eid}: too many conflicting writes")

    def _get_execution(self, execution_id: str) -> Item | None:
        raw = self._get("get execution", exec_key(execution_id))
        return None if raw is None else from_raw(raw, EXECUTION_COLUMNS)

    def _find_executions_by_name(self, name: str, workflow: str | None) -> list[Item]:
        pk = name_key(name, "")[PK]["S"]
        if workflow is None:
            names = self._key_query(pk, "")
        else:
            names = self._key_query(pk, "{sk} = {0}", name_key(name, workflow)[SK]["S"])
        keys = [exec_key(from_av(n["execution_id"])) for n in names]
        raws = self._batch_get("get executions", keys) if keys else []
        items = [from_raw(r, EXECUTION_COLUMNS) for r in raws]
        return sorted(items, key=lambda i: (i["workflow"], i["execution_id"]))

    def _update_execution(
        self,
        execution_id: str,
        changes: Item,
        expected: frozenset[str] | None,
        *,
        redrive_count: int | None = None,
    ) -> tuple[Item | None, Item | None]:
        expr = Expr()
        updates = dict(changes)
        if "status" in changes:  # keep the status GSI in step with the status
            updates[INDEXES[INDEX_STATUS]] = f"STATUS#{changes['status']}"
        sets = [f"{expr.n(c)} = {expr.v(v)}" for c, v in updates.items() if v is not None]
        removes = [expr.n(c) for c, v in updates.items() if v is None]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"attribute_exists({expr.n(PK)})"
        if expected is not None:
            allowed = ", ".join(expr.v(s) for s in sorted(expected))
            condition += f" AND {expr.n('status')} IN ({allowed})"
        if redrive_count is not None:
            condition += f" AND {expr.n('redrive_count')} = {expr.v(redrive_count)}"
        request = expr(
            TableName=self.table_name,
            Key=exec_key(execution_id),
            UpdateExpression=update,
            ConditionExpression=condition,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        for attempt in range(_MAX_ATTEMPTS):
            resp, refused = self._write(
                f"update execution {execution_id}", "update_item", **request
            )
            if refused is None:
                return from_raw(resp["Attributes"], EXECUTION_COLUMNS), None
            code, old = refused[0]
            if code == "ConditionalCheckFailed":
                if old is None:  # absent, or a server without ReturnValuesOnCCF: read it
                    return None, self._get_execution(execution_id)
                return None, from_raw(old, EXECUTION_COLUMNS)
            _backoff(attempt)  # TransactionConflict: a transaction held the item
        raise StoreUnavailable(f"update execution {execution_id}: too many conflicting writes")

    def _query_executions(
        self,
        *,
        workflow: str | None,
        status: str | None,
        tenant: str | None,
        limit: int,
        cursor: Any,
    ) -> tuple[list[Item], Any]:
        index, listing, filtered = listing_query(workflow=workflow, status=status, tenant=tenant)
        query = {"TableName": self.table_name, **listing}
        if cursor is not None:
            query["ExclusiveStartKey"] = start_key(cursor, index)
        # Limit counts items *read*, before the filter: read pages until one item more
        # than asked has matched, which says whether a next page exists (so the last page
        # never hands out a token leading to an empty page).
        found: list[dict[str, Any]] = []
        while len(found) <= limit:
            want = limit + 1 - len(found)
            resp = self._call(
                "list executions", "query", Limit=max(want, 100) if filtered else want, **query
            )
            found += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        page = found[:limit]
        items = [from_raw(r, EXECUTION_COLUMNS) for r in page]
        if len(found) <= limit:
            return items, None
        return items, cursor_after(page[-1], index)

    # -- nodes ---------------------------------------------------------------------------

    def _node_raw(self, item: Item) -> dict[str, Any]:
        key = node_key(item["execution_id"], item["node"], item["map_index"])
        return to_raw(key, {**item, **self._ttl()})

    def _transact_node(
        self, key: NodeKey, decide: NodeDecision, cache_item: Item | None = None
    ) -> tuple[bool, Item | None]:
        ddb_key = node_key(key.execution_id, key.node, key.map_index)
        raw = self._get(f"read node {key}", ddb_key)
        for attempt in range(_MAX_ATTEMPTS):
            current = None if raw is None else from_raw(raw, NODE_COLUMNS)
            new = decide(current)  # may raise: nothing written, propagates unchanged
            if new is None:
                return False, current
            expr = Expr()
            if current is None:
                condition = f"attribute_not_exists({expr.n(PK)})"
            else:  # compare-and-swap: the item is still the one decide() saw
                condition = f"{expr.n('version')} = {expr.v(current['version'])}"
            put = self._put(self._node_raw(new), condition, expr)
            if cache_item is None:
                _, refused = self._write(f"write node {key}", "put_item", **put)
            else:  # the node and its cache entry commit together or not at all
                cache = {"TableName": self.table_name, "Item": cache_raw(cache_item)}
                ops = [{"Put": put}, {"Put": cache}]
                _, refused = self._write(
                    f"write node {key}", "transact_write_items", TransactItems=ops
                )
            if refused is None:
                return True, new
            code, raw = refused[0]
            if code == "ConditionalCheckFailed" and raw is not None:
                continue  # decide again on the item that beat us, no re-read needed
            if code != "ConditionalCheckFailed":
                _backoff(attempt)  # a transaction held the item
            raw = self._get(f"read node {key}", ddb_key)
        raise StoreUnavailable(f"write node {key}: gave up after {_MAX_ATTEMPTS} conflicts")

    def _get_node(self, key: NodeKey) -> Item | None:
        raw = self._get(f"get node {key}", node_key(key.execution_id, key.node, key.map_index))
        return None if raw is None else from_raw(raw, NODE_COLUMNS)

    def _query_nodes(
        self, execution_id: str, *, nodes: Collection[str] | None, include_items: bool
    ) -> list[Item]:
        pk = f"EXEC#{execution_id}"
        if nodes is None:
            raws = list(self._key_query(pk, "begins_with({sk}, {0})", "NODE#"))
            prefixes = ["ITEM#"] if include_items else []
        else:
            names = sorted(set(nodes))
            keys = [node_key(execution_id, n, None) for n in names]
            raws = self._batch_get("get nodes", keys) if keys else []
            prefixes = [f"ITEM#{n}#" for n in names] if include_items else []
        for prefix in prefixes:
            raws += self._key_query(pk, "begins_with({sk}, {0})", prefix)
        items = [from_raw(r, NODE_COLUMNS) for r in raws]
        if nodes is not None:  # a '#' in a node name could widen a prefix match
            items = [i for i in items if i["node"] in nodes]
        # Sorted here, not by the sort key: "a#..." vs "a-b#..." order differs from "a" < "a-b".
        return sorted(
            items, key=lambda i: (i["node"], -1 if i["map_index"] is None else i["map_index"])
        )

    def _insert_nodes_if_absent(self, items: Sequence[Item]) -> int:
        return sum(self._put_if_absent("copy node", self._node_raw(item)) for item in items)

    # -- history -------------------------------------------------------------------------

    def _append_events(self, execution_id: str, rows: Sequence[tuple[int, str]]) -> int:
        # One conditional put per event: "first write wins" must hold against concurrent
        # appenders, which BatchWriteItem (unconditional) cannot guarantee.
        inserted = 0
        for event_id, body in rows:
            if event_id > EVENT_MAX:
                raise ValueError(f"history event id {event_id} is over {EVENT_MAX}")
            stored = self._offload(f"events/{execution_id}/{event_id}", body)
            raw = to_raw(
                event_key(execution_id, event_id), {"id": event_id, "body": stored, **self._ttl()}
            )
            inserted += self._put_if_absent("append event", raw)
        return inserted

    def _get_events(self, execution_id: str, after_id: int, limit: int | None) -> list[str]:
        if after_id >= EVENT_MAX:
            return []
        low = f"EVENT#{after_id + 1:0{EVENT_DIGITS}d}"
        events = self._key_query(
            f"EXEC#{execution_id}", "{sk} BETWEEN {0} AND {1}", low, f"EVENT#{EVENT_MAX}"
        )
        bodies: list[str] = []
        for raw in events:
            if limit is not None and len(bodies) >= limit:
                break
            bodies.append(self._load(raw["body"]["S"]))
        return bodies

    # -- leases --------------------------------------------------------------------------

    def _get_lease(self, execution_id: str) -> Item | None:
        raw = self._get("get lease", lease_key(execution_id))
        return None if raw is None else from_raw(raw, LEASE_COLUMNS)

    def _swap_lease(self, execution_id: str, new: Item | None, expected: Item | None) -> bool:
        expr = Expr()
        if expected is None:
            condition = f"attribute_not_exists({expr.n(PK)})"
        else:  # the lease is still the one the caller read
            condition = (
                f"{expr.n('owner')} = {expr.v(expected['owner'])} AND "
                f"{expr.n('expires_at')} = {expr.v(expected['expires_at'])}"
            )
        key = lease_key(execution_id)
        if new is None:
            request = expr(TableName=self.table_name, Key=key, ConditionExpression=condition)
            _, refused = self._write("delete lease", "delete_item", **request)
        else:
            put = self._put(to_raw(key, {**new, **self._ttl()}), condition, expr)
            _, refused = self._write("write lease", "put_item", **put)
        return refused is None

    # -- cache ---------------------------------------------------------------------------

    def _get_cache(self, key: str) -> Item | None:
        raw = self._get("get cache entry", cache_key(key))
        if raw is None:
            return None
        item = from_raw(raw, CACHE_COLUMNS)
        expires = item["expires_at"]
        if is_ref(item["output"]) and (expires is None or expires > to_micros(self._clock())):
            # Load here so a blob a bucket lifecycle rule already deleted (entries may
            # outlive it: "never expires") is a cache miss, not a failed node.  Expired
            # entries are left to the base, which discards them without loading.
            try:
                item["output"] = self._blobs.get(item["output"])
            except PayloadGone:
                return None
        return item

    def _put_cache(self, item: Item) -> None:
        self._call("put cache entry", "put_item", TableName=self.table_name, Item=cache_raw(item))

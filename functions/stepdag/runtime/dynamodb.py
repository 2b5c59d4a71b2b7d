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
hand: the values are only ``str``/``int``/``bool``/``None``, ints come back as ints (the
resource layer would make them ``Decimal``), and ``None`` is stored as *absent* -- so
items stay small and the GSIs stay sparse.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from stepdag.constants import (
    ALL_EXECUTIONS,
    INDEX_ALL,
    INDEX_STATUS,
    INDEX_TENANT,
    INDEX_WORKFLOW,
    INDEXES,
    PK,
    SK,
    STARTED_KEY,
    TTL_ATTRIBUTE,
    table_spec,
)
from stepdag.core.errors import StoreError
from stepdag.runtime.aws import LazyClient, PayloadGone, S3Blobs, aws_errors, error_code, is_ref
from stepdag.runtime.records import (
    CacheEntry,
    ExecutionRecord,
    Item,
    NodeKey,
    NodeRecord,
    cache_to_item,
    execution_to_item,
    node_to_item,
    to_micros,
)
from stepdag.runtime.store import (
    ExecutionStore,
    InvalidPaginationToken,
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


# -- item mapping ------------------------------------------------------------------------

_T: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Column lists derived from records.py so they can never drift from the stored form.
_EXECUTION_COLUMNS: Final = tuple(
    execution_to_item(
        ExecutionRecord(execution_id="x", name="x", workflow="x", started_at=_T),
        input=None,
        output=None,
    )
)
_NODE_COLUMNS: Final = tuple(node_to_item(NodeRecord(execution_id="x", node="x"), output=None))
_CACHE_COLUMNS: Final = tuple(
    cache_to_item(CacheEntry(key="x", output=0, created_at=_T), output="")
)
# Events are sorted by a zero-padded id in the sort key; 12 digits is far beyond Step
# Functions' 25,000-event history limit.
_EVENT_DIGITS: Final = 12
_EVENT_MAX: Final = 10**_EVENT_DIGITS - 1
# started_at is epoch microseconds and may be negative (before 1970); shifting by 10**17
# makes every datetime from year 1 to 9999 a non-negative 18-digit number, so the
# zero-padded string sorts like the number.
_TIME_OFFSET: Final = 10**17
_MAX_INLINE: Final = 350_000  # without a bucket; DynamoDB's item limit is 400 KB
_MAX_THRESHOLD: Final = 150_000  # an execution holds input *and* output inline
_MAX_ATTEMPTS: Final = 50
_BATCH_GET_MAX: Final = 100


def _av(value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__} in an item")


def _value(av: dict[str, Any]) -> Any:
    ((tag, raw),) = av.items()
    if tag in ("S", "BOOL"):
        return raw
    if tag == "N":
        return int(raw)
    if tag == "NULL":
        return None
    raise StoreError(f"unexpected DynamoDB attribute type {tag!r}")


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {PK: {"S": pk}, SK: {"S": sk}}


def _to_raw(key: dict[str, Any], item: Item) -> dict[str, Any]:
    return {**key, **{col: _av(v) for col, v in item.items() if v is not None}}


def _from_raw(raw: dict[str, Any], columns: Sequence[str]) -> Item:
    return {col: _value(raw[col]) if col in raw else None for col in columns}


def _exec_key(execution_id: str) -> dict[str, Any]:
    return _key(f"EXEC#{execution_id}", "META")


def _node_key(execution_id: str, node: str, map_index: int | None) -> dict[str, Any]:
    # A node's own item and its Map items use different prefixes so that listing the
    # nodes of an execution never reads its (possibly thousands of) Map items.
    sk = f"NODE#{node}" if map_index is None else f"ITEM#{node}#{map_index:010d}"
    return _key(f"EXEC#{execution_id}", sk)


def _cache_key(key: str) -> dict[str, Any]:
    return _key(f"CACHE#{key}", "CACHE")


def _started_key(started_at: int, execution_id: str) -> str:
    return f"{started_at + _TIME_OFFSET:019d}#{execution_id}"


class _Expr:
    """Allocates ``#n``/``:v`` placeholders: attribute names like ``status``, ``name`` or
    ``items`` are DynamoDB reserved words and may only appear through placeholders."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def n(self, attribute: str) -> str:
        placeholder = f"#n{len(self.names)}"
        for existing, name in self.names.items():
            if name == attribute:
                return existing
        self.names[placeholder] = attribute
        return placeholder

    def v(self, value: str | int | bool) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _av(value)
        return placeholder

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        """``kwargs`` plus the placeholders they use."""
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        return {**kwargs, "ExpressionAttributeNames": self.names}


def _backoff(attempt: int) -> None:
    """Full-jitter backoff for transaction conflicts and throttled batches (a lost
    compare-and-swap needs none: the winner has committed, a re-read sees it)."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


Refusal = list[tuple[str, dict[str, Any] | None]]
"""Why a conditional write did not commit: per operation of the request, its reason code
(``ConditionalCheckFailed``, ``TransactionConflict`` or ``None`` = not the culprit) and,
for a failed condition, the item as it is (``ReturnValuesOnConditionCheckFailure``)."""
_REFUSALS: Final = frozenset({"ConditionalCheckFailed", "TransactionConflict", "None"})


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
            if code in ("ConditionalCheckFailedException", "TransactionConflictException"):
                old = getattr(cause, "response", {}).get("Item")
                return None, [(code.removesuffix("Exception"), old)]
            response = getattr(cause, "response", None)
            reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
            if reasons and all(r.get("Code") in _REFUSALS for r in reasons):
                return None, [(r["Code"], r.get("Item")) for r in reasons]
            raise

    def _put(self, item: dict[str, Any], condition: str, expr: _Expr) -> dict[str, Any]:
        """A conditional Put, as a request or as one TransactWriteItems operation."""
        return expr(
            TableName=self.table_name,
            Item=item,
            ConditionExpression=condition,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    def _put_if_absent(self, operation: str, raw: dict[str, Any]) -> bool:
        expr = _Expr()
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
        expr = _Expr()
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

    def _execution_raw(self, item: Item, ttl: Item) -> dict[str, Any]:
        extra: Item = {
            INDEXES[INDEX_ALL]: ALL_EXECUTIONS,
            INDEXES[INDEX_WORKFLOW]: f"WF#{item['workflow']}",
            INDEXES[INDEX_STATUS]: f"STATUS#{item['status']}",
            STARTED_KEY: _started_key(item["started_at"], item["execution_id"]),
        }
        if item["tenant"] is not None:  # sparse: untenanted executions stay out of it
            extra[INDEXES[INDEX_TENANT]] = f"TENANT#{item['tenant']}"
        return _to_raw(_exec_key(item["execution_id"]), {**item, **extra, **ttl})

    def _insert_execution(self, item: Item) -> Item | None:
        eid, name, workflow = item["execution_id"], item["name"], item["workflow"]
        ttl = self._ttl()  # one value: the name claim must not outlive its execution
        name_item = _to_raw(_name_key(name, workflow), {"execution_id": eid, **ttl})
        puts = []
        for raw in (self._execution_raw(item, ttl), name_item):
            expr = _Expr()
            puts.append({"Put": self._put(raw, f"attribute_not_exists({expr.n(PK)})", expr)})
        for attempt in range(_MAX_ATTEMPTS):
            _, refused = self._write(
                f"create execution {eid}", "transact_write_items", TransactItems=puts
            )
            if refused is None:
                return None
            (by_id, old), (by_name, _) = refused
            if by_id == "ConditionalCheckFailed":
                old = old or self._get("get execution", _exec_key(eid))
                if old is not None:
                    return _from_raw(old, _EXECUTION_COLUMNS)
            if by_name == "ConditionalCheckFailed":
                found = self._find_executions_by_name(name, workflow)
                if found:
                    return found[0]
            # A concurrent transaction, or the item we collided with vanished (TTL)
            # before we read it: try again.
            _backoff(attempt)
        raise StoreUnavailable(f"create execution {eid}: too many conflicting writes")

    def _get_execution(self, execution_id: str) -> Item | None:
        raw = self._get("get execution", _exec_key(execution_id))
        return None if raw is None else _from_raw(raw, _EXECUTION_COLUMNS)

    def _find_executions_by_name(self, name: str, workflow: str | None) -> list[Item]:
        pk = _name_key(name, "")[PK]["S"]
        if workflow is None:
            names = self._key_query(pk, "")
        else:
            names = self._key_query(pk, "{sk} = {0}", _name_key(name, workflow)[SK]["S"])
        keys = [_exec_key(_value(n["execution_id"])) for n in names]
        raws = self._batch_get("get executions", keys) if keys else []
        items = [_from_raw(r, _EXECUTION_COLUMNS) for r in raws]
        return sorted(items, key=lambda i: (i["workflow"], i["execution_id"]))

    def _update_execution(
        self,
        execution_id: str,
        changes: Item,
        expected: frozenset[str] | None,
        *,
        redrive_count: int | None = None,
    ) -> tuple[Item | None, Item | None]:
        expr = _Expr()
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
            Key=_exec_key(execution_id),
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
                return _from_raw(resp["Attributes"], _EXECUTION_COLUMNS), None
            code, old = refused[0]
            if code == "ConditionalCheckFailed":
                if old is None:  # absent, or a server without ReturnValuesOnCCF: read it
                    return None, self._get_execution(execution_id)
                return None, _from_raw(old, _EXECUTION_COLUMNS)
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
        # The first filter given picks the index; the others become a FilterExpression.
        filters = [
            ("workflow", workflow, INDEX_WORKFLOW, "WF#"),
            ("tenant", tenant, INDEX_TENANT, "TENANT#"),
            ("status", status, INDEX_STATUS, "STATUS#"),
        ]
        given = [(c, v, i, p) for c, v, i, p in filters if v is not None]
        index, partition = INDEX_ALL, ALL_EXECUTIONS
        if given:
            _, value, index, prefix = given.pop(0)
            partition = f"{prefix}{value}"
        expr = _Expr()
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": f"{expr.n(INDEXES[index])} = {expr.v(partition)}",
            "ScanIndexForward": False,  # newest first
        }
        if given:
            query["FilterExpression"] = " AND ".join(
                f"{expr.n(column)} = {expr.v(value)}" for column, value, _, _ in given
            )
        query = expr(TableName=self.table_name, **query)
        key_attrs = (PK, SK, INDEXES[index], STARTED_KEY)
        if cursor is not None:
            query["ExclusiveStartKey"] = _start_key(cursor, index, key_attrs)
        # Limit counts items *read*, before the filter: read pages until one item more
        # than asked has matched, which says whether a next page exists (so the last page
        # never hands out a token leading to an empty page).
        found: list[dict[str, Any]] = []
        while len(found) <= limit:
            want = limit + 1 - len(found)
            resp = self._call(
                "list executions", "query", Limit=max(want, 100) if given else want, **query
            )
            found += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        page = found[:limit]
        items = [_from_raw(r, _EXECUTION_COLUMNS) for r in page]
        if len(found) <= limit:
            return items, None
        # The LastEvaluatedKey DynamoDB would return after the page's last item -- built
        # from that item, since the query itself may have read further.
        return items, {"index": index, "key": {a: page[-1][a]["S"] for a in key_attrs}}

    # -- nodes ---------------------------------------------------------------------------

    def _node_raw(self, item: Item) -> dict[str, Any]:
        key = _node_key(item["execution_id"], item["node"], item["map_index"])
        return _to_raw(key, {**item, **self._ttl()})

    def _transact_node(
        self, key: NodeKey, decide: NodeDecision, cache_item: Item | None = None
    ) -> tuple[bool, Item | None]:
        ddb_key = _node_key(key.execution_id, key.node, key.map_index)
        raw = self._get(f"read node {key}", ddb_key)
        for attempt in range(_MAX_ATTEMPTS):
            current = None if raw is None else _from_raw(raw, _NODE_COLUMNS)
            new = decide(current)  # may raise: nothing written, propagates unchanged
            if new is None:
                return False, current
            expr = _Expr()
            if current is None:
                condition = f"attribute_not_exists({expr.n(PK)})"
            else:  # compare-and-swap: the item is still the one decide() saw
                condition = f"{expr.n('version')} = {expr.v(current['version'])}"
            put = self._put(self._node_raw(new), condition, expr)
            if cache_item is None:
                _, refused = self._write(f"write node {key}", "put_item", **put)
            else:  # the node and its cache entry commit together or not at all
                cache = {"TableName": self.table_name, "Item": self._cache_raw(cache_item)}
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
        raw = self._get(f"get node {key}", _node_key(key.execution_id, key.node, key.map_index))
        return None if raw is None else _from_raw(raw, _NODE_COLUMNS)

    def _query_nodes(
        self, execution_id: str, *, nodes: Collection[str] | None, include_items: bool
    ) -> list[Item]:
        pk = f"EXEC#{execution_id}"
        if nodes is None:
            raws = list(self._key_query(pk, "begins_with({sk}, {0})", "NODE#"))
            prefixes = ["ITEM#"] if include_items else []
        else:
            names = sorted(set(nodes))
            keys = [_node_key(execution_id, n, None) for n in names]
            raws = self._batch_get("get nodes", keys) if keys else []
            prefixes = [f"ITEM#{n}#" for n in names] if include_items else []
        for prefix in prefixes:
            raws += self._key_query(pk, "begins_with({sk}, {0})", prefix)
        items = [_from_raw(r, _NODE_COLUMNS) for r in raws]
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
            if event_id > _EVENT_MAX:
                raise ValueError(f"history event id {event_id} is over {_EVENT_MAX}")
            stored = self._offload(f"events/{execution_id}/{event_id}", body)
            key = _key(f"EXEC#{execution_id}", f"EVENT#{event_id:0{_EVENT_DIGITS}d}")
            raw = _to_raw(key, {"id": event_id, "body": stored, **self._ttl()})
            inserted += self._put_if_absent("append event", raw)
        return inserted

    def _get_events(self, execution_id: str, after_id: int, limit: int | None) -> list[str]:
        if after_id >= _EVENT_MAX:
            return []
        low = f"EVENT#{after_id + 1:0{_EVENT_DIGITS}d}"
        events = self._key_query(
            f"EXEC#{execution_id}", "{sk} BETWEEN {0} AND {1}", low, f"EVENT#{_EVENT_MAX}"
        )
        bodies: list[str] = []
        for raw in events:
            if limit is not None and len(bodies) >= limit:
                break
            bodies.append(self._load(raw["body"]["S"]))
        return bodies

    # -- cache ---------------------------------------------------------------------------

    def _cache_raw(self, item: Item) -> dict[str, Any]:
        ttl = {}
        if item["expires_at"] is not None:  # DynamoDB TTL wants epoch *seconds*
            ttl[TTL_ATTRIBUTE] = math.ceil(item["expires_at"] / 1_000_000)
        return _to_raw(_cache_key(item["key"]), {**item, **ttl})

    def _get_cache(self, key: str) -> Item | None:
        raw = self._get("get cache entry", _cache_key(key))
        if raw is None:
            return None
        item = _from_raw(raw, _CACHE_COLUMNS)
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
        self._call(
            "put cache entry", "put_item", TableName=self.table_name, Item=self._cache_raw(item)
        )


def _name_key(name: str, workflow: str) -> dict[str, Any]:
    # PK by name, SK by workflow: one GetItem checks (workflow, name) uniqueness, and one
    # Query finds a name across workflows -- both strongly consistent, no GSI needed.
    return _key(f"NAME#{name}", f"WF#{workflow}")


def _start_key(cursor: Any, index: str, key_attrs: Sequence[str]) -> dict[str, Any]:
    """The ExclusiveStartKey in a cursor; InvalidPaginationToken unless it is one for
    ``index`` (the token's MAC already vouches for it; this guards key-format changes)."""
    key = cursor.get("key") if isinstance(cursor, dict) else None
    if (
        not isinstance(key, dict)
        or cursor.get("index") != index
        or sorted(key) != sorted(key_attrs)
        or not all(isinstance(v, str) and v for v in key.values())
    ):
        raise InvalidPaginationToken("next_token does not hold a DynamoDB position")
    return {a: {"S": v} for a, v in key.items()}

"""DynamoDB items of the store: attribute values, keys, column lists, expressions, and the
listing's index choice and cursors (``docs/dynamodb.md`` documents every item type).

Pure (no boto3, no calls): ``DynamoDbStore`` (``dynamodb.py``) sends what these build.
The store's flat items hold only ``str``/``int``/``bool``/``None``, mapped by hand onto
the low-level client's attribute values; ``None`` is stored as *absent*, so items stay
small and the GSIs stay sparse.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
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
)
from stepdag.core.errors import StoreError
from stepdag.runtime.errors import InvalidPaginationToken
from stepdag.runtime.records import (
    CacheEntry,
    ExecutionRecord,
    Item,
    NodeRecord,
    cache_to_item,
    execution_to_item,
    node_to_item,
)

# -- item codec ----------------------------------------------------------------------------

_T: Final = datetime(2000, 1, 1, tzinfo=UTC)
# Column lists derived from records.py so they can never drift from the stored form.
EXECUTION_COLUMNS: Final = tuple(
    execution_to_item(
        ExecutionRecord(execution_id="x", name="x", workflow="x", started_at=_T),
        input=None,
        output=None,
    )
)
NODE_COLUMNS: Final = tuple(node_to_item(NodeRecord(execution_id="x", node="x"), output=None))
LEASE_COLUMNS: Final = ("execution_id", "owner", "expires_at")
CACHE_COLUMNS: Final = tuple(cache_to_item(CacheEntry(key="x", output=0, created_at=_T), output=""))
# Events are sorted by a zero-padded id in the sort key; 12 digits is far beyond Step
# Functions' 25,000-event history limit.
EVENT_DIGITS: Final = 12
EVENT_MAX: Final = 10**EVENT_DIGITS - 1
# started_at is epoch microseconds and may be negative (before 1970); shifting by 10**17
# makes every datetime from year 1 to 9999 a non-negative 18-digit number, so the
# zero-padded string sorts like the number.
_TIME_OFFSET: Final = 10**17


def to_av(value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__} in an item")


def from_av(av: dict[str, Any]) -> Any:
    ((tag, raw),) = av.items()
    if tag in ("S", "BOOL"):
        return raw
    if tag == "N":
        return int(raw)
    if tag == "NULL":
        return None
    raise StoreError(f"unexpected DynamoDB attribute type {tag!r}")


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {PK: {"S": pk}, SK: {"S": sk}}


def to_raw(key: dict[str, Any], item: Item) -> dict[str, Any]:
    return {**key, **{col: to_av(v) for col, v in item.items() if v is not None}}


def from_raw(raw: dict[str, Any], columns: Sequence[str]) -> Item:
    return {col: from_av(raw[col]) if col in raw else None for col in columns}


def exec_key(execution_id: str) -> dict[str, Any]:
    return item_key(f"EXEC#{execution_id}", "META")


def node_key(execution_id: str, node: str, map_index: int | None) -> dict[str, Any]:
    # A node's own item and its Map items use different prefixes so that listing the
    # nodes of an execution never reads its (possibly thousands of) Map items.
    sk = f"NODE#{node}" if map_index is None else f"ITEM#{node}#{map_index:010d}"
    return item_key(f"EXEC#{execution_id}", sk)


def lease_key(execution_id: str) -> dict[str, Any]:
    return item_key(f"EXEC#{execution_id}", "LEASE")


def cache_key(key: str) -> dict[str, Any]:
    return item_key(f"CACHE#{key}", "CACHE")


def started_key(started_at: int, execution_id: str) -> str:
    return f"{started_at + _TIME_OFFSET:019d}#{execution_id}"


class Expr:
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
        self.values[placeholder] = to_av(value)
        return placeholder

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        """``kwargs`` plus the placeholders they use."""
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        return {**kwargs, "ExpressionAttributeNames": self.names}


def name_key(name: str, workflow: str) -> dict[str, Any]:
    # PK by name, SK by workflow: one GetItem checks (workflow, name) uniqueness, and one
    # Query finds a name across workflows -- both strongly consistent, no GSI needed.
    return item_key(f"NAME#{name}", f"WF#{workflow}")


def event_key(execution_id: str, event_id: int) -> dict[str, Any]:
    return item_key(f"EXEC#{execution_id}", f"EVENT#{event_id:0{EVENT_DIGITS}d}")


def execution_raw(item: Item, ttl: Item) -> dict[str, Any]:
    """An execution item with its GSI attributes (``ttl``: the TTL attribute, or empty)."""
    extra: Item = {
        INDEXES[INDEX_ALL]: ALL_EXECUTIONS,
        INDEXES[INDEX_WORKFLOW]: f"WF#{item['workflow']}",
        INDEXES[INDEX_STATUS]: f"STATUS#{item['status']}",
        STARTED_KEY: started_key(item["started_at"], item["execution_id"]),
    }
    if item["tenant"] is not None:  # sparse: untenanted executions stay out of it
        extra[INDEXES[INDEX_TENANT]] = f"TENANT#{item['tenant']}"
    return to_raw(exec_key(item["execution_id"]), {**item, **extra, **ttl})


def cache_raw(item: Item) -> dict[str, Any]:
    """A cache entry item; it expires by its own ``expires_at``, not by the retention."""
    ttl = {}
    if item["expires_at"] is not None:  # DynamoDB TTL wants epoch *seconds*
        ttl[TTL_ATTRIBUTE] = math.ceil(item["expires_at"] / 1_000_000)
    return to_raw(cache_key(item["key"]), {**item, **ttl})


Refusal = list[tuple[str, dict[str, Any] | None]]
"""Why a conditional write did not commit: per operation of the request, its reason code
(``ConditionalCheckFailed``, ``TransactionConflict`` or ``None`` = not the culprit) and,
for a failed condition, the item as it is (``ReturnValuesOnConditionCheckFailure``)."""
_REFUSALS: Final = frozenset({"ConditionalCheckFailed", "TransactionConflict", "None"})


def refusal(code: str | None, response: Any) -> Refusal | None:
    """The refusal in a failed write's error (``code``, its ``response``), or None when
    the failure is not a refusal (throttling, validation...)."""
    if code in ("ConditionalCheckFailedException", "TransactionConflictException"):
        old = response.get("Item") if isinstance(response, dict) else None
        return [(code.removesuffix("Exception"), old)]
    reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
    if reasons and all(r.get("Code") in _REFUSALS for r in reasons):
        return [(r["Code"], r.get("Item")) for r in reasons]
    return None


# -- listing: which index serves a filter, and the page cursor -----------------------------


def listing_query(
    *, workflow: str | None, status: str | None, tenant: str | None
) -> tuple[str, dict[str, Any], bool]:
    """(index, Query keyword arguments, filtered) for executions newest first.  The first
    filter given picks the index; the others become a FilterExpression (``filtered``)."""
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
    expr = Expr()
    query: dict[str, Any] = {
        "IndexName": index,
        "KeyConditionExpression": f"{expr.n(INDEXES[index])} = {expr.v(partition)}",
        "ScanIndexForward": False,  # newest first
    }
    if given:
        query["FilterExpression"] = " AND ".join(
            f"{expr.n(column)} = {expr.v(value)}" for column, value, _, _ in given
        )
    return index, expr(**query), bool(given)


def index_key_attributes(index: str) -> tuple[str, ...]:
    """The attributes of a LastEvaluatedKey on ``index``: table key plus index key."""
    return (PK, SK, INDEXES[index], STARTED_KEY)


def cursor_after(raw: dict[str, Any], index: str) -> dict[str, Any]:
    """The cursor of the page ending at ``raw``: the LastEvaluatedKey DynamoDB would
    return after it -- built from the item, since the query may have read further."""
    return {"index": index, "key": {a: raw[a]["S"] for a in index_key_attributes(index)}}


def start_key(cursor: Any, index: str) -> dict[str, Any]:
    """The ExclusiveStartKey in a cursor; InvalidPaginationToken unless it is one for
    ``index`` (the token's MAC already vouches for it; this guards key-format changes)."""
    key_attrs = index_key_attributes(index)
    key = cursor.get("key") if isinstance(cursor, dict) else None
    if (
        not isinstance(key, dict)
        or cursor.get("index") != index
        or sorted(key) != sorted(key_attrs)
        or not all(isinstance(v, str) and v for v in key.values())
    ):
        raise InvalidPaginationToken("next_token does not hold a DynamoDB position")
    return {a: {"S": v} for a, v in key.items()}

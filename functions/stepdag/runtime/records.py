"""Immutable records kept by an :class:`~stepdag.runtime.store.ExecutionStore`.

Records are plain frozen dataclasses holding *decoded* values (JSON payloads as Python
objects, timezone-aware UTC datetimes, status enums).  Records answer their own questions
(``is_terminal``, ``has_output``, ``is_expired``, ``claim_blocker``) so every backend and
the engine apply exactly the same rules.

The end of the module defines their *stored form*, the backend-neutral ``Item``: a flat
dict of column -> ``str | int | bool | None`` (datetimes as integer epoch microseconds,
enums as values, JSON payloads as the text -- or offload reference -- the store made).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeAlias, TypeVar

from stepdag.core.status import NodeStatus, RunStatus

T = TypeVar("T")

# Attempts are numbered redrive * stride + retry: a redrive resets Step Functions'
# RetryCount, and a failed attempt must not block the redriven one (retries <= 103).
REDRIVE_STRIDE: Final = 1000


def require_aware(value: datetime | None, what: str) -> None:
    """Reject naive datetimes: a naive value compared with an aware one raises late and far away."""
    if value is not None and value.utcoffset() is None:  # None for naive values
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value!r}")


def _require_index(value: int | None) -> None:
    # bool is an int subclass; True as a map index is always a bug.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"map_index must be None or an int >= 0, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionRecord:
    """One workflow execution.  ``name`` is unique within ``workflow`` (idempotent starts)."""

    execution_id: str
    name: str
    workflow: str
    started_at: datetime
    status: RunStatus = RunStatus.RUNNING
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    ended_at: datetime | None = None
    redrive_count: int = 0
    rerun_of: str | None = None
    """Execution this one re-runs (rerun-from-node), if any."""
    rerun_from: str | None = None
    """Node the rerun started from; upstream outputs were copied from ``rerun_of``."""
    tenant: str | None = None
    definition_sha: str | None = None

    def __post_init__(self) -> None:
        for attr in ("execution_id", "name", "workflow"):
            if not getattr(self, attr):
                raise ValueError(f"ExecutionRecord.{attr} must be a non-empty string")
        require_aware(self.started_at, "started_at")
        require_aware(self.ended_at, "ended_at")
        if self.redrive_count < 0:
            raise ValueError("redrive_count must be >= 0")

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def has_output(self) -> bool:
        return self.status is RunStatus.SUCCEEDED


@dataclass(frozen=True, slots=True)
class NodeKey:
    """Addresses a node run: the node as a whole (``map_index=None``) or one Map item."""

    execution_id: str
    node: str
    map_index: int | None = None

    def __post_init__(self) -> None:
        if not self.execution_id or not self.node:
            raise ValueError("NodeKey needs a non-empty execution_id and node")
        _require_index(self.map_index)

    @property
    def is_item(self) -> bool:
        return self.map_index is not None

    def item(self, index: int) -> NodeKey:
        """The key of one Map item of this node."""
        return NodeKey(self.execution_id, self.node, index)

    def __str__(self) -> str:
        suffix = "" if self.map_index is None else f"[{self.map_index}]"
        return f"{self.execution_id}/{self.node}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """The stored state of one node run (or one Map item of it).

    ``attempt`` is the caller's attempt number of the *current* claim (Step Functions'
    retry count); ``attempts`` counts how many claims were actually acquired, i.e. how
    many times the function really started.
    """

    execution_id: str
    node: str
    map_index: int | None = None
    status: NodeStatus = NodeStatus.PENDING
    attempt: int = 0
    attempts: int = 0
    owner: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    output: Any = None
    output_bytes: int | None = None
    cache_key: str | None = None
    cache_hit: bool = False
    items: int | None = None
    """Number of Map items (on the node-as-a-whole record of a Map node)."""
    skip_reason: str | None = None
    deadline: datetime | None = None
    """When the claimed attempt's time is up (its node's ``timeout``): the attempt's fence.
    After it the attempt may no longer complete, and anyone may take the node over."""
    version: int = 0
    """Bumped on every write; lets optimistic backends do compare-and-swap."""

    def __post_init__(self) -> None:
        _require_index(self.map_index)
        require_aware(self.lease_expires_at, "lease_expires_at")
        require_aware(self.started_at, "started_at")
        require_aware(self.ended_at, "ended_at")
        require_aware(self.deadline, "deadline")

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.execution_id, self.node, self.map_index)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_completed(self) -> bool:
        """Completed nodes are never run again (SUCCEEDED or SKIPPED)."""
        return self.status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED)

    @property
    def has_output(self) -> bool:
        return self.status.has_output

    def lease_active(self, now: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now

    def past_deadline(self, now: datetime) -> bool:
        return self.deadline is not None and now >= self.deadline

    def is_held(self, now: datetime) -> bool:
        """RUNNING under a live claim: its lease unexpired, its deadline not passed."""
        return (
            self.status is NodeStatus.RUNNING
            and self.lease_active(now)
            and not self.past_deadline(now)
        )

    def claim_blocker(self, *, attempt: int, owner: str, now: datetime) -> str | None:
        """Why ``owner`` may not claim this node for ``attempt`` now, or None if it may.

        This is THE claim rule; every backend must implement exactly it (the SQLite
        backend evaluates it inside its write transaction; a DynamoDB backend may encode
        it as a ConditionExpression).  The contract suite pins it down.

        * completed (SUCCEEDED/SKIPPED): never re-run, whoever asks;
        * FAILED (or TIMED_OUT) for this same attempt: a duplicate delivery must see the
          same failure
          (a *different* attempt number may retry it, including a lower one: Step
          Functions resets retry counters on redrive);
        * RUNNING under another owner's unexpired lease, within its deadline, for the same
          or a newer attempt: someone is working on it.  A *newer* attempt takes over at
          once (Step Functions has given up on the old one, e.g. after a task timeout);
          an expired lease is taken over by anyone (the holder crashed), and so is an
          attempt past its deadline (it timed out: its result will be refused).
        * the same owner re-claiming is re-entrant (a retried claim call whose first try
          committed but whose answer was lost).
        """
        status = self.status
        if status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED):
            return f"node already {status.value}"
        if status.is_failure and self.attempt == attempt:
            return f"attempt {attempt} already {status.value}"
        if self.is_held(now) and self.owner != owner and self.attempt >= attempt:
            until = self.lease_expires_at
            return f"leased by {self.owner!r} for attempt {self.attempt} until {until}"
        return None

    def claimed(
        self,
        *,
        attempt: int,
        owner: str,
        lease_expires_at: datetime,
        now: datetime,
        deadline: datetime | None = None,
    ) -> NodeRecord:
        """This record after ``owner`` acquired it (call only when ``claim_blocker`` is None)."""
        reentrant = (
            self.status is NodeStatus.RUNNING and self.owner == owner and self.attempt == attempt
        )
        return NodeRecord(
            execution_id=self.execution_id,
            node=self.node,
            map_index=self.map_index,
            status=NodeStatus.RUNNING,
            attempt=attempt,
            attempts=self.attempts if reentrant else self.attempts + 1,
            owner=owner,
            lease_expires_at=lease_expires_at,
            started_at=self.started_at or now,
            items=self.items,
            deadline=deadline,
            version=self.version + 1,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """A cached node result, keyed by the node's cache key (hash of code + input)."""

    key: str
    output: Any
    created_at: datetime
    expires_at: datetime | None = None
    """None: never expires."""

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("CacheEntry.key must be a non-empty string")
        require_aware(self.created_at, "created_at")
        require_aware(self.expires_at, "expires_at")

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @classmethod
    def for_ttl(
        cls, key: str, output: Any, *, now: datetime, ttl_seconds: float | None
    ) -> CacheEntry:
        expires = None if ttl_seconds is None else now + timedelta(seconds=ttl_seconds)
        return cls(key=key, output=output, created_at=now, expires_at=expires)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Who drives an execution (runs, resumes or redrives it), until when."""

    execution_id: str
    owner: str
    expires_at: datetime

    def __post_init__(self) -> None:
        require_aware(self.expires_at, "expires_at")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_token`` back to get the next (None: last page)."""

    items: list[T] = field(default_factory=list)
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to ``claim_node``: whether the caller acquired it, and the node's record.

    When not acquired, ``record`` says why (``record.claim_blocker``) and, for a
    SUCCEEDED node, carries the stored output so a duplicate delivery can return it.
    """

    acquired: bool
    record: NodeRecord


# -- stored form ---------------------------------------------------------------------------

Item: TypeAlias = dict[str, Any]
"""A record as stored: column name -> str | int | bool | None."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """Exact, sortable and backend-neutral (SQLite INTEGER, DynamoDB N)."""
    return (value - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def opt_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def opt_datetime(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def execution_to_item(rec: ExecutionRecord, *, input: str | None, output: str | None) -> Item:
    return {
        "execution_id": rec.execution_id,
        "name": rec.name,
        "workflow": rec.workflow,
        "status": RunStatus(rec.status).value,
        "input": input,
        "output": output,
        "error": rec.error,
        "cause": rec.cause,
        "started_at": to_micros(rec.started_at),
        "ended_at": opt_micros(rec.ended_at),
        "redrive_count": rec.redrive_count,
        "rerun_of": rec.rerun_of,
        "rerun_from": rec.rerun_from,
        "tenant": rec.tenant,
        "definition_sha": rec.definition_sha,
    }


def execution_from_item(item: Item, *, input: Any, output: Any) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=item["execution_id"],
        name=item["name"],
        workflow=item["workflow"],
        status=RunStatus(item["status"]),
        input=input,
        output=output,
        error=item["error"],
        cause=item["cause"],
        started_at=from_micros(item["started_at"]),
        ended_at=opt_datetime(item["ended_at"]),
        redrive_count=item["redrive_count"],
        rerun_of=item["rerun_of"],
        rerun_from=item["rerun_from"],
        tenant=item["tenant"],
        definition_sha=item["definition_sha"],
    )


def node_to_item(rec: NodeRecord, *, output: str | None) -> Item:
    return {
        "execution_id": rec.execution_id,
        "node": rec.node,
        "map_index": rec.map_index,
        "status": rec.status.value,
        "attempt": rec.attempt,
        "attempts": rec.attempts,
        "owner": rec.owner,
        "lease_expires_at": opt_micros(rec.lease_expires_at),
        "started_at": opt_micros(rec.started_at),
        "ended_at": opt_micros(rec.ended_at),
        "error": rec.error,
        "cause": rec.cause,
        "output": output,
        "output_bytes": rec.output_bytes,
        "cache_key": rec.cache_key,
        "cache_hit": rec.cache_hit,
        "items": rec.items,
        "skip_reason": rec.skip_reason,
        "deadline": opt_micros(rec.deadline),
        "version": rec.version,
    }


def node_from_item(item: Item, *, output: Any) -> NodeRecord:
    return NodeRecord(
        execution_id=item["execution_id"],
        node=item["node"],
        map_index=item["map_index"],
        status=NodeStatus(item["status"]),
        attempt=item["attempt"],
        attempts=item["attempts"],
        owner=item["owner"],
        lease_expires_at=opt_datetime(item["lease_expires_at"]),
        started_at=opt_datetime(item["started_at"]),
        ended_at=opt_datetime(item["ended_at"]),
        error=item["error"],
        cause=item["cause"],
        output=output,
        output_bytes=item["output_bytes"],
        cache_key=item["cache_key"],
        cache_hit=bool(item["cache_hit"]),
        items=item["items"],
        skip_reason=item["skip_reason"],
        deadline=opt_datetime(item["deadline"]),
        version=item["version"],
    )


def lease_to_item(lease: Lease) -> Item:
    return {
        "execution_id": lease.execution_id,
        "owner": lease.owner,
        "expires_at": to_micros(lease.expires_at),
    }


def lease_from_item(item: Item) -> Lease:
    return Lease(
        execution_id=item["execution_id"],
        owner=item["owner"],
        expires_at=from_micros(item["expires_at"]),
    )


def cache_to_item(entry: CacheEntry, *, output: str) -> Item:
    return {
        "key": entry.key,
        "output": output,
        "created_at": to_micros(entry.created_at),
        "expires_at": opt_micros(entry.expires_at),
    }


def cache_from_item(item: Item, *, output: Any) -> CacheEntry:
    return CacheEntry(
        key=item["key"],
        output=output,
        created_at=from_micros(item["created_at"]),
        expires_at=opt_datetime(item["expires_at"]),
    )


# Pagination tokens: urlsafe-base64(MAC || JSON{v, c: cursor, s: scope}).  ``scope`` (the
# listing's filters) is bound in, so a token replayed against another listing is rejected
# rather than silently misread.  The MAC makes tokens tamper-evident; with a secret key
# they are also unforgeable (they only ever carry a position in data the caller may list).
_TOKEN_VERSION: Final = 1
_MAC_BYTES: Final = 12


def make_page_token(cursor: Any, scope: list[str | None], key: bytes) -> str:
    raw = json.dumps({"v": _TOKEN_VERSION, "c": cursor, "s": scope}, separators=(",", ":"))
    mac = hmac.new(key, raw.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(mac + raw.encode()).decode().rstrip("=")


def read_page_token(token: str, scope: list[str | None], key: bytes) -> Any:
    """The cursor inside ``token``; ValueError if it is malformed, forged or foreign."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise ValueError("not a token")
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    mac, raw = data[:_MAC_BYTES], data[_MAC_BYTES:]
    expected = hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise ValueError("corrupted or forged")
    body = json.loads(raw)  # cannot fail: we produced these bytes (the MAC matched)
    if not isinstance(body, dict) or body.get("v") != _TOKEN_VERSION:
        raise ValueError("unsupported token version")
    if body.get("s") != scope:
        raise ValueError("it belongs to a listing with other filters")
    return body.get("c")

"""The execution store: where execution, node, history and cache state lives.

Only small pointers travel through the state machine; everything a node produces is
kept here, which is what makes redrive, rerun-from-node and replay possible.

Shape (after powertools' idempotency ``BasePersistenceLayer``): :class:`ExecutionStore`
is a template.  Its public methods hold all the logic -- argument validation, timestamps,
the claim/complete rules, dedup, compare-and-swap on (status, redrive count) -- and talk
to the backend only through the ``_``-prefixed hooks of its base,
:class:`~stepdag.runtime.store_backend.StoreBackend`, which move flat *items* and also
holds the codec between records and items (JSON, offloading, page tokens).  Backends
(``sqlite.py``, ``dynamodb.py``) subclass ``ExecutionStore`` and implement those hooks.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from stepdag.core.errors import (
    ConditionFailed,
    ExecutionNotFound,
)
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.errors import (
    AmbiguousExecutionRef,
    AttemptExpired,
    DuplicateExecution,
    InvalidPaginationToken,
    InvalidPayload,
    MapItemsIncomplete,
    NodeStateConflict,
    StoreUnavailable,
)
from stepdag.runtime.records import (
    CacheEntry,
    Claim,
    ExecutionRecord,
    Item,
    NodeKey,
    NodeRecord,
    Page,
    cache_from_item,
    cache_to_item,
    node_to_item,
    opt_micros,
    require_aware,
    to_micros,
)
from stepdag.runtime.store_backend import UNSET, NodeDecision, Unset, dumps
from stepdag.runtime.store_leases import LeaseHeld, LeaseRules

# Step Functions' name for a task that ran out of time; stepdag's for one nobody waits for.
TIMEOUT_ERROR: Final = "States.Timeout"
ABANDONED_ERROR: Final = "States.Abandoned"


class _PastDeadline(Exception):
    """Raised by _finish's decision when the attempt's deadline has passed."""


class _Refused(Exception):
    """Raised by a NodeDecision to abort its transaction; becomes NodeStateConflict."""

    def __init__(self, message: str, item: Item | None) -> None:
        super().__init__(message)
        self.item = item


def _check_int(value: int, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")


class ExecutionStore(LeaseRules):
    """Abstract store: the rules (execution leases in ``LeaseRules``).  Subclasses
    implement the hooks of ``StoreBackend`` and ``LeaseRules``."""

    # -- executions ----------------------------------------------------------------------

    def create_execution(self, rec: ExecutionRecord) -> ExecutionRecord:
        """Store a new execution.  Raises :class:`DuplicateExecution` if the id or the
        (workflow, name) pair exists; ``exc.existing`` is the stored record."""
        item = self._execution_item(rec)
        existing = self._insert_execution(item)
        if existing is not None:
            other = self._execution_record(existing)
            raise DuplicateExecution(
                f"execution {rec.execution_id!r} (name {rec.name!r} in workflow "
                f"{rec.workflow!r}) already exists as {other.execution_id!r}",
                existing=other,
            )
        return self._execution_record(item)

    def get_execution(
        self, ref: str, *, workflow: str | None = None, tenant: str | None = None
    ) -> ExecutionRecord:
        """By execution id, else by name (within ``workflow`` if given).

        ``tenant`` scopes the lookup: another tenant's execution is not found, with the
        same message as a missing one, and never makes a name ambiguous -- either would
        confirm that it exists.  ``None`` is unscoped (a trusted caller).
        """

        def visible(item: Item) -> bool:
            return workflow in (None, item["workflow"]) and tenant in (None, item["tenant"])

        item = self._get_execution(ref)
        if item is not None and visible(item):
            return self._execution_record(item)
        found = [i for i in self._find_executions_by_name(ref, workflow) if visible(i)]
        if not found:
            where = "" if workflow is None else f" in workflow {workflow!r}"
            raise ExecutionNotFound(f"no execution with id or name {ref!r}{where}")
        if len(found) > 1:
            workflows = sorted(str(i["workflow"]) for i in found)
            raise AmbiguousExecutionRef(
                f"execution name {ref!r} exists in several workflows {workflows}; "
                "pass the execution id or the workflow"
            )
        return self._execution_record(found[0])

    def update_execution(
        self,
        execution_id: str,
        *,
        status: RunStatus,
        expected: Collection[RunStatus] | None = None,
        output: Any | Literal[Unset.UNSET] = UNSET,
        error: str | Literal[Unset.UNSET] | None = UNSET,
        cause: str | Literal[Unset.UNSET] | None = UNSET,
        ended_at: datetime | Literal[Unset.UNSET] | None = UNSET,
        redrive_count: int | Literal[Unset.UNSET] = UNSET,
        expected_redrive_count: int | None = None,
    ) -> ExecutionRecord:
        """Set ``status`` (and the given fields) iff the current status is in ``expected``
        (and, if given, the stored ``redrive_count`` is ``expected_redrive_count``).

        ``expected=None`` updates unconditionally.  Raises ``ExecutionNotFound``, or
        ``ConditionFailed`` naming the current status when the condition does not hold.
        The redrive count makes a compare-and-swap on (status, redrive count) possible:
        a status alone cannot tell FAILED before a redrive from FAILED after it.
        """
        changes: Item = {"status": RunStatus(status).value}
        if output is not UNSET:
            changes["output"] = self._encode_opt(f"executions/{execution_id}/output", output)
        if error is not UNSET:
            changes["error"] = error
        if cause is not UNSET:
            changes["cause"] = cause
        if ended_at is not UNSET:
            require_aware(ended_at, "ended_at")
            changes["ended_at"] = opt_micros(ended_at)
        if redrive_count is not UNSET:
            _check_int(redrive_count, "redrive_count", 0)
            changes["redrive_count"] = redrive_count
        allowed = None
        if expected is not None:
            allowed = frozenset(RunStatus(s).value for s in expected)
            if not allowed:
                raise ValueError("expected must name at least one status (or be None)")
        if expected_redrive_count is not None:
            _check_int(expected_redrive_count, "expected_redrive_count", 0)
        updated, current = self._update_execution(
            execution_id, changes, allowed, redrive_count=expected_redrive_count
        )
        if updated is not None:
            return self._execution_record(updated)
        if current is None:
            raise ExecutionNotFound(f"no execution with id {execution_id!r}")
        raise ConditionFailed(
            f"execution {execution_id!r} is {current['status']} (redrive "
            f"{current['redrive_count']}), expected one of {sorted(allowed or ())}"
            + ("" if expected_redrive_count is None else f" at redrive {expected_redrive_count}")
            + f"; not set to {changes['status']}"
        )

    def list_executions(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | None = None,
        tenant: str | None = None,
        limit: int = 50,
        next_token: str | None = None,
    ) -> Page[ExecutionRecord]:
        """Newest first (by ``started_at``, then id).  ``next_token`` is opaque and only
        valid with the same filters; a corrupted or foreign token raises
        :class:`InvalidPaginationToken`."""
        _check_int(limit, "limit", 1)
        if limit > 1000:
            raise ValueError(f"limit must be <= 1000, got {limit}")
        status_value = None if status is None else RunStatus(status).value
        scope = [workflow, status_value, tenant]
        cursor = None if next_token is None else self._read_token(next_token, scope)
        items, next_cursor = self._query_executions(
            workflow=workflow, status=status_value, tenant=tenant, limit=limit, cursor=cursor
        )
        token = None if next_cursor is None else self._page_token(next_cursor, scope)
        return Page([self._execution_record(i) for i in items], token)

    # -- node runs -----------------------------------------------------------------------

    def claim_node(
        self,
        key: NodeKey,
        *,
        attempt: int,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
        deadline_seconds: float | None = None,
    ) -> Claim:
        """Try to become the one runner of ``key`` for ``attempt`` (rule:
        :meth:`NodeRecord.claim_blocker`).  Atomic: of N concurrent claimers at most one
        acquires.  A SUCCEEDED node comes back not acquired, with its output.

        ``owner`` must name one invocation (e.g. a uuid per call), not a process: the
        same owner re-claiming is treated as a retry of the same claim and re-enters.

        ``deadline_seconds`` (the node's timeout) fences the attempt: from then on its
        completion is refused -- the node becomes TIMED_OUT instead -- and another attempt
        may take the node over at once, whatever the lease says."""
        _check_int(attempt, "attempt", 0)
        if not owner:
            raise ValueError("owner must be a non-empty string")
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        if deadline_seconds is not None and not deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be > 0, got {deadline_seconds!r}")
        at = self._now(now)
        lease_until = at + timedelta(seconds=lease_seconds)
        deadline = None if deadline_seconds is None else at + timedelta(seconds=deadline_seconds)
        decided: list[NodeRecord] = []

        def decide(cur: Item | None) -> Item | None:
            current = self._node_record(cur, load=False) if cur else self._blank(key)
            if current.claim_blocker(attempt=attempt, owner=owner, now=at) is not None:
                return None
            claimed = current.claimed(
                attempt=attempt,
                owner=owner,
                lease_expires_at=lease_until,
                now=at,
                deadline=deadline,
            )
            decided.append(claimed)
            return node_to_item(claimed, output=None)

        written, item = self._transact_node(key, decide)
        if written:  # the last decision is the one that was written (decide may rerun)
            return Claim(acquired=True, record=decided[-1])
        assert item is not None  # a refusal implies an existing record
        return Claim(acquired=False, record=self._node_record(item))

    def complete_node(
        self,
        key: NodeKey,
        *,
        owner: str,
        output: Any,
        now: datetime | None = None,
        cache: CacheEntry | None = None,
        cache_hit: bool = False,
        late_cause: str = "",
    ) -> NodeRecord:
        """Store ``output`` and mark SUCCEEDED -- plus ``cache`` -- in one transaction.

        Conditional on ``owner`` still holding the claim (status RUNNING, same owner); an
        expired lease nobody took over still counts as held.  Otherwise raises
        :class:`NodeStateConflict` (a ``ConditionFailed``) with the current record.
        Past the claim's deadline the attempt is fenced: nothing is stored, the node is
        recorded TIMED_OUT (``late_cause`` says how) and :class:`AttemptExpired` raised.
        ``cache_hit=True`` says ``output`` came from ``cache``: the node records the hit
        and the entry is not rewritten.
        """
        at = self._now(now)
        blob = dumps(output, f"output of node {key}")
        ref = self._offload(self._node_location(key), blob)
        cache_item = None
        if cache is not None and not cache_hit:
            # Serialise once when the caller caches exactly what it returns (the usual case).
            cblob = blob if cache.output is output else dumps(cache.output, "cache entry")
            cache_item = cache_to_item(cache, output=self._offload(f"cache/{cache.key}", cblob))

        changes = {
            "status": NodeStatus.SUCCEEDED.value,
            "ended_at": to_micros(at),
            "output": ref,
            "output_bytes": len(blob),
            "cache_key": None if cache is None else cache.key,
            "cache_hit": cache_hit and cache is not None,
        }
        item = self._finish(key, owner, "complete", changes, cache_item, at=at, late=late_cause)
        # Decode our own blob rather than _load(ref): same value, no backend round trip.
        return self._node_record(item, output=json.loads(blob))

    def fail_node(
        self,
        key: NodeKey,
        *,
        owner: str,
        error: str,
        cause: str,
        now: datetime | None = None,
        late_cause: str = "",
    ) -> NodeRecord:
        """Mark FAILED for the claimed attempt; same conditions (ownership, deadline) as
        complete_node."""
        at = self._now(now)
        changes = {
            "status": NodeStatus.FAILED.value,
            "ended_at": to_micros(at),
            "error": error,
            "cause": cause,
        }
        item = self._finish(key, owner, "fail", changes, at=at, late=late_cause)
        return self._node_record(item, output=None)

    def abandon_node(
        self,
        key: NodeKey,
        *,
        attempt: int,
        timed_out: bool,
        cause: str,
        now: datetime | None = None,
    ) -> NodeRecord | None:
        """End ``attempt`` of ``key`` if it is still RUNNING: the orchestrator gave up on
        it (its Task timed out, or the execution ended without it).  TIMED_OUT when
        ``timed_out``, else FAILED (``States.Abandoned``); the attempt's own completion is
        refused from then on.  Returns the new record, or None when the attempt had
        already ended (or a newer one holds the node): nothing is written then."""
        at = self._now(now)

        def decide(cur: Item | None) -> Item | None:
            if cur is None or cur["status"] != NodeStatus.RUNNING.value:
                return None
            if cur["attempt"] != attempt:
                return None
            if not timed_out:
                return _ended(cur, NodeStatus.FAILED, ABANDONED_ERROR, cause, to_micros(at))
            ended = min(to_micros(at), cur["deadline"] or to_micros(at))
            return _ended(cur, NodeStatus.TIMED_OUT, TIMEOUT_ERROR, cause, ended)

        written, item = self._transact_node(key, decide)
        return self._node_record(item, output=None) if written and item is not None else None

    def skip_node(self, key: NodeKey, *, reason: str, now: datetime | None = None) -> NodeRecord:
        """Mark SKIPPED a node that has not started (idempotent if already skipped)."""
        at = self._now(now)

        def decide(cur: Item | None) -> Item | None:
            current = self._node_record(cur, load=False) if cur else self._blank(key)
            if current.status is NodeStatus.SKIPPED:
                return None
            if current.status is not NodeStatus.PENDING:
                raise _Refused(f"cannot skip node {key}: it is {current.status.value}", cur)
            skipped = replace(
                current,
                status=NodeStatus.SKIPPED,
                skip_reason=reason,
                ended_at=at,
                version=current.version + 1,
            )
            return node_to_item(skipped, output=None)

        _, item = self._transact_nodes_refusing(key, decide)
        return self._node_record(item, output=None)

    def set_items(self, key: NodeKey, count: int, *, now: datetime | None = None) -> NodeRecord:
        """Record how many items a Map node has (creates the node record if needed).

        ``now`` (when the items are planned) becomes the node's ``started_at`` unless it
        has one: the node's own claim comes only at gather, after every item, so without
        it a Map node's duration would be the gather's milliseconds.
        """
        if key.map_index is not None:
            raise ValueError(f"set_items takes the Map node's own key, not item {key}")
        _check_int(count, "count", 0)
        require_aware(now, "now")
        started = None if now is None else to_micros(now)

        def decide(cur: Item | None) -> Item | None:
            if cur is None:
                blank = replace(self._blank(key), items=count, started_at=now, version=1)
                return node_to_item(blank, output=None)
            completed = cur["status"] in (NodeStatus.SUCCEEDED.value, NodeStatus.SKIPPED.value)
            unstarted = started is not None and cur["started_at"] is None and not completed
            if cur["items"] == count and not unstarted:
                return None
            if completed:
                raise _Refused(f"node {key} is completed with {cur['items']} items", cur)
            changed = {**cur, "items": count, "version": cur["version"] + 1}
            if unstarted:
                changed["started_at"] = started
            return changed

        _, item = self._transact_nodes_refusing(key, decide)
        return self._node_record(item)

    def get_node(self, key: NodeKey) -> NodeRecord | None:
        item = self._get_node(key)
        return None if item is None else self._node_record(item)

    def list_nodes(self, execution_id: str, *, include_items: bool = False) -> list[NodeRecord]:
        """Ordered by node name, the node's own record before its items (by index)."""
        items = self._query_nodes(execution_id, nodes=None, include_items=include_items)
        return [self._node_record(i) for i in items]

    def get_item_outputs(self, execution_id: str, node: str) -> list[Any]:
        """Outputs of a Map node's items, by index.  Every item in ``range(count)`` must
        have succeeded (count: ``set_items``, else the highest index + 1), otherwise
        :class:`MapItemsIncomplete` -- a short list would silently misalign results."""
        rows = self._query_nodes(execution_id, nodes=[node], include_items=True)
        count = None
        by_index: dict[int, Item] = {}
        for row in rows:
            if row["map_index"] is None:
                count = row["items"]
            else:
                by_index[row["map_index"]] = row
        if count is None:
            count = max(by_index, default=-1) + 1
        missing = [
            i
            for i in range(count)
            if i not in by_index or by_index[i]["status"] != NodeStatus.SUCCEEDED.value
        ]
        if missing:
            raise MapItemsIncomplete(
                f"map node {node!r} of {execution_id!r}: {len(missing)} of {count} items "
                f"have no output (first: {missing[0]})",
                missing,
            )
        return [self._decode(by_index[i]["output"]) for i in range(count)]

    def copy_nodes(
        self, from_execution: str, to_execution: str, nodes: Collection[str]
    ) -> list[str]:
        """Copy completed (SUCCEEDED/SKIPPED) nodes, with their Map items, into another
        execution so a rerun-from-node reuses them.  Nodes already present in the target
        are left alone (so a retried rerun is safe).  Returns the node names copied from
        the source, sorted; a requested node missing from it was not completed there."""
        if from_execution == to_execution:
            raise ValueError("copy_nodes needs two different executions")
        if not nodes:
            return []
        rows = self._query_nodes(from_execution, nodes=list(nodes), include_items=True)
        done = {NodeStatus.SUCCEEDED.value, NodeStatus.SKIPPED.value}
        completed = {r["node"] for r in rows if r["map_index"] is None and r["status"] in done}
        # Map items follow their node; stored output refs are shared, not re-uploaded.
        copies = [
            {**r, "execution_id": to_execution}
            for r in rows
            if r["node"] in completed and r["status"] in done
        ]
        self._insert_nodes_if_absent(copies)
        return sorted(completed)

    # -- history -------------------------------------------------------------------------

    def append_events(self, execution_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        """Append AWS-shaped history events (each with an int ``id`` >= 1).  An id already
        stored is skipped, so a resumed run may re-append.  Returns how many were new."""
        rows: list[tuple[int, str]] = []
        for event in events:
            event_id = event.get("id")
            if isinstance(event_id, bool) or not isinstance(event_id, int) or event_id < 1:
                raise ValueError(f"history event needs an int id >= 1, got {event_id!r}")
            rows.append((event_id, dumps(dict(event), f"history event {event_id}")))
        return self._append_events(execution_id, rows) if rows else 0

    def get_events(
        self, execution_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Events with id > ``after_id``, by id."""
        _check_int(after_id, "after_id", 0)
        if limit is not None:
            _check_int(limit, "limit", 1)
        return [json.loads(b) for b in self._get_events(execution_id, after_id, limit)]

    # -- result cache --------------------------------------------------------------------

    def cache_get(self, key: str, *, now: datetime | None = None) -> CacheEntry | None:
        """The entry, or None when absent or expired at ``now``."""
        at = self._now(now)
        item = self._get_cache(key)
        if item is None:
            return None
        entry = cache_from_item(item, output=None)
        if entry.is_expired(at):
            return None  # checked before decoding: an expired 1 MB output is never loaded
        return replace(entry, output=self._decode(item["output"]))

    def cache_put(self, entry: CacheEntry) -> None:
        blob = dumps(entry.output, "cache entry")
        self._put_cache(cache_to_item(entry, output=self._offload(f"cache/{entry.key}", blob)))

    # -- the node rules' transactions ----------------------------------------------------

    def _transact_nodes_refusing(
        self, key: NodeKey, decide: NodeDecision, cache_item: Item | None = None
    ) -> tuple[bool, Item]:
        try:
            written, item = self._transact_node(key, decide, cache_item)
        except _Refused as refused:
            # Decoded here, after the transaction: never hold a write lock while loading.
            current = None if refused.item is None else self._node_record(refused.item)
            raise NodeStateConflict(str(refused), current) from None
        assert item is not None  # every decision either writes or refuses on a present item
        return written, item

    def _finish(
        self,
        key: NodeKey,
        owner: str,
        verb: str,
        changes: Item,
        cache_item: Item | None = None,
        *,
        at: datetime,
        late: str,
    ) -> Item:
        """Apply ``changes`` (ending the run: lease released) iff the node is RUNNING under
        ``owner``'s claim, within its deadline.  Past the deadline the node is recorded
        TIMED_OUT instead and :class:`AttemptExpired` raised.  Works on the item directly:
        this is half of every node run."""
        when = to_micros(at)
        fenced = False  # past the deadline: record TIMED_OUT, and write no cache entry

        def decide(cur: Item | None) -> Item | None:
            if cur is None:
                raise _Refused(f"cannot {verb} node {key}: it was never claimed", None)
            if cur["status"] != NodeStatus.RUNNING.value:
                raise _Refused(f"cannot {verb} node {key}: it is {cur['status']}", cur)
            if cur["owner"] != owner:
                holder = cur["owner"]
                raise _Refused(f"cannot {verb} node {key}: claim held by {holder!r}", cur)
            deadline = cur["deadline"]
            if deadline is not None and when >= deadline:
                if not fenced:
                    raise _PastDeadline
                cause = late or f"attempt {cur['attempt']} ran past its deadline"
                return _ended(cur, NodeStatus.TIMED_OUT, TIMEOUT_ERROR, cause, deadline)
            return {**cur, **changes, "lease_expires_at": None, "version": cur["version"] + 1}

        try:
            return self._transact_nodes_refusing(key, decide, cache_item)[1]
        except _PastDeadline:
            fenced = True
        item = self._transact_nodes_refusing(key, decide)[1]
        if item["status"] == NodeStatus.TIMED_OUT.value:
            raise AttemptExpired(
                f"cannot {verb} node {key}: attempt {item['attempt']} is past its deadline; "
                "recorded TIMED_OUT",
                self._node_record(item, output=None),
            )
        return item


def _ended(cur: Item, status: NodeStatus, error: str, cause: str, ended_at: int) -> Item:
    """``cur`` (RUNNING) ended by the store rather than by its attempt: no output."""
    return {
        **cur,
        "status": status.value,
        "ended_at": ended_at,
        "error": error,
        "cause": cause,
        "lease_expires_at": None,
        "version": cur["version"] + 1,
    }


# The store's errors live in runtime/errors.py and are re-exported from here, as are the
# names a backend needs from store_backend.py.
__all__ = [
    "UNSET",
    "AmbiguousExecutionRef",
    "AttemptExpired",
    "DuplicateExecution",
    "ExecutionStore",
    "InvalidPaginationToken",
    "InvalidPayload",
    "LeaseHeld",
    "MapItemsIncomplete",
    "NodeDecision",
    "NodeStateConflict",
    "StoreUnavailable",
]

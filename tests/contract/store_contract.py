"""The ExecutionStore contract: every backend must pass this same suite.

Use it by subclassing with a ``store`` fixture that yields a fresh, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path): ...

Written against the public interface only (no backend hooks, no SQL), so the DynamoDB
backends (moto, DynamoDB Local) plug in unchanged.  Timestamps are always passed
explicitly: the suite never depends on the wall clock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepdag.core.errors import ConditionFailed, ExecutionAlreadyExists, ExecutionNotFound
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import CacheEntry, ExecutionRecord, NodeKey
from stepdag.runtime.store import (
    AmbiguousExecutionRef,
    AttemptExpired,
    DuplicateExecution,
    ExecutionStore,
    InvalidPaginationToken,
    InvalidPayload,
    LeaseHeld,
    MapItemsIncomplete,
    NodeStateConflict,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

# JSON values as a node may return them (finite floats; str keys -- json would turn int
# keys into strings, so they cannot round-trip and are not generated).
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
EID = "exec-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def execution(
    execution_id: str = EID, *, name: str | None = None, minute: int = 0, **kw: Any
) -> ExecutionRecord:
    kw.setdefault("workflow", "etl")
    return ExecutionRecord(
        execution_id=execution_id,
        name=name or execution_id,
        started_at=T0 + timedelta(minutes=minute),
        **kw,
    )


def run_node(
    store: ExecutionStore, key: NodeKey, output: Any, *, owner: str = "w1", now: datetime = T0
) -> None:
    """Claim and complete ``key`` with ``output``."""
    assert store.claim_node(key, attempt=0, owner=owner, lease_seconds=60, now=now).acquired
    store.complete_node(key, owner=owner, output=output, now=now)


class StoreContract:
    """Mixin holding the contract tests; subclasses provide the ``store`` fixture."""

    # -- executions ----------------------------------------------------------------------

    def test_create_then_get_by_id_and_by_name(self, store: ExecutionStore) -> None:
        rec = execution(
            name="nightly-2024-05-01",
            input={"b": [1, 2.5, None, True], "a": {"nested": "é☃"}},
            tenant="acme",
            definition_sha="abc123",
            rerun_of="exec-0",
            rerun_from="transform",
        )
        assert store.create_execution(rec) == rec
        assert store.get_execution(EID) == rec
        assert store.get_execution("nightly-2024-05-01") == rec
        assert store.get_execution("nightly-2024-05-01", workflow="etl") == rec
        got = store.get_execution(EID)
        assert got.started_at.tzinfo is not None and got.started_at == T0  # exact to the µs
        assert got.status is RunStatus.RUNNING and not got.is_terminal

    def test_get_unknown_execution_raises(self, store: ExecutionStore) -> None:
        with pytest.raises(ExecutionNotFound):
            store.get_execution("nope")
        store.create_execution(execution(name="n1"))
        with pytest.raises(ExecutionNotFound):
            store.get_execution("n1", workflow="other-workflow")

    def test_duplicate_id_raises_with_existing_record(self, store: ExecutionStore) -> None:
        first = store.create_execution(execution(name="a", input={"x": 1}))
        with pytest.raises(ExecutionAlreadyExists) as info:
            store.create_execution(execution(name="b", input={"x": 2}))
        assert isinstance(info.value, DuplicateExecution)
        assert info.value.existing == first
        assert store.get_execution(EID).name == "a"  # nothing overwritten

    def test_duplicate_name_in_same_workflow_raises(self, store: ExecutionStore) -> None:
        first = store.create_execution(execution("e1", name="daily", input=1))
        with pytest.raises(DuplicateExecution) as info:
            store.create_execution(execution("e2", name="daily", input=2))
        assert info.value.existing == first
        with pytest.raises(ExecutionNotFound):
            store.get_execution("e2")
        # The same name in another workflow is a different execution.
        store.create_execution(execution("e3", name="daily", workflow="other"))

    def test_name_shared_by_two_workflows_is_ambiguous(self, store: ExecutionStore) -> None:
        store.create_execution(execution("e1", name="daily", workflow="w1"))
        store.create_execution(execution("e2", name="daily", workflow="w2"))
        with pytest.raises(AmbiguousExecutionRef):
            store.get_execution("daily")
        assert store.get_execution("daily", workflow="w2").execution_id == "e2"
        assert store.get_execution("e1").workflow == "w1"  # ids are never ambiguous

    def test_conditional_update_applies(self, store: ExecutionStore) -> None:
        store.create_execution(execution(input={"n": 1}))
        done = store.update_execution(
            EID,
            status=RunStatus.SUCCEEDED,
            expected=[RunStatus.RUNNING],
            output={"total": 42},
            ended_at=at(5),
        )
        assert done.status is RunStatus.SUCCEEDED and done.output == {"total": 42}
        assert done.ended_at == at(5) and done.input == {"n": 1}
        assert store.get_execution(EID) == done
        assert done.is_terminal and done.has_output

    def test_conditional_update_conflict_changes_nothing(self, store: ExecutionStore) -> None:
        store.create_execution(execution())
        store.update_execution(EID, status=RunStatus.FAILED, error="E", cause="boom")
        with pytest.raises(ConditionFailed, match="FAILED"):
            store.update_execution(
                EID, status=RunStatus.SUCCEEDED, expected={RunStatus.RUNNING}, output=1
            )
        got = store.get_execution(EID)
        assert (got.status, got.output, got.error) == (RunStatus.FAILED, None, "E")

    def test_update_unknown_execution_raises(self, store: ExecutionStore) -> None:
        with pytest.raises(ExecutionNotFound):
            store.update_execution("nope", status=RunStatus.FAILED)
        with pytest.raises(ExecutionNotFound):
            store.update_execution("nope", status=RunStatus.FAILED, expected=[RunStatus.RUNNING])

    def test_update_touches_only_given_fields(self, store: ExecutionStore) -> None:
        store.create_execution(execution())
        store.update_execution(EID, status=RunStatus.FAILED, error="E", cause="c", ended_at=at(1))
        # Redrive: back to RUNNING, clear the error explicitly, keep the cause untouched.
        got = store.update_execution(
            EID,
            status=RunStatus.RUNNING,
            expected=[RunStatus.FAILED, RunStatus.TIMED_OUT],
            error=None,
            ended_at=None,
            redrive_count=1,
        )
        assert (got.error, got.cause, got.ended_at, got.redrive_count) == (None, "c", None, 1)

    def test_conditional_update_on_the_redrive_count(self, store: ExecutionStore) -> None:
        # FAILED before a redrive and FAILED after it differ only in the count.
        store.create_execution(execution())
        store.update_execution(EID, status=RunStatus.FAILED, redrive_count=1, error="E")
        with pytest.raises(ConditionFailed, match="redrive 1"):
            store.update_execution(
                EID,
                status=RunStatus.RUNNING,
                expected=[RunStatus.FAILED],
                expected_redrive_count=0,
                redrive_count=1,
            )
        assert store.get_execution(EID).status is RunStatus.FAILED
        got = store.update_execution(
            EID,
            status=RunStatus.RUNNING,
            expected=[RunStatus.FAILED],
            expected_redrive_count=1,
            redrive_count=2,
        )
        assert (got.status, got.redrive_count) == (RunStatus.RUNNING, 2)

    def test_concurrent_conditional_updates_one_winner(self, store: ExecutionStore) -> None:
        store.create_execution(execution())
        barrier = threading.Barrier(8)
        wins: list[int] = []

        def finish(i: int) -> None:
            barrier.wait()
            try:
                store.update_execution(
                    EID, status=RunStatus.SUCCEEDED, expected=[RunStatus.RUNNING], output=i
                )
                wins.append(i)
            except ConditionFailed:
                pass

        threads = [threading.Thread(target=finish, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1
        assert store.get_execution(EID).output == wins[0]

    # -- listing -------------------------------------------------------------------------

    def _seed(self, store: ExecutionStore) -> list[ExecutionRecord]:
        records = []
        for i in range(25):
            rec = execution(
                f"e{i:02d}",
                minute=i,
                workflow="etl" if i % 2 == 0 else "report",
                status=RunStatus.SUCCEEDED if i % 3 == 0 else RunStatus.RUNNING,
                tenant="acme" if i < 10 else "globex",
            )
            records.append(store.create_execution(rec))
        return records

    def test_pagination_newest_first_in_pages(self, store: ExecutionStore) -> None:
        records = self._seed(store)
        pages, token = [], None
        while True:
            page = store.list_executions(limit=10, next_token=token)
            pages.append(page.items)
            token = page.next_token
            if token is None:
                break
        assert [len(p) for p in pages] == [10, 10, 5]
        listed = [r.execution_id for p in pages for r in p]
        assert listed == [r.execution_id for r in reversed(records)]

    def test_exact_multiple_has_no_empty_last_page(self, store: ExecutionStore) -> None:
        self._seed(store)
        first = store.list_executions(limit=25)
        assert len(first.items) == 25 and first.next_token is None
        assert store.list_executions().next_token is None  # default limit 50

    def test_filters_combine_and_paginate(self, store: ExecutionStore) -> None:
        records = self._seed(store)

        def ids(**filters: Any) -> list[str]:
            out, token = [], None
            while True:
                page = store.list_executions(limit=3, next_token=token, **filters)
                out += [r.execution_id for r in page.items]
                if (token := page.next_token) is None:
                    return out

        def expect(pred: Any) -> list[str]:
            return [r.execution_id for r in reversed(records) if pred(r)]

        assert ids(workflow="etl") == expect(lambda r: r.workflow == "etl")
        assert ids(status=RunStatus.SUCCEEDED) == expect(lambda r: r.status is RunStatus.SUCCEEDED)
        assert ids(tenant="acme") == expect(lambda r: r.tenant == "acme")
        assert ids(workflow="report", status=RunStatus.RUNNING, tenant="globex") == expect(
            lambda r: (
                r.workflow == "report" and r.status is RunStatus.RUNNING and r.tenant == "globex"
            )
        )
        assert store.list_executions(workflow="nope").items == []

    def test_equal_start_times_paginate_without_gaps(self, store: ExecutionStore) -> None:
        for i in range(7):
            store.create_execution(execution(f"same-{i}"))  # all start at T0
        seen, token = [], None
        while True:
            page = store.list_executions(limit=3, next_token=token)
            seen += [r.execution_id for r in page.items]
            if (token := page.next_token) is None:
                break
        assert sorted(seen) == [f"same-{i}" for i in range(7)] and len(set(seen)) == 7

    def test_bad_pagination_tokens_are_rejected(self, store: ExecutionStore) -> None:
        self._seed(store)
        token = store.list_executions(limit=10).next_token
        assert token is not None
        tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        for bad in ["garbage", "", "!!!not base64!!!", tampered, token[:20]]:
            with pytest.raises(InvalidPaginationToken):
                store.list_executions(limit=10, next_token=bad)
        with pytest.raises(InvalidPaginationToken):  # a token is bound to its filters
            store.list_executions(limit=10, next_token=token, workflow="etl")

    # -- node claims ---------------------------------------------------------------------

    def test_first_claim_acquires(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "extract")
        claim = store.claim_node(key, attempt=0, owner="w1", lease_seconds=30, now=T0)
        assert claim.acquired
        rec = claim.record
        assert (rec.status, rec.owner, rec.attempt, rec.attempts) == (
            NodeStatus.RUNNING,
            "w1",
            0,
            1,
        )
        assert rec.started_at == T0 and rec.lease_expires_at == at(30)
        assert store.get_node(key) == rec
        assert store.get_node(NodeKey(EID, "other")) is None

    def test_completed_node_is_never_reclaimed(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "extract")
        run_node(store, key, {"rows": 3})
        for attempt, owner, when in [(0, "w1", 1), (0, "w2", 1), (5, "w3", 10_000)]:
            claim = store.claim_node(
                key, attempt=attempt, owner=owner, lease_seconds=30, now=at(when)
            )
            assert not claim.acquired
            assert claim.record.status is NodeStatus.SUCCEEDED
            assert claim.record.output == {"rows": 3}  # duplicate delivery gets the result
        assert store.get_node(key).attempts == 1  # type: ignore[union-attr]

    def test_skipped_node_is_never_reclaimed(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "branch")
        rec = store.skip_node(key, reason="choice took other branch", now=T0)
        assert rec.status is NodeStatus.SKIPPED and rec.skip_reason == "choice took other branch"
        assert store.skip_node(key, reason="again", now=at(1)) == rec  # idempotent
        claim = store.claim_node(key, attempt=1, owner="w", lease_seconds=5, now=at(2))
        assert not claim.acquired and claim.record.status is NodeStatus.SKIPPED

    def test_cannot_skip_a_started_node(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="w", lease_seconds=5, now=T0)
        with pytest.raises(NodeStateConflict) as info:
            store.skip_node(key, reason="late", now=at(1))
        assert info.value.current is not None
        assert info.value.current.status is NodeStatus.RUNNING

    def test_unexpired_lease_blocks_then_expiry_allows_takeover(
        self, store: ExecutionStore
    ) -> None:
        key = NodeKey(EID, "slow")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        busy = store.claim_node(key, attempt=0, owner="b", lease_seconds=10, now=at(9.999))
        assert not busy.acquired and busy.record.owner == "a"
        taken = store.claim_node(key, attempt=0, owner="b", lease_seconds=10, now=at(10))
        assert taken.acquired
        assert (taken.record.owner, taken.record.attempts) == ("b", 2)
        assert taken.record.started_at == T0  # set once, by the first claim
        with pytest.raises(NodeStateConflict, match="'b'"):  # the zombie lost its claim
            store.complete_node(key, owner="a", output="stale", now=at(11))
        done = store.complete_node(key, owner="b", output="fresh", now=at(12))
        assert done.output == "fresh" and done.ended_at == at(12)

    def test_expired_lease_not_taken_over_can_still_complete(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=1, now=T0)
        done = store.complete_node(key, owner="a", output=1, now=at(100))
        assert done.status is NodeStatus.SUCCEEDED

    def test_same_failed_attempt_sees_the_failure(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "flaky")
        store.claim_node(key, attempt=1, owner="a", lease_seconds=30, now=T0)
        failed = store.fail_node(key, owner="a", error="ValueError", cause="bad", now=at(1))
        assert failed.status is NodeStatus.FAILED and failed.is_terminal
        assert failed.lease_expires_at is None
        dup = store.claim_node(key, attempt=1, owner="b", lease_seconds=30, now=at(2))
        assert not dup.acquired
        assert (dup.record.error, dup.record.cause) == ("ValueError", "bad")
        retry = store.claim_node(key, attempt=2, owner="b", lease_seconds=30, now=at(3))
        assert retry.acquired
        rec = retry.record
        assert (rec.status, rec.attempt, rec.attempts, rec.error) == (
            NodeStatus.RUNNING,
            2,
            2,
            None,
        )

    def test_newer_attempt_takes_over_older_does_not(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=1, owner="a", lease_seconds=60, now=T0)
        older = store.claim_node(key, attempt=0, owner="b", lease_seconds=60, now=at(1))
        assert not older.acquired
        same = store.claim_node(key, attempt=1, owner="b", lease_seconds=60, now=at(1))
        assert not same.acquired
        newer = store.claim_node(key, attempt=2, owner="c", lease_seconds=60, now=at(2))
        assert newer.acquired and newer.record.owner == "c" and newer.record.attempt == 2

    def test_reclaim_by_same_owner_is_reentrant(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        again = store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=at(5))
        assert again.acquired
        assert again.record.attempts == 1 and again.record.lease_expires_at == at(15)

    def test_complete_and_fail_require_the_claim(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        with pytest.raises(NodeStateConflict) as never:
            store.complete_node(key, owner="a", output=1, now=T0)
        assert never.value.current is None
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        with pytest.raises(ConditionFailed):
            store.complete_node(key, owner="intruder", output=1, now=at(1))
        with pytest.raises(ConditionFailed):
            store.fail_node(key, owner="intruder", error="E", cause="c", now=at(1))
        store.complete_node(key, owner="a", output={"v": 1}, now=at(2))
        with pytest.raises(NodeStateConflict) as info:
            store.complete_node(key, owner="a", output={"v": 2}, now=at(3))
        assert info.value.current is not None
        assert info.value.current.output == {"v": 1}  # the first result stands
        with pytest.raises(NodeStateConflict):
            store.fail_node(key, owner="a", error="E", cause="c", now=at(3))
        assert store.get_node(key).output == {"v": 1}  # type: ignore[union-attr]

    # -- attempt fencing: deadlines and abandoned attempts -------------------------------

    def test_completion_past_the_deadline_is_refused_and_times_out(
        self, store: ExecutionStore
    ) -> None:
        key = NodeKey(EID, "slow")
        claim = store.claim_node(
            key, attempt=0, owner="a", lease_seconds=60, now=T0, deadline_seconds=1
        )
        assert claim.record.deadline == at(1)
        entry = CacheEntry(key="late", output="late", created_at=T0)
        with pytest.raises(AttemptExpired) as info:
            store.complete_node(
                key, owner="a", output="late", now=at(1), cache=entry, late_cause="too slow"
            )
        assert info.value.current is not None
        rec = store.get_node(key)
        assert rec is not None and rec.is_terminal and not rec.has_output
        assert (rec.status, rec.error, rec.cause) == (
            NodeStatus.TIMED_OUT,
            "States.Timeout",
            "too slow",
        )
        assert (rec.output, rec.ended_at, rec.lease_expires_at) == (None, at(1), None)
        assert store.cache_get("late", now=at(2)) is None  # a fenced result caches nothing

    def test_completion_within_the_deadline_succeeds(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "quick", 3)
        store.claim_node(key, attempt=0, owner="a", lease_seconds=60, now=T0, deadline_seconds=1)
        done = store.complete_node(key, owner="a", output=[1], now=at(0.999))
        assert (done.status, done.output) == (NodeStatus.SUCCEEDED, [1])

    def test_failure_past_the_deadline_is_a_timeout(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "slow")
        store.claim_node(key, attempt=2, owner="a", lease_seconds=60, now=T0, deadline_seconds=5)
        with pytest.raises(AttemptExpired):
            store.fail_node(key, owner="a", error="ValueError", cause="late", now=at(6))
        rec = store.get_node(key)
        assert rec is not None and (rec.status, rec.error, rec.ended_at) == (
            NodeStatus.TIMED_OUT,
            "States.Timeout",
            at(5),
        )

    def test_an_attempt_past_its_deadline_is_superseded_at_once(
        self, store: ExecutionStore
    ) -> None:
        key = NodeKey(EID, "slow")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=60, now=T0, deadline_seconds=1)
        early = store.claim_node(key, attempt=0, owner="b", lease_seconds=60, now=at(0.5))
        assert not early.acquired  # within its deadline and lease: a is working on it
        late = store.claim_node(key, attempt=0, owner="b", lease_seconds=60, now=at(1))
        assert late.acquired and late.record.deadline is None
        with pytest.raises(NodeStateConflict, match="'b'") as info:
            store.complete_node(key, owner="a", output="stale", now=at(2))
        assert not isinstance(info.value, AttemptExpired)
        assert store.complete_node(key, owner="b", output="fresh", now=at(3)).output == "fresh"

    def test_a_timed_out_attempt_answers_its_duplicates_a_retry_runs(
        self, store: ExecutionStore
    ) -> None:
        key = NodeKey(EID, "slow")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=60, now=T0, deadline_seconds=1)
        with pytest.raises(AttemptExpired):
            store.complete_node(key, owner="a", output=1, now=at(2))
        dup = store.claim_node(key, attempt=0, owner="b", lease_seconds=60, now=at(3))
        assert not dup.acquired and dup.record.status is NodeStatus.TIMED_OUT
        retry = store.claim_node(key, attempt=1, owner="c", lease_seconds=60, now=at(3))
        assert retry.acquired and (retry.record.attempts, retry.record.error) == (2, None)

    def test_abandoned_attempt_is_ended_and_its_result_refused(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "slow")
        store.claim_node(key, attempt=1, owner="a", lease_seconds=60, now=T0, deadline_seconds=9)
        other = store.abandon_node(key, attempt=0, timed_out=True, cause="x", now=at(1))
        assert other is None  # not the attempt that holds the node: nothing written
        ended = store.abandon_node(key, attempt=1, timed_out=True, cause="gone", now=at(10))
        assert ended is not None and (ended.status, ended.cause, ended.ended_at) == (
            NodeStatus.TIMED_OUT,
            "gone",
            at(9),
        )
        with pytest.raises(NodeStateConflict, match="TIMED_OUT"):
            store.complete_node(key, owner="a", output="late", now=at(11))
        assert store.abandon_node(key, attempt=1, timed_out=True, cause="y", now=at(12)) is None
        assert store.get_node(key).cause == "gone"  # type: ignore[union-attr]

    def test_abandoned_without_timeout_is_a_failure(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "cut", 0)
        store.claim_node(key, attempt=0, owner="a", lease_seconds=60, now=T0)
        ended = store.abandon_node(key, attempt=0, timed_out=False, cause="stopped", now=at(4))
        assert ended is not None and (ended.status, ended.error, ended.ended_at) == (
            NodeStatus.FAILED,
            "States.Abandoned",
            at(4),
        )
        assert (
            store.abandon_node(NodeKey(EID, "never"), attempt=0, timed_out=False, cause="") is None
        )

    # -- execution leases: one driver per execution -------------------------------------

    def test_lease_refusal_names_the_holder_and_changes_nothing(
        self, store: ExecutionStore
    ) -> None:
        store.acquire_lease(EID, owner="a", seconds=30, now=T0)
        with pytest.raises(LeaseHeld, match="driven by a") as info:
            store.acquire_lease(EID, owner="b", seconds=30, now=at(29.999))
        assert info.value.http_status == 409 and info.value.lease.expires_at == at(30)
        assert store.get_lease(EID) == info.value.lease
        taken = store.acquire_lease(EID, owner="b", seconds=30, now=at(30))  # expired
        assert (taken.owner, store.get_lease(EID)) == ("b", taken)

    def test_the_holder_renews_and_a_named_dead_holder_is_superseded(
        self, store: ExecutionStore
    ) -> None:
        store.acquire_lease(EID, owner="a", seconds=10, now=T0)
        renewed = store.acquire_lease(EID, owner="a", seconds=10, now=at(5))
        assert renewed.expires_at == at(15)
        with pytest.raises(LeaseHeld):
            store.acquire_lease(EID, owner="b", seconds=10, now=at(6), supersede="someone")
        taken = store.acquire_lease(EID, owner="b", seconds=10, now=at(6), supersede="a")
        assert store.get_lease(EID) == taken and taken.owner == "b"

    def test_only_the_holder_releases(self, store: ExecutionStore) -> None:
        assert not store.release_lease(EID, owner="a")
        store.acquire_lease(EID, owner="a", seconds=10, now=T0)
        assert not store.release_lease(EID, owner="b")
        assert store.get_lease(EID) is not None
        assert store.release_lease(EID, owner="a")
        assert store.get_lease(EID) is None
        assert store.acquire_lease(EID, owner="b", seconds=10, now=at(1)).owner == "b"
        assert store.get_lease("exec-2") is None  # leases are per execution

    def test_concurrent_lease_requests_exactly_one_wins(self, store: ExecutionStore) -> None:
        n = 8
        barrier = threading.Barrier(n)
        won: list[str] = []
        refused: list[str] = []

        def worker(i: int) -> None:
            barrier.wait()
            try:
                store.acquire_lease(EID, owner=f"w{i}", seconds=60, now=T0)
                won.append(f"w{i}")
            except LeaseHeld as exc:
                refused.append(exc.lease.owner)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and refused == [won[0]] * (n - 1)
        assert store.get_lease(EID).owner == won[0]  # type: ignore[union-attr]

    def test_concurrent_claims_exactly_one_wins(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "hot")
        n = 8
        barrier = threading.Barrier(n)
        acquired: list[str] = []
        completed: list[str] = []
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            owner = f"w{i}"
            try:
                barrier.wait()
                claim = store.claim_node(key, attempt=0, owner=owner, lease_seconds=60, now=T0)
                if claim.acquired:
                    acquired.append(owner)
                try:  # everyone tries: only the claimant's output may land
                    store.complete_node(key, owner=owner, output={"by": owner}, now=at(1))
                    completed.append(owner)
                except NodeStateConflict:
                    pass
            except BaseException as exc:  # surfaced below; a thread cannot fail the test
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(acquired) == 1 and completed == acquired
        rec = store.get_node(key)
        assert rec is not None and rec.output == {"by": acquired[0]} and rec.attempts == 1

    def test_non_json_output_is_rejected_and_nothing_written(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        for bad in ({1, 2}, float("nan"), {"when": T0}, {1: "int key", "a": 2}):
            with pytest.raises(InvalidPayload):
                store.complete_node(key, owner="a", output=bad, now=at(1))
        assert store.get_node(key).status is NodeStatus.RUNNING  # type: ignore[union-attr]

    def test_naive_datetimes_are_refused(self, store: ExecutionStore) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            store.claim_node(
                NodeKey(EID, "n"),
                attempt=0,
                owner="a",
                lease_seconds=1,
                now=datetime(2024, 1, 1),
            )

    def test_one_megabyte_output_round_trips(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "big")
        output = {"blob": "x" * 1_000_000, "rows": list(range(2000)), "u": "ünï"}
        run_node(store, key, output)
        rec = store.get_node(key)
        assert rec is not None and rec.output == output
        assert rec.output_bytes is not None and rec.output_bytes > 1_000_000

    @settings(
        max_examples=40,
        deadline=None,
        # differing_executors: the same contract method runs for every backend class.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(value=JSON, index=st.integers(min_value=0, max_value=10**6))
    def test_any_json_output_round_trips(
        self, store: ExecutionStore, value: Any, index: int
    ) -> None:
        key = NodeKey(EID, "prop", index)
        if store.get_node(key) is not None:  # hypothesis reuses the store across examples
            return
        run_node(store, key, value)
        rec = store.get_node(key)
        assert rec is not None and rec.output == value

    def test_timestamps_come_back_as_the_same_instant_in_utc(self, store: ExecutionStore) -> None:
        plus2 = timezone(timedelta(hours=2))
        local = T0.astimezone(plus2)
        key = NodeKey(EID, "tz")
        claim = store.claim_node(key, attempt=0, owner="a", lease_seconds=1.5, now=local)
        assert claim.record.lease_expires_at == T0 + timedelta(seconds=1.5)
        rec = store.get_node(key)
        assert rec is not None and rec.started_at == T0
        assert rec.started_at.utcoffset() == timedelta(0)

    def test_null_output_is_an_output(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "void")
        run_node(store, key, None)
        rec = store.get_node(key)
        assert rec is not None and rec.has_output and rec.output is None
        assert rec.output_bytes == len("null")

    # -- cache ---------------------------------------------------------------------------

    def test_complete_with_cache_writes_both(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        entry = CacheEntry.for_ttl("k1", {"r": 1}, now=T0, ttl_seconds=3600)
        rec = store.complete_node(key, owner="a", output={"r": 1}, now=at(1), cache=entry)
        assert rec.cache_key == "k1" and not rec.cache_hit
        assert store.cache_get("k1", now=at(2)) == entry

    def test_complete_with_cache_is_one_transaction(self, store: ExecutionStore) -> None:
        key = NodeKey(EID, "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=T0)
        entry = CacheEntry(key="k1", output=7, created_at=T0)
        with pytest.raises(NodeStateConflict):
            store.complete_node(key, owner="zombie", output=7, now=at(1), cache=entry)
        assert store.cache_get("k1", now=at(2)) is None  # refused write left no cache entry

    def test_cache_hit_is_recorded_without_rewriting_entry(self, store: ExecutionStore) -> None:
        entry = CacheEntry(key="k", output=[1, 2], created_at=T0)
        store.cache_put(entry)
        key = NodeKey("exec-2", "n")
        store.claim_node(key, attempt=0, owner="a", lease_seconds=10, now=at(50))
        rec = store.complete_node(
            key, owner="a", output=entry.output, now=at(51), cache=entry, cache_hit=True
        )
        assert rec.cache_hit and rec.cache_key == "k" and rec.output == [1, 2]
        assert store.cache_get("k", now=at(52)) == entry

    def test_cache_ttl_expiry(self, store: ExecutionStore) -> None:
        store.cache_put(CacheEntry(key="t", output="v", created_at=T0, expires_at=at(60)))
        store.cache_put(CacheEntry(key="forever", output="v", created_at=T0))
        assert store.cache_get("t", now=at(59.999)) is not None
        assert store.cache_get("t", now=at(60)) is None
        assert store.cache_get("forever", now=at(10**9)) is not None
        assert store.cache_get("missing", now=T0) is None

    def test_cache_put_overwrites(self, store: ExecutionStore) -> None:
        store.cache_put(CacheEntry(key="k", output=1, created_at=T0, expires_at=at(1)))
        store.cache_put(CacheEntry(key="k", output=2, created_at=at(5)))
        got = store.cache_get("k", now=at(10))
        assert got is not None and got.output == 2 and got.expires_at is None

    # -- history -------------------------------------------------------------------------

    def test_history_append_is_idempotent_and_ordered(self, store: ExecutionStore) -> None:
        def ev(i: int, tag: str = "") -> dict[str, Any]:
            return {"id": i, "type": "TaskStateEntered", "previousEventId": i - 1, "tag": tag}

        assert store.append_events(EID, [ev(1), ev(3), ev(2)]) == 3
        assert store.append_events(EID, [ev(2, "dup"), ev(3, "dup"), ev(4), ev(5)]) == 2
        events = store.get_events(EID)
        assert [e["id"] for e in events] == [1, 2, 3, 4, 5]
        assert events[1] == ev(2)  # first write wins; a re-append never rewrites history
        assert [e["id"] for e in store.get_events(EID, after_id=3)] == [4, 5]
        assert [e["id"] for e in store.get_events(EID, after_id=1, limit=2)] == [2, 3]
        assert store.get_events("other-exec") == []
        assert store.append_events(EID, []) == 0
        with pytest.raises(ValueError):
            store.append_events(EID, [{"type": "no id"}])

    # -- map items -----------------------------------------------------------------------

    def test_item_outputs_ordered_by_index(self, store: ExecutionStore) -> None:
        parent = NodeKey(EID, "fanout")
        store.claim_node(parent, attempt=0, owner="m", lease_seconds=60, now=T0)
        assert store.set_items(parent, 12).items == 12
        for i in reversed(range(12)):  # completion order must not matter
            run_node(store, parent.item(i), {"i": i}, owner=f"w{i}")
        assert store.get_item_outputs(EID, "fanout") == [{"i": i} for i in range(12)]
        assert [r.node for r in store.list_nodes(EID)] == ["fanout"]
        everything = store.list_nodes(EID, include_items=True)
        assert [r.map_index for r in everything] == [None, *range(12)]
        assert store.get_node(parent).status is NodeStatus.RUNNING  # type: ignore[union-attr]

    def test_item_outputs_refuse_gaps(self, store: ExecutionStore) -> None:
        parent = NodeKey(EID, "fanout")
        store.set_items(parent, 4)
        run_node(store, parent.item(0), "a")
        run_node(store, parent.item(2), "c")
        store.claim_node(parent.item(3), attempt=0, owner="w", lease_seconds=5, now=T0)
        with pytest.raises(MapItemsIncomplete) as info:
            store.get_item_outputs(EID, "fanout")
        assert info.value.missing == (1, 3)
        assert store.get_item_outputs(EID, "never-ran") == []

    def test_set_items_is_idempotent(self, store: ExecutionStore) -> None:
        parent = NodeKey(EID, "m")
        first = store.set_items(parent, 3)
        assert first.status is NodeStatus.PENDING
        assert store.set_items(parent, 3) == first
        with pytest.raises(ValueError):
            store.set_items(parent.item(0), 3)

    def test_a_map_node_starts_when_its_items_are_planned(self, store: ExecutionStore) -> None:
        parent = NodeKey(EID, "m")
        assert store.set_items(parent, 2, now=T0).started_at == T0
        assert store.set_items(parent, 2, now=at(5)).started_at == T0  # the first plan wins
        run_node(store, parent.item(0), "x")
        run_node(store, parent.item(1), "y")
        store.claim_node(parent, attempt=0, owner="g", lease_seconds=9, now=at(9))
        done = store.complete_node(parent, owner="g", output=["x", "y"], now=at(10))
        # the gather's claim keeps the plan time: the node took 10 s, not the gather's 1 s
        assert (done.started_at, done.ended_at) == (T0, at(10))
        later = NodeKey(EID, "planned-late")
        store.set_items(later, 1)  # an older caller without a time
        assert store.set_items(later, 1, now=at(3)).started_at == at(3)

    def test_list_nodes_sorted_and_scoped(self, store: ExecutionStore) -> None:
        for name in ["load", "extract", "transform"]:
            run_node(store, NodeKey(EID, name), name)
        run_node(store, NodeKey("exec-2", "zzz"), 0)
        assert [r.node for r in store.list_nodes(EID)] == ["extract", "load", "transform"]
        assert [r.output for r in store.list_nodes(EID)] == ["extract", "load", "transform"]

    # -- rerun support -------------------------------------------------------------------

    def test_copy_nodes_reuses_completed_upstream(self, store: ExecutionStore) -> None:
        src, dst = "run-1", "run-2"
        run_node(store, NodeKey(src, "a"), {"a": 1})
        store.claim_node(NodeKey(src, "b"), attempt=0, owner="w", lease_seconds=9, now=T0)
        store.fail_node(NodeKey(src, "b"), owner="w", error="E", cause="c", now=at(1))
        store.skip_node(NodeKey(src, "s"), reason="branch", now=T0)
        m = NodeKey(src, "m")
        store.claim_node(m, attempt=0, owner="w", lease_seconds=9, now=T0)
        store.set_items(m, 2)
        run_node(store, m.item(0), "x")
        run_node(store, m.item(1), "y")
        store.complete_node(m, owner="w", output=["x", "y"], now=at(2))
        run_node(store, NodeKey(src, "not-requested"), 0)

        copied = store.copy_nodes(src, dst, ["a", "b", "m", "s", "absent"])
        assert copied == ["a", "m", "s"]
        assert store.get_node(NodeKey(dst, "a")).output == {"a": 1}  # type: ignore[union-attr]
        assert store.get_node(NodeKey(dst, "b")) is None  # failed upstream must rerun
        assert store.get_item_outputs(dst, "m") == ["x", "y"]
        assert store.get_node(NodeKey(dst, "s")).status is NodeStatus.SKIPPED  # type: ignore[union-attr]
        assert store.get_node(NodeKey(dst, "not-requested")) is None
        claim = store.claim_node(NodeKey(dst, "a"), attempt=0, owner="z", lease_seconds=9, now=T0)
        assert not claim.acquired  # a copied node counts as done in the rerun

        # Retrying the copy never overwrites what the rerun already has.
        run_node(store, NodeKey(dst, "b"), "rerun-b")
        assert store.copy_nodes(src, dst, ["a", "b"]) == ["a"]
        assert store.get_node(NodeKey(dst, "b")).output == "rerun-b"  # type: ignore[union-attr]
        assert store.get_node(NodeKey(src, "a")).output == {"a": 1}  # type: ignore[union-attr]

    # -- lifecycle -----------------------------------------------------------------------

    def test_context_manager_closes(self, store: ExecutionStore) -> None:
        with store as s:
            s.create_execution(execution())
        # After close the store must not be used; we only require close() to be safe twice.
        store.close()

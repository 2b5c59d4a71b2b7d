"""Records answer their own questions; the claim rule is pinned here as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import CacheEntry, ExecutionRecord, NodeKey, NodeRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(seconds=30)


def node(status: NodeStatus, *, attempt: int = 1, owner: str | None = "a") -> NodeRecord:
    return NodeRecord(
        execution_id="e",
        node="n",
        status=status,
        attempt=attempt,
        attempts=1,
        owner=owner,
        lease_expires_at=LATER if status is NodeStatus.RUNNING else None,
    )


@pytest.mark.parametrize(
    ("record", "attempt", "owner", "now", "blocked"),
    [
        (node(NodeStatus.PENDING, owner=None), 0, "b", T0, False),
        (node(NodeStatus.SUCCEEDED), 9, "b", LATER, True),
        (node(NodeStatus.SKIPPED), 9, "b", LATER, True),
        (node(NodeStatus.FAILED), 1, "b", T0, True),  # duplicate of the failed attempt
        (node(NodeStatus.FAILED), 1, "a", T0, True),  # ... even from the same owner
        (node(NodeStatus.FAILED), 2, "b", T0, False),  # the retry
        (node(NodeStatus.FAILED), 0, "b", T0, False),  # redrive resets retry counters
        (node(NodeStatus.RUNNING), 1, "b", T0, True),  # leased, same attempt
        (node(NodeStatus.RUNNING), 0, "b", T0, True),  # leased, older attempt
        (node(NodeStatus.RUNNING), 2, "b", T0, False),  # newer attempt takes over
        (node(NodeStatus.RUNNING), 1, "b", LATER, False),  # lease expired (boundary)
        (node(NodeStatus.RUNNING), 1, "a", T0, False),  # re-entrant
    ],
)
def test_claim_rule(
    record: NodeRecord, attempt: int, owner: str, now: datetime, blocked: bool
) -> None:
    reason = record.claim_blocker(attempt=attempt, owner=owner, now=now)
    assert (reason is not None) is blocked


def test_claimed_counts_attempts_and_keeps_first_start() -> None:
    first = NodeRecord(execution_id="e", node="n").claimed(
        attempt=0, owner="a", lease_expires_at=LATER, now=T0
    )
    assert (first.status, first.attempts, first.started_at, first.version) == (
        NodeStatus.RUNNING,
        1,
        T0,
        1,
    )
    again = first.claimed(attempt=0, owner="a", lease_expires_at=LATER, now=LATER)
    assert again.attempts == 1  # re-entrant claim: not a new run
    retry = first.claimed(attempt=1, owner="b", lease_expires_at=LATER, now=LATER)
    assert retry.attempts == 2 and retry.started_at == T0 and retry.owner == "b"


def test_records_answer_questions() -> None:
    assert node(NodeStatus.SUCCEEDED).is_terminal and node(NodeStatus.SUCCEEDED).has_output
    assert node(NodeStatus.FAILED).is_terminal and not node(NodeStatus.FAILED).is_completed
    assert not node(NodeStatus.RUNNING).is_terminal
    assert node(NodeStatus.RUNNING).lease_active(T0) and not node(NodeStatus.RUNNING).lease_active(
        LATER
    )
    rec = ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=T0)
    assert not rec.is_terminal and not rec.has_output
    done = ExecutionRecord(
        execution_id="e", name="e", workflow="w", started_at=T0, status=RunStatus.SUCCEEDED
    )
    assert done.is_terminal and done.has_output


def test_cache_entry_expiry() -> None:
    entry = CacheEntry.for_ttl("k", 1, now=T0, ttl_seconds=30)
    assert entry.expires_at == LATER
    assert not entry.is_expired(LATER - timedelta(microseconds=1)) and entry.is_expired(LATER)
    assert not CacheEntry.for_ttl("k", 1, now=T0, ttl_seconds=None).is_expired(LATER)


def test_validation() -> None:
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=naive)
    with pytest.raises(ValueError):
        ExecutionRecord(execution_id="", name="e", workflow="w", started_at=T0)
    with pytest.raises(ValueError):
        NodeKey("e", "n", -1)
    with pytest.raises(ValueError):
        NodeKey("e", "n", True)
    with pytest.raises(ValueError):
        CacheEntry(key="k", output=1, created_at=naive)
    plus2 = timezone(timedelta(hours=2))
    ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=T0.astimezone(plus2))
    assert str(NodeKey("e", "n")) == "e/n" and str(NodeKey("e", "n").item(3)) == "e/n[3]"

"""The status rules (stepdag.api.status) on the SQLite store: adoption, forward-only
updates under duplicates, reordering and redrives, and payloads EventBridge left out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stepdag.api.status import (
    InvalidStatusEvent,
    StatusRecorder,
    observation,
    record_id,
)
from stepdag.core.errors import ExecutionNotFound
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.sqlite import SqliteStore
from stepdag.runtime.store import NodeStateConflict
from tests.support.status_events import status_event

ACCOUNT = "arn:aws:states:eu-west-1:123456789012"
MACHINE = "Stepdag-etl"
WORKFLOWS = {MACHINE: "etl"}


def arn(name: str, qualifier: str | None = None) -> str:
    middle = f"{MACHINE}:{qualifier}" if qualifier else MACHINE
    return f"{ACCOUNT}:execution:{middle}:{name}"


class FakeSfn:
    """DescribeExecution answered from a dict (or failing), counting the calls."""

    def __init__(self, answer: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.answer = answer or {}
        self.fail = fail
        self.calls: list[str] = []

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:
        self.calls.append(executionArn)
        if self.fail:
            raise TimeoutError("DescribeExecution timed out")
        return {"executionArn": executionArn, **self.answer}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "status.db") as s:
        yield s


def recorder(store: SqliteStore, sfn: FakeSfn | None = None) -> StatusRecorder:
    return StatusRecorder(store, WORKFLOWS, client=sfn or FakeSfn(fail=True))


def test_running_event_adopts_an_unknown_execution(store: SqliteStore) -> None:
    event = status_event(arn("r1"), "RUNNING", input={"day": "2024-01-01"})
    outcome = recorder(store).handle_event(event)
    assert outcome.action == "created"
    rec = store.get_execution(arn("r1"))
    assert (rec.workflow, rec.name, rec.status, rec.tenant) == (
        "etl",
        "r1",
        RunStatus.RUNNING,
        None,
    )
    assert rec.input == {"day": "2024-01-01"}
    assert rec.started_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert rec.ended_at is None and rec.redrive_count == 0


def test_an_unknown_state_machine_is_ignored(store: SqliteStore) -> None:
    other = f"{ACCOUNT}:execution:SomeoneElse:r1"
    outcome = recorder(store).handle_event(status_event(other, "SUCCEEDED", output=1))
    assert (outcome.action, outcome.record) == ("ignored", None)
    with pytest.raises(ExecutionNotFound):
        store.get_execution(other)


def test_terminal_event_finishes_the_record_with_output_and_end(store: SqliteStore) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    outcome = rec.handle_event(status_event(arn("r1"), "SUCCEEDED", output={"total": 3}))
    assert outcome.action == "updated"
    got = store.get_execution(arn("r1"))
    assert (got.status, got.output) == (RunStatus.SUCCEEDED, {"total": 3})
    assert got.ended_at == datetime.fromtimestamp(1_700_000_060, tz=UTC)


def test_failed_event_records_error_and_cause_without_output(store: SqliteStore) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    rec.handle_event(status_event(arn("r1"), "FAILED", error="NodeFailed", cause="boom"))
    got = store.get_execution(arn("r1"))
    assert (got.status, got.error, got.cause, got.output) == (
        RunStatus.FAILED,
        "NodeFailed",
        "boom",
        None,
    )


def test_duplicates_and_late_running_change_nothing(store: SqliteStore) -> None:
    rec = recorder(store)
    done = status_event(arn("r1"), "SUCCEEDED", output={"total": 3})
    assert rec.handle_event(done).action == "created"  # the RUNNING event is late
    first = store.get_execution(arn("r1"))
    for event in (done, status_event(arn("r1"), "RUNNING"), done):
        outcome = rec.handle_event(event)
        assert outcome.action == "ignored", outcome
    assert store.get_execution(arn("r1")) == first


def test_the_first_terminal_status_of_a_run_wins(store: SqliteStore) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "ABORTED", error="Cancelled"))
    outcome = rec.handle_event(status_event(arn("r1"), "FAILED", error="States.Timeout"))
    assert outcome.action == "ignored" and "already ended ABORTED" in outcome.reason
    assert store.get_execution(arn("r1")).status is RunStatus.ABORTED


def test_a_redrive_moves_forward_and_stale_events_of_the_first_run_are_ignored(
    store: SqliteStore,
) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    failed = status_event(arn("r1"), "FAILED", error="E", cause="c")
    rec.handle_event(failed)
    # Redriven outside the API (console): RUNNING again, with redriveCount 1.
    assert rec.handle_event(status_event(arn("r1"), "RUNNING", redrive_count=1)).action == (
        "updated"
    )
    got = store.get_execution(arn("r1"))
    assert (got.status, got.redrive_count, got.error, got.ended_at) == (
        RunStatus.RUNNING,
        1,
        None,
        None,
    )
    stale = rec.handle_event(failed)  # redelivered FAILED of run 0
    assert stale.action == "ignored" and "older" in stale.reason
    assert store.get_execution(arn("r1")).status is RunStatus.RUNNING
    rec.handle_event(status_event(arn("r1"), "SUCCEEDED", redrive_count=1, output=7))
    got = store.get_execution(arn("r1"))
    assert (got.status, got.redrive_count, got.output) == (RunStatus.SUCCEEDED, 1, 7)


def test_a_missed_redrive_start_is_caught_up_by_its_end(store: SqliteStore) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "FAILED", error="E"))
    rec.handle_event(status_event(arn("r1"), "SUCCEEDED", redrive_count=1, output="ok"))
    got = store.get_execution(arn("r1"))
    assert (got.status, got.redrive_count, got.output, got.error) == (
        RunStatus.SUCCEEDED,
        1,
        "ok",
        None,
    )


def test_any_order_with_duplicates_ends_at_the_last_state(store: SqliteStore) -> None:
    events = [
        ("RUNNING", 0),
        ("FAILED", 0),
        ("RUNNING", 1),
        ("FAILED", 1),
        ("RUNNING", 2),
        ("SUCCEEDED", 2),
    ]
    orders = list(itertools.permutations(events))[::7]  # 103 of the 720 orders
    for i, order in enumerate(orders):
        rec = recorder(store)
        for status, count in (*order, order[0], order[-1]):  # + two redeliveries
            rec.handle_event(
                status_event(arn(f"p{i}"), status, redrive_count=count, output={"n": i})
            )
        got = store.get_execution(arn(f"p{i}"))
        assert (got.status, got.redrive_count, got.output) == (RunStatus.SUCCEEDED, 2, {"n": i})


def test_an_api_redrive_bump_is_not_undone_by_the_old_failure(store: SqliteStore) -> None:
    # The API bumps the count before RedriveExecution; DescribeExecution (or a late
    # event) may still report the first run's FAILED.
    store.create_execution(
        ExecutionRecord(
            execution_id=arn("r1"),
            name="r1",
            workflow="etl",
            started_at=datetime(2024, 1, 1, tzinfo=UTC),
            redrive_count=1,
            tenant="acme",
        )
    )
    outcome = recorder(store).handle_event(status_event(arn("r1"), "FAILED", error="E"))
    assert outcome.action == "ignored"
    got = store.get_execution(arn("r1"))
    assert (got.status, got.tenant) == (RunStatus.RUNNING, "acme")


def test_a_report_without_redrive_count_is_taken_as_the_records_run(store: SqliteStore) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING", redrive_count=None))
    rec.handle_event(status_event(arn("r1"), "TIMED_OUT", redrive_count=None, error="T"))
    got = store.get_execution(arn("r1"))
    assert (got.status, got.redrive_count, got.error) == (RunStatus.TIMED_OUT, 0, "T")


def test_an_alias_qualified_execution_arn_updates_the_unqualified_record(
    store: SqliteStore,
) -> None:
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    rec.handle_event(status_event(arn("r1", "live"), "SUCCEEDED", output=1))
    assert store.get_execution(arn("r1")).status is RunStatus.SUCCEEDED
    assert record_id(arn("r1", "3")) == arn("r1")


@pytest.mark.parametrize(
    "shape", [{"output_included": False}, {"raw_output": '{"total": [1, 2'}], ids=str
)
def test_missing_or_truncated_output_is_read_from_describe_execution(
    store: SqliteStore, shape: dict[str, Any]
) -> None:
    sfn = FakeSfn({"status": "SUCCEEDED", "output": '{"total": [1, 2, 3]}'})
    rec = recorder(store, sfn)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    assert sfn.calls == []  # nothing to fetch for a RUNNING record with its input
    rec.handle_event(status_event(arn("r1"), "SUCCEEDED", **shape))
    assert sfn.calls == [arn("r1")]
    assert store.get_execution(arn("r1")).output == {"total": [1, 2, 3]}
    # A duplicate is decided before any fetch.
    rec.handle_event(status_event(arn("r1"), "SUCCEEDED", **shape))
    assert sfn.calls == [arn("r1")]


def test_output_that_cannot_be_fetched_fails_the_event_and_keeps_the_record_open(
    store: SqliteStore,
) -> None:
    rec = recorder(store, FakeSfn(fail=True))
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    with pytest.raises(TimeoutError):
        rec.handle_event(status_event(arn("r1"), "SUCCEEDED", output_included=False))
    # Still open: the retried (or DLQ-redriven) event can still finish it.
    assert store.get_execution(arn("r1")).status is RunStatus.RUNNING


def test_an_adopted_run_without_input_reads_it_best_effort(store: SqliteStore) -> None:
    sfn = FakeSfn({"status": "RUNNING", "input": '{"big": true}'})
    recorder(store, sfn).handle_event(status_event(arn("r1"), "RUNNING", input_included=False))
    assert store.get_execution(arn("r1")).input == {"big": True}
    recorder(store, FakeSfn(fail=True)).handle_event(
        status_event(arn("r2"), "RUNNING", input_included=False)
    )
    assert store.get_execution(arn("r2")).input is None


def test_a_name_taken_by_another_execution_is_left_alone(store: SqliteStore) -> None:
    other = f"{ACCOUNT}:execution:Stepdag-etl-old:r1"
    store.create_execution(
        ExecutionRecord(execution_id=other, name="r1", workflow="etl", started_at=datetime.now(UTC))
    )
    outcome = recorder(store).handle_event(status_event(arn("r1"), "RUNNING"))
    assert outcome.action == "ignored" and other in outcome.reason
    with pytest.raises(ExecutionNotFound):
        store.get_execution(arn("r1"))


def test_a_lost_compare_and_swap_is_decided_again_on_the_new_record(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read (FAILED, redrive 0); meanwhile another event made it (FAILED, redrive 1).  The
    # status alone matches, so only the redrive count in the condition stops RUNNING(1)
    # from overwriting run 1's end.
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "FAILED", error="E0"))
    stale = store.get_execution(arn("r1"))
    rec.handle_event(status_event(arn("r1"), "FAILED", redrive_count=1, error="E1"))
    real_get = store.get_execution
    reads = iter([stale])
    monkeypatch.setattr(store, "get_execution", lambda ref: next(reads, None) or real_get(ref))
    outcome = rec.handle_event(status_event(arn("r1"), "RUNNING", redrive_count=1))
    assert outcome.action == "ignored"
    got = real_get(arn("r1"))
    assert (got.status, got.redrive_count, got.error) == (RunStatus.FAILED, 1, "E1")


@pytest.mark.parametrize(
    "change",
    [
        {"source": "aws.events"},
        {"detail-type": "Step Functions State Change"},
        {"detail": None},
        {"detail": {"executionArn": "arn:aws:lambda:eu-west-1:1:function:f", "status": "RUNNING"}},
        {"detail": {"executionArn": arn("r1"), "status": "DONE"}},
        {"detail": {"executionArn": arn("r1"), "status": "RUNNING", "redriveCount": -1}},
    ],
)
def test_events_that_are_not_status_changes_are_refused(
    store: SqliteStore, change: dict[str, Any]
) -> None:
    event = {**status_event(arn("r1"), "RUNNING"), **change}
    with pytest.raises(InvalidStatusEvent):
        recorder(store).handle_event(event)


def test_describe_execution_answers_parse_like_events() -> None:
    obs = observation(
        {
            "executionArn": arn("r1"),
            "status": "SUCCEEDED",
            "startDate": datetime(2024, 1, 1, 12, 0),  # naive: boto3 gives aware, moto may not
            "stopDate": datetime(2024, 1, 1, 12, 5, tzinfo=UTC),
            "input": "{}",
            "output": "[1]",
            "redriveCount": 2,
        }
    )
    assert (obs.status, obs.output, obs.input, obs.redrive_count) == (
        RunStatus.SUCCEEDED,
        [1],
        {},
        2,
    )
    assert obs.started_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert obs.state_machine == MACHINE and obs.name == "r1"


def test_a_terminal_status_ends_the_node_attempts_left_running(store: SqliteStore) -> None:
    """On AWS a timed-out Task's Lambda runs on: when the run's end is recorded, its
    attempt (and any other still RUNNING) is ended, and its late result refused."""
    rec = recorder(store)
    rec.handle_event(status_event(arn("r1"), "RUNNING"))
    eid = record_id(arn("r1"))
    slow, other = NodeKey(eid, "slow"), NodeKey(eid, "each", 2)
    store.claim_node(slow, attempt=1, owner="lambda-1", lease_seconds=90, deadline_seconds=60)
    store.claim_node(other, attempt=0, owner="lambda-2", lease_seconds=930)
    store.claim_node(NodeKey(eid, "done"), attempt=0, owner="lambda-3", lease_seconds=9)
    store.complete_node(NodeKey(eid, "done"), owner="lambda-3", output=1)
    rec.handle_event(status_event(arn("r1"), "FAILED", error="States.Timeout"))
    nodes = {str(n.key): n for n in store.list_nodes(eid, include_items=True)}
    assert [k for k, n in nodes.items() if n.status is NodeStatus.RUNNING] == []
    timed_out, abandoned = nodes[str(slow)], nodes[str(other)]
    assert (timed_out.status, timed_out.cause) == (
        NodeStatus.TIMED_OUT,
        "node 'slow' timed out (attempt 2)",
    )
    assert (abandoned.status, abandoned.error) == (NodeStatus.FAILED, "States.Abandoned")
    assert nodes[f"{eid}/done"].status is NodeStatus.SUCCEEDED
    with pytest.raises(NodeStateConflict):  # the Lambda's late answer
        store.complete_node(slow, owner="lambda-1", output="late")

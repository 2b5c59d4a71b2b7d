"""AWS's execution quotas: 25,000 history events (Standard), 5 minutes (Express)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine, VirtualClock
from stepdag.asl.history import HISTORY_LIMIT_CAUSE, MAX_HISTORY_EVENTS

from ._util import single

LOOP: dict[str, Any] = {
    "StartAt": "Spin",
    "States": {
        "Spin": {"Type": "Pass", "Result": {"spin": True}, "Next": "Again"},
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.spin", "BooleanEquals": True, "Next": "Spin"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def _pass_then_map(items: int) -> tuple[dict[str, Any], list[int]]:
    """Pass + inline Map of Pass: 8 + 4 * items history events when it succeeds."""
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "Each"},
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "End": True,
            },
        },
    }
    return definition, list(range(items))


def test_endless_loop_fails_at_the_history_quota_with_awss_event_shape() -> None:
    result = StateMachine(LOOP).execute({}, clock=VirtualClock())
    assert result.to_contract() == {
        "status": "FAILED",
        "output": None,
        "error": "States.Runtime",
        "cause": "The execution reached the maximum number of history events (25000).",
    }
    assert len(result.history) == MAX_HISTORY_EVENTS
    last, before = result.history[-1], result.history[-2]
    assert (last.id, last.previous_event_id, last.type) == (25_000, 24_999, "ExecutionFailed")
    assert last.details == {"error": "States.Runtime", "cause": HISTORY_LIMIT_CAUSE}
    # Event 24,999 is the last one the machine itself produced (AWS's cut).
    assert before.id == 24_999 and before.type == "PassStateExited"


def test_inline_map_over_10000_items_fails_on_standard() -> None:
    definition, items = _pass_then_map(10_000)
    result = StateMachine(definition).execute(items, clock=VirtualClock())
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "States.Runtime",
        HISTORY_LIMIT_CAUSE,
    )
    assert len(result.history) == MAX_HISTORY_EVENTS
    assert result.history[-1].type == "ExecutionFailed"


def test_event_25000_may_be_execution_succeeded() -> None:
    definition, items = _pass_then_map(6248)  # 8 + 4 * 6248 == 25,000
    result = StateMachine(definition).execute(items, clock=VirtualClock())
    assert result.status == "SUCCEEDED"
    assert (len(result.history), result.history[-1].type) == (25_000, "ExecutionSucceeded")


def test_one_event_more_fails() -> None:
    definition, items = _pass_then_map(6249)
    result = StateMachine(definition).execute(items, clock=VirtualClock())
    assert (result.status, result.cause) == ("FAILED", HISTORY_LIMIT_CAUSE)
    assert len(result.history) == 25_000


def test_a_failure_that_would_be_event_25000_is_the_quota_failure() -> None:
    """AWS: 'If the event number 25,000 isn't ExecutionSucceeded' the quota fails it."""
    definition, items = _pass_then_map(6248)
    del definition["States"]["Each"]["End"]
    definition["States"]["Each"]["Next"] = "Boom"
    definition["States"]["Boom"] = {"Type": "Fail", "Error": "Mine", "Cause": "mine"}
    # 7 + 4 * 6248 = 24,999 events, FailStateEntered is number 25,000.
    result = StateMachine(definition).execute(items, clock=VirtualClock())
    assert (result.error, result.cause) == ("States.Runtime", HISTORY_LIMIT_CAUSE)
    assert len(result.history) == 25_000


def test_history_quota_is_not_catchable() -> None:
    definition: dict[str, Any] = {
        "StartAt": "Wrap",
        "States": {
            "Wrap": {
                "Type": "Parallel",
                "Branches": [LOOP],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    result = StateMachine(definition).execute({}, clock=VirtualClock())
    assert (result.status, result.cause) == ("FAILED", HISTORY_LIMIT_CAUSE)
    assert len(result.history) == 25_000


def test_express_machines_have_no_history_quota() -> None:
    definition, items = _pass_then_map(10_000)
    sm = StateMachine(definition, machine_type="EXPRESS")
    result = sm.execute(items, clock=VirtualClock())
    assert result.status == "SUCCEEDED"
    assert len(result.history) == 8 + 4 * 10_000


def test_express_executions_time_out_after_five_minutes() -> None:
    sm = StateMachine(single({"Type": "Wait", "Seconds": 301}), machine_type="EXPRESS")
    clock = VirtualClock()
    result = sm.execute({}, clock=clock)
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert clock.now() == 300


def test_express_timeout_seconds_below_five_minutes_still_applies() -> None:
    definition = {"TimeoutSeconds": 10, **single({"Type": "Wait", "Seconds": 60})}
    clock = VirtualClock()
    result = StateMachine(definition, machine_type="EXPRESS").execute({}, clock=clock)
    assert result.status == "TIMED_OUT"
    assert clock.now() == 10


def test_standard_wait_beyond_five_minutes_succeeds() -> None:
    result = StateMachine(single({"Type": "Wait", "Seconds": 301})).execute(
        {}, clock=VirtualClock()
    )
    assert result.status == "SUCCEEDED"


def test_unknown_machine_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="machine_type must be 'STANDARD' or 'EXPRESS'"):
        StateMachine(single({"Type": "Succeed"}), machine_type="express")


def test_definition_over_one_mib_is_rejected() -> None:
    definition = single({"Type": "Pass", "Result": "x" * (1024 * 1024)})
    with pytest.raises(AslDefinitionError, match="exceeds the maximum state machine definition"):
        StateMachine(definition)
    with pytest.raises(AslDefinitionError, match="exceeds the maximum state machine definition"):
        StateMachine(json.dumps(definition))


def test_definition_just_under_one_mib_is_accepted() -> None:
    small = {"Comment": "", **single({"Type": "Succeed"})}
    room = 1024 * 1024 - len(json.dumps(small, separators=(",", ":")))
    definition = {**small, "Comment": "x" * room}
    assert StateMachine(definition).execute({}, clock=VirtualClock()).status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "must be 1-80 characters"),
        ("x" * 81, "must be 1-80 characters"),
        ("has space", "' '"),
        ("a/b", "'/'"),
        ("a:b", "':'"),
        ("star*", "'*'"),
        ("tab\tname", "'\\\\t'"),
        ("ctl\x7f", "'\\\\x7f'"),
    ],
)
def test_invalid_execution_names_are_rejected(name: str, why: str) -> None:
    sm = StateMachine(single({"Type": "Succeed"}))
    with pytest.raises(ValueError, match=f"execution name .*{why}"):
        sm.execute({}, name=name, clock=VirtualClock())


@pytest.mark.parametrize("name", ["run-1", "a.b_c", "x" * 80, "日本語"])
def test_valid_execution_names_are_accepted(name: str) -> None:
    result = StateMachine(single({"Type": "Succeed"})).execute({}, name=name, clock=VirtualClock())
    assert (result.status, result.name) == ("SUCCEEDED", name)


def test_an_unchanged_payload_is_held_once_by_the_whole_history() -> None:
    """A 250 KB payload looping until the quota must not cost 25,000 copies of itself."""
    keep = {
        "StartAt": "Spin",
        "States": {
            "Spin": {"Type": "Pass", "Next": "Again"},
            "Again": LOOP["States"]["Again"],
            "Done": {"Type": "Succeed"},
        },
    }
    blob = {"spin": True, "blob": "x" * 250_000}
    result = StateMachine(keep).execute(blob, clock=VirtualClock())
    assert result.cause == HISTORY_LIMIT_CAUSE
    texts = {
        id(text)
        for event in result.history
        for key in ("input", "output")
        if isinstance(text := event.details.get(key), str) and len(text) > 1000
    }
    # ExecutionStarted's text and the one every state event shares.
    assert len(texts) == 2

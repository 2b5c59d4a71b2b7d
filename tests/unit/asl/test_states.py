"""Pass, Wait, Succeed, Fail and the InputPath/Parameters/ResultPath/OutputPath pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import VirtualClock

from ._util import echo, run, single, types


def test_pass_result_and_result_path() -> None:
    result = run(single({"Type": "Pass", "Result": {"r": 1}, "ResultPath": "$.out"}), {"a": 1})
    assert result.output == {"a": 1, "out": {"r": 1}}


def test_pass_without_result_passes_input() -> None:
    assert run(single({"Type": "Pass"}), {"a": [1]}).output == {"a": [1]}


def test_pass_parameters_with_paths_context_and_nesting() -> None:
    state = {
        "Type": "Pass",
        "Parameters": {
            "static": {"deep": [1, {"x.$": "$.a"}]},
            "a.$": "$.a",
            "all.$": "$",
            "name.$": "$$.State.Name",
            "list": [{"v.$": "$.a"}, "plain"],
        },
    }
    out = run(single(state, "P"), {"a": 7}).output
    assert out == {
        "static": {"deep": [1, {"x": 7}]},
        "a": 7,
        "all": {"a": 7},
        "name": "P",
        "list": [{"v": 7}, "plain"],
    }


def test_result_path_null_discards_result() -> None:
    out = run(single({"Type": "Pass", "Result": "x", "ResultPath": None}), {"keep": True}).output
    assert out == {"keep": True}


def test_input_path_null_and_output_path_null() -> None:
    assert run(single({"Type": "Pass", "InputPath": None}), {"a": 1}).output == {}
    assert run(single({"Type": "Pass", "OutputPath": None}), {"a": 1}).output == {}


def test_full_pipeline_order() -> None:
    state = {
        "Type": "Task",
        "Resource": "r",
        "InputPath": "$.in",
        "Parameters": {"p.$": "$.v"},
        "ResultSelector": {"picked.$": "$.p"},
        "ResultPath": "$.in.res",
        "OutputPath": "$.in",
    }
    out = run(single(state), {"in": {"v": 3}, "other": 0}, echo).output
    assert out == {"v": 3, "res": {"picked": 3}}


@pytest.mark.parametrize("field", ["InputPath", "OutputPath"])
def test_io_path_no_match(field: str) -> None:
    result = run(single({"Type": "Pass", field: "$.q"}), {"x": 5})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). "
        "Invalid path '$.q' : No results for path: $['q']"
    )


def test_parameters_path_no_match() -> None:
    result = run(single({"Type": "Pass", "Parameters": {"x.$": "$.nope"}}, "A"), {"a": 1})
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'A' (entered at the event id #2). "
        "The JSONPath '$.nope' specified for the field 'x.$' could not be found in the input "
        "'{\"a\":1}'"
    )


@pytest.mark.parametrize(("input", "path"), [("abc", "$.x"), ([1, 2], "$.x"), ({"x": 5}, "$.x.y")])
def test_result_path_match_failure(input: Any, path: str) -> None:
    result = run(single({"Type": "Pass", "Result": 1, "ResultPath": path}), input)
    assert result.error == "States.ResultPathMatchFailure"
    assert result.cause is not None and path in result.cause


def test_result_path_failure_is_catchable() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "ResultPath": "$.x.y",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ResultPathMatchFailure"],
                        "Next": "C",
                        "ResultPath": "$.err",
                    }
                ],
                "End": True,
            },
            "C": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {"x": 1}, echo)
    assert result.output["err"]["Error"] == "States.ResultPathMatchFailure"


def test_wait_seconds_advances_virtual_time(vclock: VirtualClock) -> None:
    result = run(single({"Type": "Wait", "Seconds": 30}), {"a": 1}, clock=vclock)
    assert result.output == {"a": 1}
    assert vclock.now() == 30
    assert types(result) == [
        "ExecutionStarted",
        "WaitStateEntered",
        "WaitStateExited",
        "ExecutionSucceeded",
    ]
    assert (result.history[-1].timestamp - result.history[0].timestamp).total_seconds() == 30


def test_wait_seconds_path_and_timestamps() -> None:
    clock = VirtualClock(start=1_700_000_000)
    run(single({"Type": "Wait", "SecondsPath": "$.s"}), {"s": 5}, clock=clock)
    assert clock.now() == 1_700_000_005
    run(single({"Type": "Wait", "Timestamp": "2023-11-14T22:14:00Z"}), {}, clock=clock)
    assert clock.now() == 1_700_000_040
    run(
        single({"Type": "Wait", "TimestampPath": "$.t"}),
        {"t": "2023-11-14T22:15:00+00:00"},
        clock=clock,
    )
    assert clock.now() == 1_700_000_100
    # A timestamp in the past does not wait.
    run(single({"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z"}), {}, clock=clock)
    assert clock.now() == 1_700_000_100


@pytest.mark.parametrize(
    ("state", "input", "cause"),
    [
        (
            {"SecondsPath": "$.s"},
            {"s": "x"},
            "The SecondsPath parameter cannot be parsed as a long value: $.s == x",
        ),
        (
            {"SecondsPath": "$.s"},
            {"s": -1},
            "The SecondsPath parameter references a negative value: $.s == -1",
        ),
        (
            {"SecondsPath": "$.s"},
            {},
            "The SecondsPath parameter does not reference an input value: $.s",
        ),
        (
            {"TimestampPath": "$.t"},
            {"t": "nope"},
            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
            "date-time format string: $.t == nope",
        ),
    ],
)
def test_wait_path_errors(state: dict[str, Any], input: Any, cause: str) -> None:
    result = run(single({"Type": "Wait", **state}), input)
    assert result.error == "States.Runtime"
    assert result.cause is not None and result.cause.endswith(cause)


def test_succeed_state_with_paths() -> None:
    result = run(
        single({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 2}}
    )
    assert result.output == 2
    assert types(result)[1:3] == ["SucceedStateEntered", "SucceedStateExited"]


def test_fail_state_static() -> None:
    result = run(single({"Type": "Fail", "Error": "MyError", "Cause": "because"}))
    assert (result.status, result.error, result.cause) == ("FAILED", "MyError", "because")
    assert types(result) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]
    assert result.history[-1].details == {"error": "MyError", "cause": "because"}


def test_fail_state_without_error() -> None:
    result = run(single({"Type": "Fail"}))
    assert (result.status, result.error, result.cause) == ("FAILED", None, None)


def test_fail_state_paths_and_intrinsics() -> None:
    state = {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('bad {}', $.n)"}
    result = run(single(state), {"e": "Boom", "n": 3})
    assert (result.error, result.cause) == ("Boom", "bad 3")


def test_fail_state_missing_error_path() -> None:
    result = run(single({"Type": "Fail", "ErrorPath": "$.e"}, "F"), {})
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'F' (entered at the event id #2). "
        "The JSONPath '$.e' specified for the field 'ErrorPath' could not be found "
        "in the input '{}'"
    )


def test_fail_state_error_path_must_be_string() -> None:
    result = run(single({"Type": "Fail", "ErrorPath": "$.e"}), {"e": 5})
    assert result.error == "States.Runtime"


def test_chain_of_states_and_next() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
            "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "Next": "C"},
            "C": {"Type": "Succeed"},
        },
    }
    assert run(definition, {}).output == {"a": 1, "b": 2}


def test_context_object_contents() -> None:
    state = {"Type": "Pass", "Parameters": {"ctx.$": "$$"}}
    result = run(
        single(state, "P"),
        {"in": 1},
        name="exec-name",
        context_overrides={"Execution": {"RedriveCount": 2}},
    )
    ctx = result.output["ctx"]
    assert ctx["Execution"]["Name"] == "exec-name"
    assert ctx["Execution"]["Input"] == {"in": 1}
    assert ctx["Execution"]["RedriveCount"] == 2
    assert ctx["Execution"]["Id"].endswith(":execution:StateMachine:exec-name")
    assert ctx["Execution"]["StartTime"] == "1970-01-01T00:00:00.000Z"
    assert ctx["Execution"]["RoleArn"].startswith("arn:aws:iam::")
    assert ctx["StateMachine"] == {
        "Id": "arn:aws:states:us-east-1:123456789012:stateMachine:StateMachine",
        "Name": "StateMachine",
    }
    assert ctx["State"]["Name"] == "P"
    assert ctx["State"]["RetryCount"] == 0
    assert "Task" not in ctx


def test_execution_id_override() -> None:
    state = {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id"}}
    assert run(single(state), {}, execution_id="my-id").output == {"id": "my-id"}


def test_data_limit_exceeded_is_terminal() -> None:
    big = "x" * (256 * 1024)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}],
                "End": True,
            },
            "C": {"Type": "Succeed"},
        },
    }
    result = run(definition, {}, lambda r, p, c: big)
    assert result.status == "FAILED"
    assert result.error == "States.DataLimitExceeded"
    assert result.cause == (
        "The state/task 'r' returned a result with a size exceeding the maximum number of "
        "bytes service limit."
    )
    assert "TaskFailed" in [e.type for e in result.history]


def test_data_limit_on_state_output_names_the_state() -> None:
    definition = single({"Type": "Pass", "Parameters": {"a.$": "$.s", "b.$": "$.s"}}, "P")
    result = run(definition, {"s": "x" * (200 * 1024)})
    assert result.error == "States.DataLimitExceeded"
    assert result.cause is not None and "'P'" in result.cause


def test_payload_just_under_limit_is_fine() -> None:
    text = "x" * (256 * 1024 - 2)  # plus two quote characters == exactly the limit
    assert run(single({"Type": "Pass", "Result": text})).status == "SUCCEEDED"


def test_execution_input_over_limit_fails() -> None:
    result = run(single({"Type": "Pass"}), {"x": "y" * (256 * 1024)})
    assert result.error == "States.DataLimitExceeded"


def test_data_limit_on_task_parameters() -> None:
    state = {"Type": "Task", "Resource": "r", "Parameters": {"a.$": "$.s", "b.$": "$.s"}}
    calls: list[Any] = []
    result = run(single(state), {"s": "x" * (200 * 1024)}, lambda r, p, c: calls.append(p))
    assert result.error == "States.DataLimitExceeded"
    assert calls == []

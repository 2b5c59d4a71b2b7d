"""The context object ($$) in the fields AWS allows it: InputPath, OutputPath, ItemsPath."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine, VirtualClock

from ._util import run, single


def test_input_path_reads_the_execution_input_after_the_state_input_changed() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": "replaced", "Next": "B"},
            "B": {"Type": "Pass", "InputPath": "$$.Execution.Input", "End": True},
        },
    }
    assert run(definition, {"orig": 1}).output == {"orig": 1}


def test_output_path_reads_the_context_object() -> None:
    definition = single({"Type": "Pass", "Result": 1, "OutputPath": "$$.State.Name"}, name="Me")
    assert run(definition, {}).output == "Me"


def test_items_path_may_read_the_context_object() -> None:
    definition: dict[str, Any] = single(
        {
            "Type": "Map",
            "ItemsPath": "$$.Execution.Input.xs",
            "InputPath": "$.other",
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
        }
    )
    assert run(definition, {"xs": [1, 2], "other": {}}).output == [1, 2]


def test_a_context_path_that_matches_nothing_names_the_field_and_prints_the_context() -> None:
    sm = StateMachine(
        single({"Type": "Pass", "InputPath": "$$.Execution.Nope"}, name="P"),
        state_machine_name="sm",
    )
    result = sm.execute({"a": 1}, name="ex", clock=VirtualClock())
    context = (
        '{"Execution":{"Id":"arn:aws:states:us-east-1:123456789012:execution:sm:ex",'
        '"Input":{"a":1},"Name":"ex",'
        '"RoleArn":"arn:aws:iam::123456789012:role/StepDagLocalExecutionRole",'
        '"StartTime":"1970-01-01T00:00:00.000Z","RedriveCount":0},'
        '"StateMachine":{"Id":"arn:aws:states:us-east-1:123456789012:stateMachine:sm",'
        '"Name":"sm"},"State":{"EnteredTime":"1970-01-01T00:00:00.000Z","Name":"P",'
        '"RetryCount":0}}'
    )
    assert (result.error, result.cause) == (
        "States.Runtime",
        "An error occurred while executing the state 'P' (entered at the event id #2). "
        f"The JSONPath '$$.Execution.Nope' specified for the field 'InputPath' could not be "
        f"found in the input '{context}'",
    )


def test_a_data_path_that_matches_nothing_keeps_the_jsonpath_library_wording() -> None:
    result = run(single({"Type": "Pass", "OutputPath": "$.a.b"}, name="P"), {"a": {}})
    assert result.cause == (
        "An error occurred while executing the state 'P' (entered at the event id #2). "
        "Invalid path '$.a.b' : No results for path: $['a']['b']"
    )


def test_wait_seconds_path_and_task_timeout_path_may_read_the_context_object() -> None:
    wait = single({"Type": "Wait", "SecondsPath": "$$.Execution.Input.d"})
    clock = VirtualClock()
    assert StateMachine(wait).execute({"d": 7}, clock=clock).status == "SUCCEEDED"
    assert clock.now() == 7

    def slow(resource: str, params: Any, ctx: Any) -> Any:
        ctx.clock.sleep(100)
        return 1

    task = single({"Type": "Task", "Resource": "r", "TimeoutSecondsPath": "$$.Execution.Input.t"})
    result = run(task, {"t": 3}, slow)
    assert (result.status, result.error) == ("FAILED", "States.Timeout")


def test_result_path_may_not_write_into_the_context_object() -> None:
    with pytest.raises(AslDefinitionError, match="not a valid reference path"):
        StateMachine(single({"Type": "Pass", "ResultPath": "$$.Execution.Input"}))

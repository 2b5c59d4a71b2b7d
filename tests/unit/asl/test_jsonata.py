"""The JSONata binding (stepdag.asl.jsonata) and JSONata states' validation."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine, TaskFailure
from stepdag.asl import jsonata as J
from stepdag.asl.errors import StatesError
from tests.support.asl_problems import located
from tests.unit.asl._util import echo, run

JSONATA = {"QueryLanguage": "JSONata"}


def evaluate(text: str, input: Any = None, **variables: Any) -> Any:
    node = J.compile_template(text, "Output")
    return J.evaluate(node, J.bindings(variables, input=input, context={}))


def test_null_is_a_value_but_nothing_fails_naming_expression_and_field() -> None:
    assert evaluate("{% $states.input.a %}", {"a": None}) is None
    with pytest.raises(StatesError) as info:
        evaluate("{% $states.input.b %}", {"a": None})
    assert info.value.error == "States.QueryEvaluationError"
    assert info.value.cause == (
        "The JSONata expression '$states.input.b' specified for the field 'Output' "
        "returned nothing (undefined)."
    )


def test_nested_template_fields_are_named_with_slashes_and_indexes() -> None:
    node = J.compile_template({"a": {"b": ["x", "{% $nope %}"]}}, "Arguments")
    with pytest.raises(StatesError, match=r"field 'Arguments/a/b\[1\]'"):
        J.evaluate(node, J.bindings({}, input={}, context={}))


def test_evaluation_error_cause_carries_the_jsonata_code() -> None:
    with pytest.raises(StatesError) as info:
        evaluate("{% $states.input.a + 'x' %}", {"a": 1})
    assert info.value.cause is not None
    assert info.value.cause.startswith(
        "The JSONata expression '$states.input.a + 'x'' specified for the field 'Output' "
        "threw an error during evaluation. T2002: "
    )


@pytest.mark.parametrize(
    ("text", "tail"),
    [
        ('$sum(["a"])', 'T0412: Argument 1 of function "sum" must be an array of "numbers"'),
        ('$abs("x")', 'T0410: Argument 1 of function "abs" does not match function signature'),
        ("$count(1, 2)", 'T0410: Argument 2 of function "count" does not match function signature'),
        ('1 + "a"', 'T2002: The right side of the "+" operator must evaluate to a number'),
        ("$nope()", "T1006: Attempted to invoke a non-function"),
        ('$number("x1")', 'D3030: Unable to cast value to a number: "x1"'),
        ('[1..""]', "T2004: The right side of the range operator (..) must evaluate to an integer"),
        (
            "[1, 2] < 3",
            'T2010: The expressions either side of operator "<" must evaluate to numeric or '
            "string values",
        ),
        (
            "$single([1, 2])",
            "D3138: The $single() function expected exactly 1 matching result.  Instead it "
            "matched more.",
        ),
    ],
)
def test_error_messages_follow_the_jsonata_js_catalog(text: str, tail: str) -> None:
    with pytest.raises(StatesError) as info:
        evaluate("{% " + text + " %}")
    assert info.value.cause is not None
    assert info.value.cause.endswith("threw an error during evaluation. " + tail)


def test_numbers_print_as_aws_does() -> None:
    assert evaluate("{% $sum([1.5, 0.5]) %}") == 2
    assert isinstance(evaluate("{% $sum([1.5, 0.5]) %}"), int)
    assert evaluate("{% 1/0 %}") == "Infinity"
    assert evaluate("{% 10 / 4 %}") == 2.5


def test_step_functions_functions() -> None:
    assert evaluate("{% $partition([1,2,3,4,5], 2) %}") == [[1, 2], [3, 4], [5]]
    assert evaluate("{% $range(0, 10, 2) %}") == [0, 2, 4, 6, 8, 10]
    assert evaluate("{% $range(3, 1, -1) %}") == [3, 2, 1]
    assert evaluate("{% $hash('abc', 'MD5') %}") == "900150983cd24fb0d6963f7d28e17f72"
    assert evaluate("{% $parse('{\"a\": [1]}') %}") == {"a": [1]}
    # java.util.Random(42).nextDouble(), which AWS's seeded $random returns.
    assert evaluate("{% $random(42) %}") == 0.7275636800328681
    assert len(evaluate("{% $uuid() %}")) == 36


def test_eval_is_not_available() -> None:
    with pytest.raises(StatesError, match="T1006"):
        evaluate("{% $eval('1+1') %}")


def test_now_and_millis_read_the_execution_clock() -> None:
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Output": {"now": "{% $now() %}", "ms": "{% $millis() %}"},
                "End": True,
            }
        },
    }
    out = run(definition).output
    # The virtual clock starts at the Unix epoch.
    assert out == {"now": "1970-01-01T00:00:00.000Z", "ms": 0}


def test_seeded_uuid_and_random_are_reproducible() -> None:
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Output": ["{% $uuid() %}", "{% $random() %}"], "End": True}
        },
    }
    assert run(definition, seed=3).output == run(definition, seed=3).output


def test_syntax_errors_are_definition_problems() -> None:
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% 1 + %}", "End": True}},
    }
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    assert info.value.problems == [
        "INVALID_JSONATA_EXPRESSION: Unexpected end of expression at /States/P/Output"
    ]


@pytest.mark.parametrize(
    ("state", "where", "fragment"),
    [
        (
            {"Type": "Pass", "InputPath": "$.a", "End": True},
            "States.S",
            "The QueryLanguage is set to 'JSONata', but field 'InputPath' is only supported "
            "for the 'JSONPath' QueryLanguage",
        ),
        (
            {"Type": "Pass", "Parameters": {"a.$": "$"}, "End": True},
            "States.S",
            "field 'Parameters' is only supported for the 'JSONPath' QueryLanguage",
        ),
        ({"Type": "Pass", "Result": 1, "End": True}, "States.S", "field 'Result' is only"),
        (
            {"Type": "Task", "Resource": "r", "ResultSelector": {}, "End": True},
            "States.S",
            "field 'ResultSelector' is only",
        ),
        (
            {"Type": "Wait", "SecondsPath": "$.s", "End": True},
            "States.S",
            "field 'SecondsPath' is only",
        ),
        (
            {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "S"}]},
            "States.S.Choices[0].Variable",
            "JSONata choice rule",
        ),
        (
            {"Type": "Choice", "Choices": [{"Next": "S"}]},
            "States.S.Choices[0]",
            "requires 'Condition'",
        ),
        (
            {"Type": "Pass", "Assign": {"states": 1}, "End": True},
            "States.S.Assign.states",
            "reserved",
        ),
        (
            {
                "Type": "Map",
                "Items": "nope",
                "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
                "End": True,
            },
            "States.S.Items",
            "array",
        ),
    ],
)
def test_jsonpath_fields_rejected_in_jsonata_states(
    state: dict[str, Any], where: str, fragment: str
) -> None:
    definition = {**JSONATA, "StartAt": "S", "States": {"S": state}}
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    assert located(info.value.problems, where, fragment), info.value.problems


@pytest.mark.parametrize("key", ["Output", "Arguments", "Items"])
def test_jsonata_fields_rejected_in_jsonpath_states(key: str) -> None:
    state = {"Type": "Map" if key == "Items" else "Task", "Resource": "r", key: [], "End": True}
    if key == "Items":
        state = {
            "Type": "Map",
            "Items": [],
            "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}},
            "End": True,
        }
    with pytest.raises(AslDefinitionError) as info:
        StateMachine({"StartAt": "S", "States": {"S": state}})
    assert (
        "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONPath', but field "
        f"'{key}' is only supported for the 'JSONata' QueryLanguage at /States/S"
    ) in info.value.problems


def test_a_jsonpath_state_inside_a_jsonata_machine_is_rejected() -> None:
    definition = {
        **JSONATA,
        "StartAt": "S",
        "States": {"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}},
    }
    with pytest.raises(AslDefinitionError, match="'QueryLanguage' can not be 'JSONPath' if set"):
        StateMachine(definition)


def test_a_jsonata_state_inside_a_jsonpath_machine_runs() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Parameters": {"x.$": "$.x"}, "Next": "B"},
            "B": {
                "Type": "Pass",
                "QueryLanguage": "JSONata",
                "Output": "{% $states.input.x * 2 %}",
                "End": True,
            },
        },
    }
    assert run(definition, {"x": 4}).output == 8


def test_task_arguments_output_and_catch_error_output() -> None:
    def failing(resource: str, parameters: Any, ctx: Any) -> Any:
        raise RuntimeError(parameters["why"])

    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Arguments": {"why": "{% $states.input.why %}"},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": {
                            "e": "{% $states.errorOutput %}",
                            "in": "{% $states.input.why %}",
                        },
                        "Next": "D",
                    }
                ],
                "End": True,
            },
            "D": {"Type": "Succeed"},
        },
    }
    out = run(definition, {"why": "boom"}, failing).output
    assert out == {"e": {"Error": "RuntimeError", "Cause": "boom"}, "in": "boom"}


def test_task_output_sees_result_and_input() -> None:
    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Arguments": {"v": 1},
                "Output": {"r": "{% $states.result.v %}", "i": "{% $states.input %}"},
                "End": True,
            }
        },
    }
    assert run(definition, {"k": 2}, echo).output == {"r": 1, "i": {"k": 2}}


def test_importing_the_engine_does_not_import_the_jsonata_library() -> None:
    code = (
        "import sys; from stepdag.asl import StateMachine, VirtualClock; "
        "StateMachine({'StartAt': 'P', 'States': {'P': {'Type': 'Pass', 'End': True}}})"
        ".execute({}, clock=VirtualClock()); print('jsonatapy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_expressions_get_only_the_variables_they_name_but_all_of_states_when_bare() -> None:
    expression = J.Expression("{% $a + $states.input.n %}")
    bound = J.bindings({"a": 1, "big": list(range(10))}, input={"n": 2}, context={"x": 1})
    assert expression._bindings(bound) == {"a": 1, "states": {"input": {"n": 2}}}
    assert J.Expression("{% $keys($states) %}").evaluate("Output", bound) == ["input", "context"]
    assert expression.evaluate("Output", bound) == 3


def test_an_endless_expression_fails_the_state_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(J, "EVALUATION_TIMEOUT_MS", 200)
    with pytest.raises(StatesError, match="D1012"):
        evaluate("{% ($f := function($n) { $f($n + 1) }; $f(0)) %}")


def test_an_evaluation_failure_is_an_evaluation_failed_event() -> None:
    # AWS: EvaluationFailedEventDetails (error, cause, location of the field, state),
    # "only present in state machines that have QueryLanguage set to JSONata".
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Output": {"a": "{% $states.input.x + 1 %}"}, "End": True}
        },
    }
    result = StateMachine(definition).execute({"x": "s"})
    assert [e.type for e in result.history] == [
        "ExecutionStarted",
        "PassStateEntered",
        "EvaluationFailed",
        "ExecutionFailed",
    ]
    event = result.history[2].to_dict()
    assert event["evaluationFailedEventDetails"] == {
        "error": "States.QueryEvaluationError",
        "cause": result.cause,
        "location": "Output/a",
        "state": "P",
    }


def test_a_caught_evaluation_failure_is_still_recorded() -> None:
    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "Arguments": "{% $nothing %}",
                "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "S"}],
                "End": True,
            },
            "S": {"Type": "Succeed"},
        },
    }
    result = StateMachine(definition).execute({}, task_handler=lambda *_: 1)
    assert result.status == "SUCCEEDED"
    (failed,) = [e for e in result.history if e.type == "EvaluationFailed"]
    assert failed.details["location"] == "Arguments"
    assert "returned nothing (undefined)" in failed.details["cause"]


def test_jsonpath_runtime_errors_have_no_evaluation_failed_event() -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "InputPath": "$.gone", "End": True}},
    }
    result = StateMachine(definition).execute({})
    assert result.error == "States.Runtime"
    assert "EvaluationFailed" not in [e.type for e in result.history]


def test_a_failing_catcher_output_fails_the_state_with_its_prefix() -> None:
    def fail(*_: Any) -> Any:
        raise TaskFailure("E", "boom")

    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% $nothing %}", "Next": "S"}],
                "End": True,
            },
            "S": {"Type": "Succeed"},
        },
    }
    result = StateMachine(definition).execute({}, task_handler=fail)
    assert result.error == "States.QueryEvaluationError"
    assert result.cause == (
        "An error occurred while executing the state 'T' (entered at the event id #2). The "
        "JSONata expression '$nothing' specified for the field 'Catch[0]/Output' returned "
        "nothing (undefined)."
    )
    assert [e.type for e in result.history][-2:] == ["EvaluationFailed", "ExecutionFailed"]

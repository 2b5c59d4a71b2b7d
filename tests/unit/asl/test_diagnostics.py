"""Definition problems in AWS's format: ``CODE: message at /States/X/Field``.

The expected texts are Step Functions' own answers as published by users and emulator
maintainers who ran ``CreateStateMachine`` / ``ValidateStateMachineDefinition`` (see
docs/asl-conformance.md, "Validation errors").
"""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine
from stepdag.asl.diagnostics import Diagnostic, diagnostic


def refused(definition: Any) -> AslDefinitionError:
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    return info.value


def test_missing_target_and_unreachable_state_read_as_aws_reports_them() -> None:
    error = refused(
        {
            "StartAt": "pass1",
            "States": {
                "pass1": {"Type": "Pass", "Next": "pass3"},
                "pass2": {"Type": "Pass", "End": True},
            },
        }
    )
    assert error.aws_message == (
        "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: "
        'pass3 at /States/pass1/Next, MISSING_TRANSITION_TARGET: State "pass2" is not '
        "reachable. at /States/pass2'"
    )
    assert error.diagnostics[0] == Diagnostic(
        "MISSING_TRANSITION_TARGET", "Missing 'Next' target: pass3", "/States/pass1/Next"
    )
    # stepdag's own output: one line per problem, each with its location.
    assert str(error).splitlines()[1:] == [
        "  - MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at /States/pass1/Next",
        '  - MISSING_TRANSITION_TARGET: State "pass2" is not reachable. at /States/pass2',
    ]


def test_start_at_naming_no_state_is_a_missing_target_at_start_at() -> None:
    error = refused({"StartAt": "run", "States": {"other": {"Type": "Succeed"}}})
    assert error.problems[0] == "MISSING_TRANSITION_TARGET: Missing 'Next' target: run at /StartAt"


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("Default", "/States/C/Default"),
        ("Choices", "/States/C/Choices[0]/Next"),
    ],
)
def test_every_dangling_transition_says_next(field: str, where: str) -> None:
    choice: dict[str, Any] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "S"}],
        "Default": "S",
    }
    if field == "Default":
        choice["Default"] = "Gone"
    else:
        choice["Choices"][0]["Next"] = "Gone"
    error = refused({"StartAt": "C", "States": {"C": choice, "S": {"Type": "Succeed"}}})
    assert f"MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at {where}" in error.problems


def test_no_terminal_state_is_reported_alone_without_a_location() -> None:
    error = refused(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Pass", "Next": "A"},
                "Lost": {"Type": "Pass", "Next": "A"},
            },
        }
    )
    assert error.problems == ["MISSING_END_STATE: Workflow has no terminal state"]
    assert error.diagnostics[0].location is None


def test_duplicate_state_name() -> None:
    error = refused(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}],
                    "End": True,
                }
            },
        }
    )
    assert error.problems == [
        "DUPLICATE_STATE_NAME: Duplicate State name: P at /States/P/Branches[0]/States/P"
    ]


@pytest.mark.parametrize(("typ", "extra"), [("Pass", {}), ("Wait", {"Seconds": 1})])
def test_a_field_the_type_does_not_have_is_located_at_the_state(
    typ: str, extra: dict[str, Any]
) -> None:
    state = {"Type": typ, "TimeoutSeconds": 5, "End": True, **extra}
    error = refused({"StartAt": "S", "States": {"S": state}})
    assert error.problems == [
        "SCHEMA_VALIDATION_FAILED: Field 'TimeoutSeconds' is not supported at /States/S"
    ]


def test_missing_type_lists_the_required_field() -> None:
    error = refused({"StartAt": "S", "States": {"S": {"End": True}}})
    assert error.problems == [
        "SCHEMA_VALIDATION_FAILED: These fields are required: [Type] at /States/S"
    ]


def test_jsonata_only_field_in_a_jsonpath_state() -> None:
    state = {"Type": "Pass", "Output": {"a": 1}, "End": True}
    error = refused({"StartAt": "P", "States": {"P": state}})
    assert error.problems == [
        "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONPath', but field 'Output' "
        "is only supported for the 'JSONata' QueryLanguage at /States/P"
    ]


def test_an_item_processor_cannot_name_a_query_language() -> None:
    error = refused(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "QueryLanguage": "JSONPath",
                        "StartAt": "I",
                        "States": {"I": {"Type": "Succeed"}},
                    },
                    "End": True,
                }
            },
        }
    )
    assert error.problems == [
        "SCHEMA_VALIDATION_FAILED: Field 'QueryLanguage' is not supported "
        "at /States/M/ItemProcessor"
    ]


def _map_with_jsonata_state_inside(map_language: str | None) -> dict[str, Any]:
    mapped: dict[str, Any] = {
        "Type": "Map",
        "ItemProcessor": {
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Output": "{% 1 %}", "End": True}},
        },
        "End": True,
    }
    if map_language is not None:
        mapped["QueryLanguage"] = map_language
    return {"StartAt": "M", "States": {"M": mapped}}


@pytest.mark.parametrize("map_language", [None, "JSONata"])
def test_states_inside_a_map_follow_the_machine_not_the_map(map_language: str | None) -> None:
    # The Map's own QueryLanguage does not reach its ItemProcessor: P is a JSONPath state.
    error = refused(_map_with_jsonata_state_inside(map_language))
    assert error.problems == [
        "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONPath', but field 'Output' "
        "is only supported for the 'JSONata' QueryLanguage at /States/M/ItemProcessor/States/P"
    ]


def test_a_jsonata_map_in_a_jsonpath_machine_runs_jsonpath_iterations() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "QueryLanguage": "JSONata",
                "Items": "{% $states.input.xs %}",
                "ItemProcessor": {
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}},
                },
                "End": True,
            }
        },
    }
    result = StateMachine(definition).execute({"xs": [1, 2]})
    assert (result.status, result.output) == ("SUCCEEDED", [{"v": 1}, {"v": 2}])


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("a[1,2)", 'Expected "]", got ","'),
        ('"unterminated', "String literal must be terminated by a matching quote"),
        ("1 +", "Unexpected end of expression"),
    ],
)
def test_jsonata_that_does_not_parse(expression: str, message: str) -> None:
    state = {"Type": "Pass", "Output": "{% " + expression + " %}", "End": True}
    error = refused({"QueryLanguage": "JSONata", "StartAt": "Main", "States": {"Main": state}})
    assert error.problems == [f"INVALID_JSONATA_EXPRESSION: {message} at /States/Main/Output"]


def test_invalid_json_has_its_own_code() -> None:
    error = refused('{"StartAt": ')
    assert error.diagnostics[0].code == "INVALID_JSON_DESCRIPTION"
    assert error.diagnostics[0].location is None


def test_a_bare_message_names_its_field() -> None:
    assert diagnostic("States/A/Seconds: must be a non-negative integer") == Diagnostic(
        "SCHEMA_VALIDATION_FAILED",
        "The field 'Seconds' must be a non-negative integer",
        "/States/A/Seconds",
    )


def test_validate_state_machine_definition_answers_as_the_api_does() -> None:
    from stepdag.asl import validate_state_machine_definition

    ok = validate_state_machine_definition('{"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}')
    assert ok == {"result": "OK", "diagnostics": [], "truncated": False}
    loop = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}
    assert validate_state_machine_definition(loop) == {
        "result": "FAIL",
        # No location: the API leaves the field out.
        "diagnostics": [
            {
                "severity": "ERROR",
                "code": "MISSING_END_STATE",
                "message": "Workflow has no terminal state",
            }
        ],
        "truncated": False,
    }
    bad = validate_state_machine_definition({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})
    assert bad["result"] == "FAIL"
    assert bad["diagnostics"][0]["location"] == "/States/A"
    assert validate_state_machine_definition("{")["diagnostics"][0]["code"] == (
        "INVALID_JSON_DESCRIPTION"
    )

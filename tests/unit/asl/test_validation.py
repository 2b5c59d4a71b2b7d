"""Load-time validation: every problem reported at once, each naming its path."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine
from tests.support.asl_problems import located


def problems(definition: Any) -> list[str]:
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    assert str(info.value).startswith("Invalid State Machine Definition")
    return info.value.problems


def has(found: list[str], where: str, fragment: str) -> bool:
    return located(found, where, fragment)


def test_valid_definition_loads() -> None:
    StateMachine({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


def test_invalid_json_string() -> None:
    assert problems("{not json")[0].startswith("INVALID_JSON_DESCRIPTION: Expecting")


def test_all_problems_reported_together() -> None:
    found = problems(
        {
            "StartAt": "Missing",
            "States": {
                "A": {"Type": "Pass", "Next": "Nowhere"},
                "B": {"Type": "Task", "End": True},
                "C": {"Type": "Bogus"},
            },
        }
    )
    assert has(found, "StartAt", "MISSING_TRANSITION_TARGET: Missing 'Next' target: Missing")
    assert has(found, "States.A.Next", "Missing 'Next' target: Nowhere")
    assert has(found, "States.B", "These fields are required: [Resource]")
    assert has(found, "States.C.Type", "unknown")
    assert len(found) >= 4


@pytest.mark.parametrize(
    ("definition", "where", "fragment"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "StartAt", "required"),
        ({"StartAt": "A", "States": {}}, "States", "non-empty"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "Extra": 1},
            "",
            "SCHEMA_VALIDATION_FAILED: Field 'Extra' is not supported",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "TimeoutSeconds": 0},
            "TimeoutSeconds",
            "positive",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "QueryLanguage": "Python"},
            "QueryLanguage",
            "must be 'JSONPath' or 'JSONata'",
        ),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "States.A", "'Next' or 'End'"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": True}}},
            "States.A",
            "both",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": False}}},
            "States.A.End",
            "must be true",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}},
            "States.A.Next",
            "cannot have",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Fail", "End": True}}},
            "States.A.End",
            "cannot have",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}},
            "States.B",
            "not reachable",
        ),
        (
            {"StartAt": "A" * 81, "States": {"A" * 81: {"Type": "Succeed"}}},
            "States." + "A" * 81,
            "INVALID_STATE_NAME: State name exceeds 80 characters",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Pass", "Result": 1, "Retry": [], "End": True}},
            },
            "States.A",
            "Field 'Retry' is not supported",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": 5, "End": True}}},
            "States.A.InputPath",
            "string path",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "OutputPath": "nope", "End": True}}},
            "States.A.OutputPath",
            "must start with '$'",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": True}},
            },
            "States.A.ResultPath",
            "reference path",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Pass", "Parameters": {"x.$": 5}, "End": True}},
            },
            "States.A.Parameters.x.$",
            "must be a string",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "plain"}, "End": True}},
            },
            "States.A.Parameters.x.$",
            "JSONPath",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {"Type": "Task", "Resource": "r", "ResultSelector": [1], "End": True}
                },
            },
            "States.A.ResultSelector",
            "object",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {"Type": "Task", "Resource": "r", "TimeoutSeconds": -1, "End": True}
                },
            },
            "States.A.TimeoutSeconds",
            "positive",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": "r",
                        "TimeoutSeconds": 5,
                        "TimeoutSecondsPath": "$.t",
                        "End": True,
                    }
                },
            },
            "States.A",
            "both",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Task",
                        "Resource": "r",
                        "TimeoutSeconds": 5,
                        "HeartbeatSeconds": 5,
                        "End": True,
                    }
                },
            },
            "States.A.HeartbeatSeconds",
            "smaller",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Wait", "End": True}}},
            "States.A",
            "exactly one",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}},
            },
            "States.A",
            "exactly one",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": -1, "End": True}}},
            "States.A.Seconds",
            "non-negative",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Wait", "Timestamp": "tomorrow", "End": True}},
            },
            "States.A.Timestamp",
            "RFC 3339",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}},
            "States.A",
            "both 'Error' and 'ErrorPath'",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": []}}},
            "States.A.Choices",
            "non-empty",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "A"}],
                        "Default": "Z",
                    }
                },
            },
            "States.A.Default",
            "Missing 'Next' target: Z",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Parallel", "Branches": [], "End": True}}},
            "States.A.Branches",
            "non-empty",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Map", "End": True}}},
            "States.A",
            "ItemProcessor",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "MaxConcurrency": -1,
                        "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                        "End": True,
                    }
                },
            },
            "States.A.MaxConcurrency",
            "integer",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "ToleratedFailurePercentage": 101,
                        "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                        "End": True,
                    }
                },
            },
            "States.A.ToleratedFailurePercentage",
            "between 0 and 100",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "ItemReader": {},
                        "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                        "End": True,
                    }
                },
            },
            "States.A.ItemReader",
            "only allowed in a DISTRIBUTED Map",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Assign": {"1x": 1}, "End": True}}},
            "States.A.Assign.1x",
            "not a valid variable name",
        ),
    ],
)
def test_single_problem(definition: dict[str, Any], where: str, fragment: str) -> None:
    found = problems(definition)
    assert has(found, where, fragment), found


def retry_task(retry: Any = None, catch: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": "r", "End": True}
    if retry is not None:
        state["Retry"] = retry
    if catch is not None:
        state["Catch"] = catch
    return {"StartAt": "T", "States": {"T": state, "H": {"Type": "Succeed"}}}


@pytest.mark.parametrize(
    ("retry", "where", "fragment"),
    [
        ([{"ErrorEquals": []}], "States.T.Retry[0].ErrorEquals", "non-empty"),
        ([{"ErrorEquals": ["States.ALL", "X"]}], "States.T.Retry[0].ErrorEquals", "alone"),
        (
            [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}],
            "States.T.Retry[0].ErrorEquals",
            "last",
        ),
        ([{"ErrorEquals": ["States.Bogus"]}], "States.T.Retry[0].ErrorEquals", "reserved"),
        (
            [{"ErrorEquals": ["X"], "IntervalSeconds": 0}],
            "States.T.Retry[0].IntervalSeconds",
            "positive",
        ),
        (
            [{"ErrorEquals": ["X"], "MaxAttempts": -1}],
            "States.T.Retry[0].MaxAttempts",
            "non-negative",
        ),
        ([{"ErrorEquals": ["X"], "BackoffRate": 0.5}], "States.T.Retry[0].BackoffRate", ">= 1.0"),
        (
            [{"ErrorEquals": ["X"], "MaxDelaySeconds": 0}],
            "States.T.Retry[0].MaxDelaySeconds",
            "positive",
        ),
        (
            [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}],
            "States.T.Retry[0].JitterStrategy",
            "FULL or NONE",
        ),
        ([{"ErrorEquals": ["X"], "Bogus": 1}], "States.T.Retry[0].Bogus", "unknown"),
        ({"ErrorEquals": ["X"]}, "States.T.Retry", "array"),
    ],
)
def test_retry_validation(retry: Any, where: str, fragment: str) -> None:
    found = problems(retry_task(retry=retry))
    assert has(found, where, fragment), found


@pytest.mark.parametrize(
    ("catch", "where", "fragment"),
    [
        ([{"ErrorEquals": ["X"]}], "States.T.Catch[0]", "requires 'Next'"),
        (
            [{"ErrorEquals": ["X"], "Next": "Nope"}],
            "States.T.Catch[0].Next",
            "Missing 'Next' target: Nope",
        ),
        (
            [{"ErrorEquals": ["States.ALL"], "Next": "H"}, {"ErrorEquals": ["X"], "Next": "H"}],
            "States.T.Catch[0].ErrorEquals",
            "last",
        ),
        (
            [{"ErrorEquals": ["X"], "Next": "H", "ResultPath": "$..x"}],
            "States.T.Catch[0].ResultPath",
            "reference path",
        ),
    ],
)
def test_catch_validation(catch: Any, where: str, fragment: str) -> None:
    found = problems(retry_task(catch=catch))
    assert has(found, where, fragment), found


def test_catch_target_makes_state_reachable() -> None:
    StateMachine(retry_task(catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"}]))
    assert has(problems(retry_task()), "States.H", "not reachable")


def test_names_unique_across_branches_and_nested_paths() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}},
                    {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Outside"}}},
                ],
                "Next": "Outside",
            },
            "Outside": {"Type": "Succeed"},
        },
    }
    found = problems(definition)
    assert has(
        found, "States.P.Branches[0].States.P", "DUPLICATE_STATE_NAME: Duplicate State name: P"
    )
    # Branch states cannot transition out of their branch.
    assert has(found, "States.P.Branches[1].States.X.Next", "Missing 'Next' target: Outside")


def test_map_processor_validated_recursively() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "I",
                    "States": {"I": {"Type": "Pass"}, "J": {"Type": "Succeed"}},
                },
                "End": True,
            }
        },
    }
    found = problems(definition)
    assert has(found, "States.M.ItemProcessor.States.I", "'Next' or 'End'")
    assert has(found, "States.M.ItemProcessor.States.J", "not reachable")


def test_processor_config_allowed() -> None:
    StateMachine(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "INLINE"},
                        "StartAt": "I",
                        "States": {"I": {"Type": "Succeed"}},
                    },
                    "End": True,
                }
            },
        }
    )


def test_non_object_definition() -> None:
    # A problem of the whole definition has no location, as in AWS's diagnostics.
    assert problems([1]) == [
        "SCHEMA_VALIDATION_FAILED: The field 'definition' must be a JSON object"
    ]

"""Choice state: every operator, Path forms, combinators, errors."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine
from stepdag.asl.choice import compare, parse_timestamp, string_matches

from ._util import run


def choose(rule: dict[str, Any], data: Any) -> str:
    """Run a Choice with one rule; returns 'Yes', 'No' or the failure error."""
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": "Yes", "End": True},
            "No": {"Type": "Pass", "Result": "No", "End": True},
        },
    }
    result = run(definition, data)
    if result.status != "SUCCEEDED":
        return f"{result.error}"
    return str(result.output)


TS = "2024-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("op", "value", "operand", "expected"),
    [
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "abd", False),
        ("StringEquals", 1, "1", False),
        ("StringLessThan", "abc", "abd", True),
        ("StringLessThan", "abd", "abc", False),
        ("StringGreaterThan", "b", "a", True),
        ("StringLessThanEquals", "a", "a", True),
        ("StringGreaterThanEquals", "a", "b", False),
        ("NumericEquals", 3, 3.0, True),
        ("NumericEquals", True, 1, False),
        ("NumericEquals", "3", 3, False),
        ("NumericLessThan", 2, 3, True),
        ("NumericGreaterThan", 2, 3, False),
        ("NumericLessThanEquals", 3, 3, True),
        ("NumericGreaterThanEquals", 2.5, 3, False),
        ("BooleanEquals", True, True, True),
        ("BooleanEquals", 1, True, False),
        ("TimestampEquals", "2024-01-02T04:04:05+01:00", TS, True),
        ("TimestampLessThan", "2024-01-02T03:04:04.999Z", TS, True),
        ("TimestampGreaterThan", "2025-01-01T00:00:00Z", TS, True),
        ("TimestampLessThanEquals", TS, TS, True),
        ("TimestampGreaterThanEquals", "2020-01-01T00:00:00Z", TS, False),
        ("TimestampEquals", "not a time", TS, False),
        ("StringMatches", "log-2024.txt", "log-*.txt", True),
        ("StringMatches", "log-2024.csv", "log-*.txt", False),
    ],
)
def test_compare(op: str, value: Any, operand: Any, expected: bool) -> None:
    assert compare(op, value, operand) is expected
    want = "Yes" if expected else "No"
    assert choose({"Variable": "$.v", op: operand}, {"v": value}) == want
    path_op = op + "Path" if op != "StringMatches" else None
    if path_op:
        assert choose({"Variable": "$.v", path_op: "$.o"}, {"v": value, "o": operand}) == want


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("abc", "*", True),
        ("", "*", True),
        ("a*c", r"a\*c", True),
        ("abc", r"a\*c", False),
        ("a\\c", r"a\\c", True),
        ("foo.bar", "foo.*", True),
        ("fooXbar", "foo.bar", False),
        ("multi\nline", "multi*", True),
        ("abcabc", "*b*b*", True),
    ],
)
def test_string_matches(value: str, pattern: str, expected: bool) -> None:
    assert string_matches(value, pattern) is expected


@pytest.mark.parametrize(
    ("op", "data", "expected"),
    [
        ("IsNull", {"v": None}, True),
        ("IsNull", {"v": 0}, False),
        ("IsNull", {}, False),
        ("IsPresent", {"v": None}, True),
        ("IsPresent", {}, False),
        ("IsNumeric", {"v": 1.5}, True),
        ("IsNumeric", {"v": True}, False),
        ("IsNumeric", {"v": "1"}, False),
        ("IsString", {"v": ""}, True),
        ("IsString", {"v": None}, False),
        ("IsBoolean", {"v": False}, True),
        ("IsBoolean", {"v": 0}, False),
        ("IsTimestamp", {"v": TS}, True),
        ("IsTimestamp", {"v": "2024-01-02 03:04:05"}, False),
        ("IsTimestamp", {"v": 5}, False),
    ],
)
def test_type_tests(op: str, data: dict[str, Any], expected: bool) -> None:
    assert choose({"Variable": "$.v", op: True}, data) == ("Yes" if expected else "No")
    assert choose({"Variable": "$.v", op: False}, data) == ("No" if expected else "Yes")


def test_and_or_not_and_short_circuit() -> None:
    guarded = {
        "And": [
            {"Variable": "$.v", "IsPresent": True},
            {"Variable": "$.v", "NumericGreaterThan": 1},
        ]
    }
    assert choose(guarded, {"v": 2}) == "Yes"
    assert choose(guarded, {}) == "No"  # second rule never evaluated
    either = {"Or": [{"Variable": "$.a", "StringEquals": "x"}, {"Variable": "$.b", "IsNull": True}]}
    assert choose(either, {"a": "y", "b": None}) == "Yes"
    assert choose(either, {"a": "y", "b": 1}) == "No"
    negated = {"Not": {"Variable": "$.a", "StringEquals": "x"}}
    assert choose(negated, {"a": "x"}) == "No"
    assert choose(negated, {"a": "z"}) == "Yes"
    nested = {
        "Not": {
            "And": [
                {"Variable": "$.a", "NumericEquals": 1},
                {"Not": {"Variable": "$.b", "BooleanEquals": True}},
            ]
        }
    }
    assert choose(nested, {"a": 1, "b": False}) == "No"
    assert choose(nested, {"a": 1, "b": True}) == "Yes"


def test_missing_variable_is_runtime_error() -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.y", "NumericEquals": 3, "Next": "D"}],
                "Default": "D",
            },
            "D": {"Type": "Succeed"},
        },
    }
    result = run(definition, {"x": 1})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'C' (entered at the event id #2). "
        "Invalid path '$.y': The choice state's condition path references an invalid value."
    )


def test_missing_comparison_path_is_runtime_error() -> None:
    assert choose({"Variable": "$.v", "NumericEqualsPath": "$.nope"}, {"v": 1}) == "States.Runtime"


def test_no_choice_matched() -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "NumericEquals": 3, "Next": "D"}],
            },
            "D": {"Type": "Succeed"},
        },
    }
    result = run(definition, {"x": 5})
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "States.NoChoiceMatched",
        "No Matches!",
    )


def test_first_matching_rule_wins_and_io_paths() -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "InputPath": "$.in",
                "OutputPath": "$.keep",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 0, "Next": "A"},
                    {"Variable": "$.n", "NumericGreaterThan": 5, "Next": "B"},
                ],
            },
            "A": {"Type": "Pass", "End": True},
            "B": {"Type": "Fail"},
        },
    }
    result = run(definition, {"in": {"n": 10, "keep": {"k": 1}}})
    assert result.output == {"k": 1}


def test_context_object_variable() -> None:
    assert choose({"Variable": "$$.Execution.Name", "StringEquals": "ex"}, {}) == "No"
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$$.Execution.Name", "StringEquals": "ex", "Next": "Y"}],
            },
            "Y": {"Type": "Succeed"},
        },
    }
    assert run(definition, {}, name="ex").status == "SUCCEEDED"


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("2024-01-02T03:04:05.123456789Z") is not None
    assert parse_timestamp("2024-01-02T03:04:05+05:30") is not None
    assert parse_timestamp("2024-01-02t03:04:05z") is None
    assert parse_timestamp("2024-13-02T03:04:05Z") is None


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"Variable": "$.x", "Next": "D"}, "exactly one"),
        ({"Variable": "$.x", "NumericEquals": "3", "Next": "D"}, "must be a number"),
        ({"Variable": "$.x", "StringEquals": 3, "Next": "D"}, "must be a string"),
        ({"Variable": "$.x", "BooleanEquals": "true", "Next": "D"}, "must be a boolean"),
        ({"Variable": "$.x", "IsNull": 1, "Next": "D"}, "must be a boolean"),
        ({"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "D"}, "RFC 3339"),
        ({"Variable": "$.x", "NumericEqualsPath": "$.a[*]", "Next": "D"}, "reference path"),
        ({"Variable": "x", "NumericEquals": 1, "Next": "D"}, "reference path"),
        ({"NumericEquals": 1, "Next": "D"}, "requires a 'Variable'"),
        ({"Variable": "$.x", "NumericEquals": 1}, "top-level choice rule must have"),
        ({"And": [], "Next": "D"}, "non-empty array"),
        (
            {"And": [{"Variable": "$.x", "IsNull": True, "Next": "D"}], "Next": "D"},
            "only allowed on top-level",
        ),
        ({"Not": [{"Variable": "$.x", "IsNull": True}], "Next": "D"}, "must be an object"),
        ({"Variable": "$.x", "NumericEquals": 1, "StringEquals": "a", "Next": "D"}, "exactly one"),
        (
            {"Variable": "$.x", "NumericEquals": 1, "Next": "Nowhere"},
            "Missing 'Next' target: Nowhere",
        ),
        ({"Variable": "$.x", "Bogus": 1, "Next": "D"}, "unknown field 'Bogus'"),
    ],
)
def test_rule_validation(rule: dict[str, Any], fragment: str) -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "D"},
            "D": {"Type": "Succeed"},
        },
    }
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    assert any(fragment in p and " at /States/C/Choices[0]" in p for p in info.value.problems), (
        info.value.problems
    )

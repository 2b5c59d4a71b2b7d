"""Workflow variables: Assign in both query languages, scopes, limits and history."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StateMachine
from stepdag.asl.paths import compile_path
from stepdag.asl.variables import MAX_ASSIGN_BYTES, Scope
from tests.unit.asl._util import echo, run

JSONATA = {"QueryLanguage": "JSONata"}


def test_assign_expressions_all_see_the_values_from_state_entry() -> None:
    definition = {
        **JSONATA,
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"x": 1, "y": 10}, "Next": "B"},
            "B": {
                "Type": "Pass",
                "Assign": {"x": "{% $y %}", "y": "{% $x %}"},
                "Output": {"x": "{% $x %}", "y": "{% $y %}"},
                "Next": "C",
            },
            "C": {"Type": "Pass", "Output": {"x": "{% $x %}", "y": "{% $y %}"}, "End": True},
        },
    }
    result = run(definition)
    # B's Output still reads the old values; C sees the swap.
    assert result.output == {"x": 10, "y": 1}
    b_exit = [e for e in result.history if e.type == "PassStateExited"][1]
    assert b_exit.details["output"] == '{"x":1,"y":10}'
    assert b_exit.details["assignedVariables"] == {"x": "10", "y": "1"}


def test_jsonpath_assign_with_paths_intrinsics_and_context() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Pass",
                "Assign": {
                    "n.$": "$.n",
                    "s.$": "States.Format('n={}', $.n)",
                    "name.$": "$$.State.Name",
                },
                "Next": "B",
            },
            "B": {
                "Type": "Pass",
                "Parameters": {"n.$": "$n", "s.$": "$s", "name.$": "$name"},
                "End": True,
            },
        },
    }
    assert run(definition, {"n": 3}).output == {"n": 3, "s": "n=3", "name": "A"}


def test_variable_field_paths_and_choice_variable() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"cfg": {"limit": 5, "tags": ["a", "b"]}}, "Next": "C"},
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$cfg.limit", "NumericGreaterThan": 3, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Parameters": {"t.$": "$cfg.tags[1]"}, "End": True},
            "Small": {"Type": "Fail"},
        },
    }
    assert run(definition).output == {"t": "b"}


def test_unset_variable_in_jsonpath_fails_like_a_missing_path() -> None:
    definition = {
        "StartAt": "B",
        "States": {"B": {"Type": "Pass", "Parameters": {"v.$": "$nope"}, "End": True}},
    }
    result = run(definition)
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "$nope" in (result.cause or "")


def test_branches_read_outer_variables_and_their_assignments_stay_inside() -> None:
    definition = {
        **JSONATA,
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "P"},
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "B1",
                        "States": {
                            "B1": {
                                "Type": "Pass",
                                "Assign": {"inner": 2},
                                "Next": "B2",
                            },
                            "B2": {"Type": "Pass", "Output": "{% [$outer, $inner] %}", "End": True},
                        },
                    },
                    {
                        "StartAt": "C1",
                        "States": {"C1": {"Type": "Pass", "Output": "{% $outer %}", "End": True}},
                    },
                ],
                "Next": "After",
            },
            "After": {
                "Type": "Pass",
                "Output": {
                    "branches": "{% $states.input %}",
                    "outer": "{% $outer %}",
                    "inner": "{% $exists($inner) %}",
                },
                "End": True,
            },
        },
    }
    out = run(definition).output
    assert out == {"branches": [[1, 2], 1], "outer": 1, "inner": False}


def test_an_inner_scope_may_not_assign_an_outer_variable() -> None:
    inner = {"StartAt": "B", "States": {"B": {"Type": "Pass", "Assign": {"outer": 2}, "End": True}}}
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "P"},
            "P": {"Type": "Parallel", "Branches": [inner], "End": True},
        },
    }
    with pytest.raises(AslDefinitionError) as info:
        StateMachine(definition)
    assert info.value.problems == [
        "SCHEMA_VALIDATION_FAILED: variable 'outer' is already assigned in an outer scope "
        "at /States/P/Branches[0]/States/B/Assign/outer"
    ]


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("{% $states.input ", "improperly opened or closed"),
        (" {% $states.input %}", "improperly opened or closed"),
        ("{% $.a %}", "top level"),
        ("{% $states.errorOutput %}", "only available in a Catch"),
    ],
)
def test_expression_shapes_aws_rejects_at_creation(output: str, fragment: str) -> None:
    definition = {
        **JSONATA,
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": output, "End": True}},
    }
    with pytest.raises(AslDefinitionError, match=fragment):
        StateMachine(definition)


def test_states_result_only_where_there_is_a_result() -> None:
    bad = {
        **JSONATA,
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": "{% $states.result %}", "End": True}},
    }
    with pytest.raises(AslDefinitionError, match=r"states\.result is not available"):
        StateMachine(bad)
    task = {
        "Type": "Task",
        "Resource": "r",
        "Arguments": {"a": "{% $states.result %}"},
        "End": True,
    }
    with pytest.raises(
        AslDefinitionError,
        match=r"\$states\.result is not available in this field at /States/T/Arguments/a",
    ):
        StateMachine({**JSONATA, "StartAt": "T", "States": {"T": task}})


def test_map_iterations_read_outer_variables_distributed_ones_do_not() -> None:
    def definition(mode: str) -> dict[str, Any]:
        return {
            **JSONATA,
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Assign": {"k": 10}, "Next": "M"},
                "M": {
                    "Type": "Map",
                    "Items": [1, 2],
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": mode}
                        | ({"ExecutionType": "EXPRESS"} if mode == "DISTRIBUTED" else {}),
                        "StartAt": "X",
                        "States": {
                            "X": {
                                "Type": "Pass",
                                "Output": "{% $states.input * ($exists($k) ? $k : -1) %}",
                                "End": True,
                            }
                        },
                    },
                    "End": True,
                },
            },
        }

    assert run(definition("INLINE")).output == [10, 20]
    assert run(definition("DISTRIBUTED")).output == [-1, -2]


def test_catch_assign_sees_the_error_output() -> None:
    def failing(resource: str, parameters: Any, ctx: Any) -> Any:
        raise RuntimeError("x")

    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"err.$": "$.Error"},
                        "ResultPath": None,
                        "Next": "D",
                    }
                ],
                "End": True,
            },
            "D": {"Type": "Pass", "Parameters": {"err.$": "$err"}, "End": True},
        },
    }
    assert run(definition, {}, failing).output == {"err": "RuntimeError"}


def test_assign_over_the_per_state_quota_fails_with_data_limit_exceeded() -> None:
    big = "x" * MAX_ASSIGN_BYTES
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Assign": {"v.$": "$.big"}, "End": True}},
    }
    result = run(definition, {"big": big[: MAX_ASSIGN_BYTES // 2]})
    assert result.status == "SUCCEEDED"
    scope = Scope()
    with pytest.raises(Exception, match="maximum number of bytes"):
        scope.assign("A", {"v": big})


def test_variable_path_is_not_a_result_path() -> None:
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "ResultPath": "$x", "End": True}},
    }
    with pytest.raises(AslDefinitionError, match="cannot refer to a variable"):
        StateMachine(definition)


def test_variable_paths_parse() -> None:
    path = compile_path("$order.items[0].id")
    assert path.variable == "order"
    assert path.definite
    assert compile_path("$.order").variable is None
    assert compile_path("$$.Execution.Id").variable is None


def test_jsonata_task_assign_reads_the_result() -> None:
    definition = {
        **JSONATA,
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Arguments": {"a": 2},
                "Assign": {"got": "{% $states.result.a %}"},
                "Next": "U",
            },
            "U": {"Type": "Pass", "Output": "{% $got %}", "End": True},
        },
    }
    assert run(definition, {}, echo).output == 2

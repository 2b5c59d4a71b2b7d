"""Compiler: golden ASL for small adjacency-dict DAGs, AWS limits, committed files fresh."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from stepdag import CompileError, Retry
from stepdag.core.compile import (
    DEFAULT_FUNCTION_PLACEHOLDER,
    MAX_STATE_NAME,
    check_definition,
    compile_dag,
    to_json,
)
from stepdag.core.loader import discover
from stepdag.testing import workflow_from_adjacency

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[3]

CASES: dict[str, tuple[dict[str, list[str]], dict[str, dict[str, Any]]]] = {
    "chain": ({"a": [], "b": ["a"], "c": ["b"]}, {}),
    "diamond": ({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, {}),
    "n_shape": ({"A": [], "B": [], "C": ["A"], "D": ["A", "B"]}, {}),
    "options": (
        {"a": [], "b": ["a"], "c": ["b"]},
        {
            "b": {
                "retry": Retry(
                    max_attempts=3,
                    interval=2,
                    backoff_rate=1.5,
                    max_delay=30,
                    jitter="FULL",
                    errors=("TimeoutError",),
                ),
                "timeout": 30,
                "continue_on_failure": True,
                "when": lambda a: True,
            },
            "c": {"memory_mb": 2048, "lambda_timeout": 300},
        },
    ),
}


def _every_state(machine: dict[str, Any]):
    for name, state in machine["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _every_state(branch)
        if "ItemProcessor" in state:
            yield from _every_state(state["ItemProcessor"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    adj, options = CASES[case]
    text = compile_dag(workflow_from_adjacency(case, adj, options=options).build()).to_json()
    path = GOLDEN / f"{case}.asl.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.read_text() == text, f"golden {path.name} differs; UPDATE_GOLDEN=1 to accept"


def test_deterministic() -> None:
    adj = {f"n{i}": [f"n{j}" for j in range(i) if (i * 7 + j) % 3 == 0] for i in range(25)}
    texts = {compile_dag(workflow_from_adjacency("det", adj).build()).to_json() for _ in range(3)}
    assert len(texts) == 1


def test_tasks_carry_pointers_only() -> None:
    dag = workflow_from_adjacency("ptr", CASES["diamond"][0]).build()
    definition = compile_dag(dag).definition
    tasks = [s for _, s in _every_state(definition) if s["Type"] == "Task"]
    assert {t["Resource"] for t in tasks} == {DEFAULT_FUNCTION_PLACEHOLDER}
    for t in tasks:
        assert set(t["Parameters"]) <= {
            "workflow",
            "node",
            "phase",
            "execution.$",
            "attempt.$",
            "params.$",
            "index.$",
        }
    names = {n for n, s in _every_state(definition) if s["Type"] == "Task"}
    assert names == {"a", "b", "c", "d"}  # the console reads like the DAG


def test_retry_and_catch_from_options() -> None:
    adj, options = CASES["options"]
    d = compile_dag(workflow_from_adjacency("opts", adj, options=options).build()).definition
    states = dict(_every_state(d))
    user = states["b"]["Retry"][-1]
    assert user == {
        "ErrorEquals": ["TimeoutError"],
        "IntervalSeconds": 2,
        "MaxAttempts": 2,
        "BackoffRate": 1.5,
        "MaxDelaySeconds": 30,
        "JitterStrategy": "FULL",
    }
    assert states["b"]["Retry"][0]["MaxAttempts"] == 0  # invalid data is never retried
    assert states["b"]["TimeoutSeconds"] == 30
    assert states["b"]["Catch"][0]["Next"] == "b.failed"
    assert states["b.choice"]["Type"] == "Choice" and states["b.choice"]["Default"] == "b.skipped"
    assert states["c"]["Resource"] == "${NodeRunner2048mb300sFunctionArn}"


def test_map_compiles_to_plan_map_gather() -> None:
    from stepdag import Workflow

    wf = Workflow("mapper")

    @wf.node
    def src() -> list[int]:
        return [1, 2]

    @wf.node(map_over="src", max_concurrency=4)
    def each(src: int) -> int:
        return src

    d = compile_dag(wf.build()).definition
    states = dict(_every_state(d))
    assert states["each.plan"]["Next"] == "each"
    m = states["each"]
    assert m["Type"] == "Map" and m["MaxConcurrency"] == 4 and m["ItemsPath"] == "$.items"
    assert m["ItemProcessor"]["StartAt"] == "each.item"
    assert states["each.item"]["Parameters"]["index.$"] == "$.index"
    assert m["Next"] == "each.gather"


def test_long_names_are_shortened_uniquely() -> None:
    long = "n" + "x" * 63
    adj = {f"{long[:-1]}{i}": [] for i in range(3)} | {"z": [f"{long[:-1]}{i}" for i in range(3)]}
    d = compile_dag(workflow_from_adjacency("long", adj).build()).definition
    names = [n for n, _ in _every_state(d)]
    assert len(names) == len(set(names)) and all(len(n) <= MAX_STATE_NAME for n in names)


def test_check_definition_reports_every_problem() -> None:
    bad = {
        "StartAt": "missing",
        "States": {
            "a": {"Type": "Task", "Resource": "x", "Next": "nowhere"},
            "b" * 81: {"Type": "Pass"},
        },
    }
    with pytest.raises(CompileError) as info:
        check_definition(bad)
    msg = str(info.value)
    assert "StartAt 'missing'" in msg and "'nowhere' does not exist" in msg
    assert "longer than 80" in msg and "neither Next nor End" in msg


def test_definition_size_limit() -> None:
    huge = {
        "StartAt": "a",
        "States": {"a": {"Type": "Pass", "Result": "x" * 1_100_000, "End": True}},
    }
    with pytest.raises(CompileError, match="1 MiB"):
        check_definition(huge)


def test_history_warning_for_declared_fan_out() -> None:
    from stepdag import Workflow

    wf = Workflow("fanout")

    @wf.node
    def src() -> list[int]:
        return []

    @wf.node(map_over="src", max_items=5_000, retry=Retry(max_attempts=3))
    def each(src: int) -> int:
        return src

    compiled = compile_dag(wf.build())
    assert compiled.estimated_history_events > 25_000
    assert "25,000" in compiled.warnings[0]


def test_committed_asl_is_fresh() -> None:
    """statemachines/*.asl.json must match what the code compiles to (run `stepdag compile`)."""
    found = discover(REPO / "statemachines")
    assert len(found) >= 3
    for lw in found:
        dag = lw.workflow.build()
        path = REPO / "statemachines" / f"{dag.workflow}.asl.json"
        assert path.is_file(), f"{path} missing: run `stepdag compile`"
        assert path.read_text() == compile_dag(dag).to_json(), (
            f"{path.name} is stale: run `stepdag compile`"
        )
        json.loads(path.read_text())


def test_to_json_is_canonical() -> None:
    assert (
        to_json({"b": 1, "a": {"d": 2, "c": 3}})
        == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'
    )

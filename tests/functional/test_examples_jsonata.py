"""The compiler's JSONata output runs the example workflows exactly like its JSONPath output.

Same states, same transitions (StateEntered events), same node outcomes and workflow
output, on the local engine -- the JSONata definition is a rewrite, not a new design.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from stepdag.asl import HistoryEvent, VirtualClock
from stepdag.core.compile import compile_dag
from stepdag.core.loader import discover
from stepdag.core.model import Workflow
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {lw.workflow.name: lw.workflow for lw in discover(REPO / "statemachines")}


def example_input(name: str) -> Any:
    return json.loads((REPO / "statemachines" / "inputs" / f"{name}.json").read_text())


def _run(tmp_path: Path, dag: Any, name: str) -> tuple[Any, list[str]]:
    entered: list[str] = []

    def on_event(event: HistoryEvent) -> None:
        if event.type.endswith("StateEntered"):
            entered.append(event.details["name"])

    engine = LocalEngine(SqliteStore(tmp_path / f"{dag.query_language}.db"), clock=VirtualClock())
    rec = engine.run(dag, example_input(name), name="ex1", on_event=on_event)
    nodes = {n.node: (n.status, n.output) for n in engine.store.list_nodes(rec.execution_id)}
    return (rec.status, rec.output, nodes), sorted(entered)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_jsonata_machine_matches_jsonpath_machine(name: str, tmp_path: Path) -> None:
    dag = EXAMPLES[name].build()
    jsonata_dag = dataclasses.replace(dag, query_language="JSONata")
    jsonpath_def = compile_dag(dag).definition
    jsonata_def = compile_dag(jsonata_dag).definition
    assert jsonata_def["QueryLanguage"] == "JSONata"
    assert "Parameters" not in json.dumps(jsonata_def)
    assert _state_names(jsonata_def) == _state_names(jsonpath_def)

    jsonpath_result, jsonpath_entered = _run(tmp_path, dag, name)
    jsonata_result, jsonata_entered = _run(tmp_path, jsonata_dag, name)
    assert jsonpath_result[0].value == "SUCCEEDED"
    assert jsonata_result == jsonpath_result
    assert jsonata_entered == jsonpath_entered


def test_workflow_option_selects_the_language() -> None:
    wf = Workflow("w", query_language="JSONata")

    @wf.node
    def a() -> int:
        return 1

    assert compile_dag(wf.build()).definition["QueryLanguage"] == "JSONata"
    with pytest.raises(ValueError, match="query_language must be 'JSONPath' or 'JSONata'"):
        Workflow("w", query_language="XPath")


def _state_names(machine: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for name, state in machine["States"].items():
        names.append(name)
        for branch in state.get("Branches", []):
            names += _state_names(branch)
        if "ItemProcessor" in state:
            names += _state_names(state["ItemProcessor"])
    return sorted(names)

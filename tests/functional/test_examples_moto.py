"""Every example's compiled ASL runs to SUCCEEDED in moto's interpreter, with the real
node runner answering the Lambda Task in-process, and gives the same result as the
local engine (status, output, error, cause; node outputs in the store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stepdag.asl import StateMachine
from stepdag.core.compile import compile_dag
from stepdag.core.loader import discover
from stepdag.core.status import NodeStatus
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.sqlite import SqliteStore
from tests.support.lambdas import lambda_arn
from tests.support.moto_sfn import moto_sfn, substitute

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {lw.workflow.name: lw.workflow for lw in discover(REPO / "statemachines")}
FUNCTION = "stepdag-node-runner"

pytestmark = pytest.mark.moto


def example_input(name: str) -> Any:
    return json.loads((REPO / "statemachines" / "inputs" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_succeeds_in_moto_and_matches_local(name: str, tmp_path: Path) -> None:
    dag = EXAMPLES[name].build()
    committed = (REPO / "statemachines" / f"{name}.asl.json").read_text()
    assert committed == compile_dag(dag).to_json()
    definition = substitute(committed, {"NodeRunnerFunctionArn": lambda_arn(FUNCTION)})

    moto_store = SqliteStore(tmp_path / "moto.db")
    runner = NodeRunner({name: dag}, moto_store)
    calls: list[dict[str, Any]] = []

    def node_runner(fn_name: str, payload: Any) -> Any:
        assert fn_name == FUNCTION
        calls.append(payload)
        return runner.handle(payload)

    with moto_sfn(node_runner) as sfn:
        moto_result = sfn.run(definition, example_input(name), name=name, execution_name="ex1")
    assert moto_result["status"] == "SUCCEEDED", moto_result

    # Only pointers travelled: no payload carries node data.
    assert all(len(json.dumps(c)) < 2_000 for c in calls)

    # The same definition on stepdag's interpreter with the same runner code path.
    local_store = SqliteStore(tmp_path / "local.db")
    local_runner = NodeRunner({name: dag}, local_store)
    local_result = (
        StateMachine(definition, name=name)
        .execute(
            example_input(name),
            task_handler=lambda _resource, payload, _ctx: local_runner.handle(payload),
            name="ex1",
        )
        .to_contract()
    )
    assert local_result == moto_result

    # Identical node outcomes and outputs in both stores.
    (moto_exec,) = moto_store.list_executions().items
    (local_exec,) = local_store.list_executions().items
    moto_nodes = {n.node: n for n in moto_store.list_nodes(moto_exec.execution_id)}
    local_nodes = {n.node: n for n in local_store.list_nodes(local_exec.execution_id)}
    assert moto_nodes.keys() == local_nodes.keys() == set(dag.nodes)
    for node, m in moto_nodes.items():
        assert m.status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED)
        assert (m.status, m.output) == (local_nodes[node].status, local_nodes[node].output), node

    # And the engine proper (what `stepdag run` uses) agrees on the workflow's result.
    engine = LocalEngine(SqliteStore(tmp_path / "engine.db"))
    rec = engine.run(EXAMPLES[name], example_input(name), name="ex1")
    assert rec.status.value == "SUCCEEDED"
    sinks = dag.sinks
    expected = {s: moto_nodes[s].output for s in sinks}
    assert rec.output == (expected[sinks[0]] if len(sinks) == 1 else expected)

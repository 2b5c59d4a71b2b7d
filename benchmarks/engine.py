"""Engine per-node overhead: 1,000-node chain, 1,000-item Map, 1,000-wide Parallel, 100x10 grid.

For each shape, in one process:
* engine   — LocalEngine.run (interpreter + node runner + SQLite store, history kept);
* limit    — the same functions called directly plus the same SQLite writes the runner
             needs (claim + complete per node, in the same store implementation);
* moto     — moto's ASL interpreter running the same compiled ASL, with the same node
             runner answering its Lambda calls in-process.
Timings are best-of-N wall times of warm runs; results are ratios (engine ÷ limit,
moto ÷ engine). Goal: engine ≤ 3x the limit and ≥ 100x faster than moto.

``jsonata`` (not in the summary; moto cannot run JSONata): the chain compiled with
``query_language="JSONata"`` on the engine, and a 1,000-state Pass chain in the bare
interpreter transforming its input with Parameters (JSONPath) vs Output (JSONata),
each as a per-state cost and the JSONata ÷ JSONPath ratio.

Run: python -m benchmarks.engine [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import best_of, write_result
from stepdag import Workflow
from stepdag.asl import StateMachine, VirtualClock
from stepdag.core.compile import compile_dag
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.sqlite import SqliteStore
from stepdag.testing import workflow_from_adjacency


def chain(n: int) -> Workflow:
    adj = {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(n)}
    return workflow_from_adjacency("chain", adj, body=lambda name, kw: len(kw))


def wide(n: int) -> Workflow:
    """n independent nodes: one n-branch Parallel state."""
    adj: dict[str, list[str]] = {f"p{i}": [] for i in range(n)}
    return workflow_from_adjacency("wide", adj, body=lambda name, kw: len(kw))


def grid(rows: int, cols: int = 10) -> Workflow:
    """``cols`` chains of ``rows`` nodes (node (r, c) depends on (r-1, c)): a Parallel of
    chains — the 100 x 10 grid of the issue."""
    adj = {f"g{r}_{c}": ([f"g{r - 1}_{c}"] if r else []) for c in range(cols) for r in range(rows)}
    return workflow_from_adjacency("grid", adj, body=lambda name, kw: len(kw))


def fan(n: int) -> Workflow:
    wf = Workflow("fan")

    @wf.node
    def items(params: dict[str, int]) -> list[int]:
        return list(range(params["n"]))

    @wf.node(map_over="items", max_concurrency=0)
    def each(items: int) -> int:
        return items * 2

    return wf


def limit_dag(store: SqliteStore, wf: Workflow, tag: str) -> None:
    dag = wf.build()
    eid = f"limit-{tag}"
    store.create_execution(
        ExecutionRecord(
            execution_id=eid, name=eid, workflow=dag.workflow, started_at=datetime.now(UTC)
        )
    )
    for node in dag.nodes.values():
        key = NodeKey(eid, node.name)
        store.claim_node(key, attempt=0, owner="o", lease_seconds=60)
        out = node.fn(**dict.fromkeys(node.deps, 1))
        store.complete_node(key, owner="o", output=out)


def limit_fan(store: SqliteStore, n: int, tag: str) -> None:
    eid = f"limit-{tag}"
    store.create_execution(
        ExecutionRecord(execution_id=eid, name=eid, workflow="fan", started_at=datetime.now(UTC))
    )
    k = NodeKey(eid, "items")
    store.claim_node(k, attempt=0, owner="o", lease_seconds=60)
    items = list(range(n))
    store.complete_node(k, owner="o", output=items)
    node = NodeKey(eid, "each")
    store.set_items(node, n)
    for i in items:
        store.claim_node(node.item(i), attempt=0, owner="o", lease_seconds=60)
        store.complete_node(node.item(i), owner="o", output=i * 2)
    store.claim_node(node, attempt=0, owner="o", lease_seconds=60)
    store.complete_node(node, owner="o", output=store.get_item_outputs(eid, "each"))


def moto_run(wf: Workflow, input: Any, tmp: Path, tag: str) -> float:
    import time

    from tests.support.lambdas import lambda_arn
    from tests.support.moto_sfn import moto_sfn, substitute

    dag = wf.build()
    text = substitute(compile_dag(dag).to_json(), {"NodeRunnerFunctionArn": lambda_arn("r")})
    runner = NodeRunner({dag.workflow: dag}, SqliteStore(tmp / f"moto-{tag}.db"))
    with moto_sfn(lambda _fn, payload: runner.handle(payload)) as sfn:
        t = time.perf_counter()
        result = sfn.run(text, input, name=dag.workflow, execution_name=tag, timeout=3600)
        elapsed = time.perf_counter() - t
    assert result["status"] == "SUCCEEDED", result
    return elapsed


def measure(
    name: str,
    wf: Workflow,
    input: Any,
    nodes: int,
    limit: Any,
    tmp: Path,
    repeat: int,
    moto_nodes: int,
    moto_wf: Workflow,
    moto_input: Any,
) -> dict[str, Any]:
    engine = LocalEngine(SqliteStore(tmp / f"{name}.db"))
    engine.run(wf, input, name=f"{name}-warm")  # compile + warm caches
    runs = iter(range(1000))
    engine_s = best_of(lambda: _ok(engine.run(wf, input, name=f"{name}-{next(runs)}")), repeat)
    store = SqliteStore(tmp / f"{name}-limit.db")
    tags = iter(range(1000))
    limit_s = best_of(lambda: limit(store, next(tags)), repeat)
    moto_s = moto_run(moto_wf, moto_input, tmp, name)
    engine_per_node = engine_s / nodes
    moto_per_node = moto_s / moto_nodes
    return {
        "nodes": nodes,
        "engine_s": round(engine_s, 4),
        "limit_s": round(limit_s, 4),
        "engine_per_node_ms": round(engine_per_node * 1000, 4),
        "limit_per_node_ms": round(limit_s / nodes * 1000, 4),
        "engine_vs_limit_ratio": round(engine_s / limit_s, 3),
        "moto_nodes": moto_nodes,
        "moto_s": round(moto_s, 3),
        "moto_per_node_ms": round(moto_per_node * 1000, 3),
        "engine_vs_moto_speedup": round(moto_per_node / engine_per_node, 1),
    }


def pass_chain(n: int, language: str) -> dict[str, Any]:
    """n Pass states each rebuilding ``{"i": i + 1, "tag": tag}`` from their input."""
    states: dict[str, Any] = {}
    for i in range(n):
        if language == "JSONata":
            state: dict[str, Any] = {
                "Type": "Pass",
                "Output": {"i": "{% $states.input.i + 1 %}", "tag": "{% $states.input.tag %}"},
            }
        else:
            state = {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.i, 1)", "tag.$": "$.tag"},
            }
        state.update({"Next": f"s{i + 1}"} if i + 1 < n else {"End": True})
        states[f"s{i}"] = state
    return {"QueryLanguage": language, "StartAt": "s0", "States": states}


def measure_jsonata(
    n: int, repeat: int, tmp: Path, chain_jsonpath: dict[str, Any]
) -> dict[str, Any]:
    dag = dataclasses.replace(chain(n).build(), query_language="JSONata")
    engine = LocalEngine(SqliteStore(tmp / "chain-jsonata.db"))
    engine.run(dag, {}, name="warm")
    runs = iter(range(1000))
    engine_s = best_of(lambda: _ok(engine.run(dag, {}, name=f"j-{next(runs)}")), repeat)
    per_state: dict[str, float] = {}
    for language in ("JSONPath", "JSONata"):
        machine = StateMachine(pass_chain(n, language))
        machine.execute({"i": 0, "tag": "t"}, clock=VirtualClock())  # warm (compile caches)

        def once(machine: StateMachine = machine) -> None:
            result = machine.execute({"i": 0, "tag": "t"}, clock=VirtualClock())
            assert result.output == {"i": n, "tag": "t"}, result.to_contract()

        per_state[language] = best_of(once, repeat) / n
    return {
        "chain_engine_per_node_ms": round(engine_s / n * 1000, 4),
        "chain_vs_jsonpath_ratio": round(
            engine_s / n * 1000 / chain_jsonpath["engine_per_node_ms"], 3
        ),
        "pass_state_jsonpath_us": round(per_state["JSONPath"] * 1e6, 1),
        "pass_state_jsonata_us": round(per_state["JSONata"] * 1e6, 1),
        "pass_state_jsonata_vs_jsonpath_ratio": round(
            per_state["JSONata"] / per_state["JSONPath"], 3
        ),
    }


def _ok(rec: Any) -> None:
    assert rec.status.value == "SUCCEEDED", (rec.error, rec.cause)


def main(quick: bool = False) -> dict[str, Any]:
    n = 200 if quick else 1000
    moto_n = 50 if quick else 200  # moto is slow; per-node cost is what is compared
    repeat = 2 if quick else 3
    tmp = Path(tempfile.mkdtemp(prefix="stepdag-bench-"))
    results = {
        "chain": measure(
            "chain",
            chain(n),
            {},
            n,
            lambda st, t: limit_dag(st, chain(n), str(t)),
            tmp,
            repeat,
            moto_n,
            chain(moto_n),
            {},
        ),
        "map": measure(
            "map",
            fan(n),
            {"n": n},
            n,
            lambda st, t: limit_fan(st, n, str(t)),
            tmp,
            repeat,
            moto_n,
            fan(moto_n),
            {"n": moto_n},
        ),
        "parallel": measure(
            "parallel",
            wide(n),
            {},
            n,
            lambda st, t: limit_dag(st, wide(n), str(t)),
            tmp,
            repeat,
            moto_n,
            wide(moto_n),
            {},
        ),
        "grid": measure(
            "grid",
            grid(n // 10),
            {},
            n,
            lambda st, t: limit_dag(st, grid(n // 10), str(t)),
            tmp,
            repeat,
            moto_n,
            grid(moto_n // 10),
            {},
        ),
    }
    results_jsonata = measure_jsonata(n, repeat, tmp, results["chain"])
    summary = {
        "engine_vs_limit_ratio": max(r["engine_vs_limit_ratio"] for r in results.values()),
        "engine_vs_moto_speedup": min(r["engine_vs_moto_speedup"] for r in results.values()),
    }
    out = {
        "quick": quick,
        "goals": {"engine_vs_limit_ratio": "<= 3", "engine_vs_moto_speedup": ">= 100"},
        "summary": summary,
        **results,
        "jsonata": results_jsonata,
    }
    write_result("engine", out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(main(parser.parse_args().quick), indent=2))

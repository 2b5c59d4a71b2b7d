"""Makespan ÷ critical path on 200 random DAGs: the compiler's strategy vs level-by-level.

Corpus (seed 20261123): 100 series-parallel DAGs (`stepdag.testing.random_sp_dag`,
5-40 nodes) and 100 general DAGs (`random_dag`, 5-40 nodes, edge probability 0.1-0.5,
at most 3 predecessors per node); node durations are integers drawn uniformly from
1..10 (virtual seconds). For each DAG we compute

    ratio = makespan(compiled structure) / critical path

for the compiler's series-parallelisation ("sp") and for the naive baseline that runs
the DAG level by level ("levels"). A sample of DAGs is also executed on the local
interpreter in virtual time to confirm the structural makespan is what a run takes,
and state transitions per node are counted from the run history.

Run: python -m benchmarks.makespan [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
from typing import Any

from benchmarks.common import write_result
from stepdag.asl import StateMachine, VirtualClock
from stepdag.core.compile import compile_dag
from stepdag.core.graph import (
    critical_path,
    is_series_parallel,
    level_decompose,
    makespan,
    sp_decompose,
)
from stepdag.testing import random_dag, random_sp_dag, workflow_from_adjacency

SEED = 20261123


def corpus(
    n_each: int, seed: int = SEED
) -> list[tuple[str, dict[str, list[str]], dict[str, float]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n_each):
        adj = random_sp_dag(rng, rng.randint(5, 40))
        out.append((f"sp{i}", adj, {k: float(rng.randint(1, 10)) for k in adj}))
    for i in range(n_each):
        adj = random_dag(rng, rng.randint(5, 40), edge_prob=rng.uniform(0.1, 0.5), max_preds=3)
        out.append((f"dag{i}", adj, {k: float(rng.randint(1, 10)) for k in adj}))
    return out


def run_virtual(adj: dict[str, list[str]], durations: dict[str, float]) -> tuple[float, int]:
    """Execute the compiled ASL in virtual time; returns (makespan, StateEntered events)."""
    definition = compile_dag(workflow_from_adjacency("bench", adj).build()).definition
    clock = VirtualClock()

    def handler(resource: str, params: Any, ctx: Any) -> Any:
        ctx.clock.sleep(durations[params["node"]])
        return {"node": params["node"], "status": "SUCCEEDED"}

    t0 = clock.now()
    result = StateMachine(definition).execute({}, task_handler=handler, clock=clock)
    assert result.status == "SUCCEEDED", result.to_contract()
    entered = sum(1 for e in result.history if e.type.endswith("StateEntered"))
    return clock.now() - t0, entered


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
        "p95": round(sorted(values)[int(0.95 * (len(values) - 1))], 4),
        "max": round(max(values), 4),
        "exact_share": round(sum(v == 1.0 for v in values) / len(values), 4),
    }


def main(quick: bool = False) -> dict[str, Any]:
    n_each = 25 if quick else 100
    rows = []
    verified = 0
    transitions: list[float] = []
    for name, adj, w in corpus(n_each):
        cp = critical_path(adj, w)
        sp_tree, lvl_tree = sp_decompose(adj), level_decompose(adj)
        row = {
            "name": name,
            "nodes": len(adj),
            "series_parallel": is_series_parallel(adj),
            "sp": makespan(sp_tree, w) / cp,
            "levels": makespan(lvl_tree, w) / cp,
        }
        if len(rows) % 10 == 0:  # every 10th DAG: confirm by a real run in virtual time
            measured, entered = run_virtual(adj, w)
            assert abs(measured - makespan(sp_tree, w)) < 1e-9, (name, measured)
            transitions.append(entered / len(adj))
            verified += 1
        rows.append(row)
    sp_rows = [r for r in rows if r["series_parallel"]]
    nonsp = [r for r in rows if not r["series_parallel"]]
    result = {
        "seed": SEED,
        "quick": quick,
        "corpus": {
            "total": len(rows),
            "series_parallel": len(sp_rows),
            "not_series_parallel": len(nonsp),
        },
        "sp_dags": {
            "sp": summarise([r["sp"] for r in sp_rows]),
            "levels": summarise([r["levels"] for r in sp_rows]),
        },
        "non_sp_dags": {
            "sp": summarise([r["sp"] for r in nonsp]),
            "levels": summarise([r["levels"] for r in nonsp]),
        },
        "all": {
            "sp": summarise([r["sp"] for r in rows]),
            "levels": summarise([r["levels"] for r in rows]),
        },
        "verified_by_run": verified,
        "transitions_per_node_plain_dag": round(statistics.fmean(transitions), 4),
        "rows": rows,
    }
    write_result("makespan", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    r = main(parser.parse_args().quick)
    print("corpus:", r["corpus"])
    for group in ("sp_dags", "non_sp_dags", "all"):
        print(f"{group:12} sp: {r[group]['sp']}\n{'':12} levels: {r[group]['levels']}")
    print(
        "transitions/node:",
        r["transitions_per_node_plain_dag"],
        "verified by run:",
        r["verified_by_run"],
    )

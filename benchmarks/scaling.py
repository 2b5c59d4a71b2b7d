"""Compile/validate scaling: 100 / 1,000 / 10,000-node DAGs, plus workflow creation and
dependency resolution on stated sizes. Baseline (same process): building the adjacency
itself (the unavoidable O(V+E) floor), so growth is reported as a ratio.

Run: python -m benchmarks.scaling [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from benchmarks.common import best_of, write_result
from stepdag.core.compile import compile_dag
from stepdag.core.graph import sp_decompose, topo_order
from stepdag.testing import random_dag, workflow_from_adjacency


def layered(rng: random.Random, n: int, width: int = 20) -> dict[str, list[str]]:
    """Layers of ``width`` nodes, each with 1-3 predecessors in the previous layer."""
    adj: dict[str, list[str]] = {}
    names = [f"n{i}" for i in range(n)]
    for i, name in enumerate(names):
        layer = i // width
        prev = names[(layer - 1) * width : layer * width] if layer else []
        adj[name] = sorted(rng.sample(prev, min(len(prev), rng.randint(1, 3)))) if prev else []
    return adj


def measure(n: int, repeat: int) -> dict[str, Any]:
    rng = random.Random(n)
    adj = layered(rng, n)
    t = time.perf_counter()
    wf = workflow_from_adjacency(f"s{n}", adj)
    create_s = time.perf_counter() - t
    build_s = best_of(lambda: workflow_from_adjacency(f"s{n}", adj).build(), repeat)
    dag = wf.build()
    resolve_s = best_of(lambda: topo_order(dag.preds), repeat)
    decompose_s = best_of(lambda: sp_decompose(dag.preds), repeat)
    # Definitions over 1 MiB cannot deploy; compile still runs, so measure up to the check.
    try:
        compile_s = best_of(lambda: compile_dag(dag), repeat)
        compile_error = None
    except Exception as exc:  # recorded, e.g. "definition is 5,600,000 bytes"
        compile_s, compile_error = None, str(exc).splitlines()[-1].strip()
    floor_s = best_of(lambda: {k: list(v) for k, v in adj.items()}, repeat)
    return {
        "nodes": n,
        "edges": sum(len(v) for v in adj.values()),
        "workflow_creation_ms": round(create_s * 1000, 3),
        "validate_build_ms": round(build_s * 1000, 3),
        "dependency_resolution_ms": round(resolve_s * 1000, 3),
        "sp_decompose_ms": round(decompose_s * 1000, 3),
        "compile_ms": None if compile_s is None else round(compile_s * 1000, 3),
        "compile_error": compile_error,
        "adjacency_copy_floor_ms": round(floor_s * 1000, 4),
    }


def main(quick: bool = False) -> dict[str, Any]:
    sizes = [100, 1000] if quick else [100, 1000, 10_000]
    rows = [measure(n, 2 if quick else 3) for n in sizes]
    first = rows[0]
    for r in rows:
        factor = r["nodes"] / first["nodes"]
        r["validate_growth_vs_linear"] = round(
            r["validate_build_ms"] / first["validate_build_ms"] / factor, 3
        )
    small = random_dag(random.Random(7), 10)
    create = best_of(lambda: workflow_from_adjacency("ten", small), 5)
    resolve = best_of(lambda: topo_order(workflow_from_adjacency("ten", small).build().preds), 5)
    result = {
        "quick": quick,
        "rows": rows,
        "ten_node_workflow": {
            "creation_ms": round(create * 1000, 4),
            "build_and_resolve_ms": round(resolve * 1000, 4),
        },
    }
    write_result("scaling", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(main(parser.parse_args().quick), indent=2))

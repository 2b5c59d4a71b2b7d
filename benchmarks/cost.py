"""Cost per run on AWS: state transitions, Lambda invocations, DynamoDB reads/writes and
dollars, for each example workflow and for the random DAG corpus of ``benchmarks.makespan``.

Counting is ``benchmarks.fixtures.cost_counts.run`` (the compiled ASL in stepdag's
interpreter, the real ``NodeRunner`` on the real ``DynamoDbStore`` over moto, a fresh
runner per invocation = cold Lambda environments, the worst case for reads); this module
turns its counts into request units and dollars with the prices and assumptions of
docs/cost.md (us-east-1, as assumed on 2026-11-23):

* RRU: 1 per GetItem, Query and BatchGetItem (strongly consistent, items <= 4 KB);
* WRU: 1 per PutItem, 2 per item of a TransactWriteItems (items <= 1 KB);
* Lambda: 512 MB billed 100 ms per invocation + the request price.

Corpus DAGs run with ``{}`` as input and each node returning a small dict (see
``stepdag.testing.workflow_from_adjacency``); quick mode runs 2 of them (and skips
the etl example), full mode 200.

Run: python -m benchmarks.cost [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from typing import Any

from benchmarks.common import write_result
from benchmarks.fixtures.cost_counts import example_workflows, run
from benchmarks.makespan import SEED, corpus
from stepdag.testing import workflow_from_adjacency

# docs/cost.md, "Prices" and "Assumptions".
TRANSITION_USD = 0.025 / 1000
LAMBDA_GB_SECOND_USD = 0.0000133334
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
LAMBDA_MEMORY_GB = 0.5
LAMBDA_BILLED_S = 0.1
INVOCATION_USD = LAMBDA_MEMORY_GB * LAMBDA_BILLED_S * LAMBDA_GB_SECOND_USD + LAMBDA_REQUEST_USD
WRU_USD = 0.625 / 1_000_000
RRU_USD = 0.125 / 1_000_000
S3_PUT_USD = 0.005 / 1000
S3_GET_USD = 0.0004 / 1000
READS = ("GetItem", "Query", "BatchGetItem")


def totals(counted: dict[str, Any]) -> dict[str, Any]:
    """Sum ``cost_counts.run``'s per-(node, phase) counts into one run's bill."""
    requests: Counter[str] = Counter()
    for per_phase in counted["requests"].values():
        requests.update(per_phase)
    transitions = sum(counted["transitions"].values())
    invocations = sum(counted["invocations"].values())
    rru = sum(requests[f"dynamodb.{op}"] for op in READS)
    wru = requests["dynamodb.PutItem"] + 2 * requests["dynamodb.TransactWriteItems.items"]
    s3_put, s3_get = requests["s3.PutObject"], requests["s3.GetObject"]
    usd = {
        "step_functions": transitions * TRANSITION_USD,
        "lambda": invocations * INVOCATION_USD,
        "dynamodb_reads": rru * RRU_USD,
        "dynamodb_writes": wru * WRU_USD,
        "s3": s3_put * S3_PUT_USD + s3_get * S3_GET_USD,
    }
    total = sum(usd.values())
    return {
        "status": counted["status"],
        "transitions": transitions,
        "lambda_invocations": invocations,
        "dynamodb_rru": rru,
        "dynamodb_wru": wru,
        "s3_requests": s3_put + s3_get,
        "usd_per_run": round(total, 8),
        "usd_per_million_runs": round(total * 1e6, 2),
        "step_functions_share": round(usd["step_functions"] / total, 3) if total else None,
    }


def per_node(row: dict[str, Any], nodes: int) -> dict[str, Any]:
    return {
        "nodes": nodes,
        "transitions_per_node": round(row["transitions"] / nodes, 3),
        "usd_per_million_nodes": round(row["usd_per_run"] / nodes * 1e6, 2),
    }


def main(quick: bool = False) -> dict[str, Any]:
    from moto import mock_aws

    examples: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    with mock_aws():
        for name, (wf, params) in example_workflows().items():
            if quick and name == "etl":  # its 23-item Map is ~40% of the time; full runs it
                continue
            dag = wf.build()
            row = totals(run(dag, params, warm=False))
            examples[name] = {**row, **per_node(row, len(dag.nodes))}
        for name, adj, _durations in corpus(1 if quick else 100):
            dag = workflow_from_adjacency(f"corpus-{name}", adj).build()
            row = totals(run(dag, {}, warm=False))
            rows.append({"name": name, **row, **per_node(row, len(dag.nodes))})
    failed = [r["name"] for r in rows if r["status"] != "SUCCEEDED"]
    failed += [n for n, r in examples.items() if r["status"] != "SUCCEEDED"]
    per_m = [r["usd_per_million_nodes"] for r in rows]
    result = {
        "quick": quick,
        "seed": SEED,
        "prices": {
            "transition_usd": TRANSITION_USD,
            "invocation_usd": INVOCATION_USD,
            "rru_usd": RRU_USD,
            "wru_usd": WRU_USD,
            "assumptions": "us-east-1 as of 2026-11-23; Lambda 512 MB x 100 ms; cold runners",
        },
        "examples": examples,
        "corpus": {
            "dags": len(rows),
            "failed_runs": failed,
            "usd_per_million_nodes": {
                "mean": round(statistics.fmean(per_m), 2),
                "min": min(per_m),
                "max": max(per_m),
            },
            "transitions_per_node_mean": round(
                statistics.fmean(r["transitions_per_node"] for r in rows), 3
            ),
            "rows": rows,
        },
    }
    write_result("cost", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    r = main(parser.parse_args().quick)
    print(json.dumps({k: v for k, v in r.items() if k != "corpus"}, indent=2))
    print(json.dumps({k: v for k, v in r["corpus"].items() if k != "rows"}, indent=2))

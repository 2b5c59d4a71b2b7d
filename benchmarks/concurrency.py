"""1,000 concurrent executions of a 10-node workflow in one process.

Every execution is started at once from its own thread against one LocalEngine and one
SQLite store; we record each execution's latency (start → recorded end), the overall
throughput and every error. Baseline (same process): one execution alone, so the
latency figures can be read as a multiple of the uncontended latency.

Run: python -m benchmarks.concurrency [--quick] [--executions N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.sqlite import SqliteStore
from stepdag.testing import workflow_from_adjacency

TEN = {
    "a": [],
    "b": ["a"],
    "c": ["a"],
    "d": ["a"],
    "e": ["b", "c", "d"],
    "f": ["e"],
    "g": ["e"],
    "h": ["f", "g"],
    "i": ["h"],
    "j": ["i"],
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_one(executions: int, max_active: int | None) -> dict[str, Any]:
    wf = workflow_from_adjacency("ten", TEN, body=lambda name, kw: {"n": name, "k": len(kw)})
    engine = LocalEngine(
        SqliteStore(Path(tempfile.mkdtemp(prefix="stepdag-conc-")) / "c.db"), max_active=max_active
    )
    engine.run(wf, {}, name="warm")
    t = time.perf_counter()
    engine.run(wf, {}, name="alone")
    alone = time.perf_counter() - t

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def one(i: int) -> None:
        go.wait()
        start = time.perf_counter()
        try:
            rec = engine.run(wf, {"i": i}, name=f"c{i}")
            ok = rec.status.value == "SUCCEEDED"
            problem = None if ok else f"{rec.name}: {rec.status.value} {rec.error} {rec.cause}"
        except Exception as exc:  # counted, never hidden
            problem = f"c{i}: {type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if problem:
                errors.append(problem)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(executions)]
    for th in threads:
        th.start()
    t0 = time.perf_counter()
    go.set()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    ms = [x * 1000 for x in latencies]
    return {
        "executions": executions,
        "max_active": max_active,
        "nodes_per_execution": len(TEN),
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall_s": round(wall, 3),
        "throughput_executions_per_s": round(executions / wall, 1),
        "throughput_nodes_per_s": round(executions * len(TEN) / wall, 1),
        "latency_ms": {
            "p50": round(percentile(ms, 0.50), 1),
            "p95": round(percentile(ms, 0.95), 1),
            "p99": round(percentile(ms, 0.99), 1),
            "max": round(max(ms), 1),
            "mean": round(statistics.fmean(ms), 1),
        },
        "baseline_single_execution_ms": round(alone * 1000, 2),
    }


def main(executions: int = 1000) -> dict[str, Any]:
    """Unbounded (every execution runs at once) and admission-bounded (8 at a time)."""
    unbounded = run_one(executions, None)
    bounded = run_one(executions, 8)
    hundred = run_one(100, 8)
    result = {
        "unbounded": unbounded,
        "bounded_8": bounded,
        "hundred_bounded_8": hundred,
        "errors": unbounded["errors"] + bounded["errors"] + hundred["errors"],
        "concurrent_p95_ms": min(unbounded["latency_ms"]["p95"], bounded["latency_ms"]["p95"]),
    }
    write_result("concurrency", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100 executions")
    parser.add_argument("--executions", type=int, default=None)
    args = parser.parse_args()
    n = args.executions or (100 if args.quick else 1000)
    print(json.dumps(main(n), indent=2))

"""Shared benchmark plumbing: machine facts, JSON results, same-process baselines."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def results_dir() -> Path:
    """Where results go: benchmarks/results, or $STEPDAG_BENCH_RESULTS (quick runs in
    `make test` write to a temporary directory so committed figures are not replaced)."""
    return Path(os.environ.get("STEPDAG_BENCH_RESULTS", RESULTS))


def machine() -> dict[str, Any]:
    import pydantic

    try:
        import moto

        moto_version = moto.__version__
    except ImportError:
        moto_version = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pydantic": pydantic.VERSION,
        "moto": moto_version,
        "stepdag": __import__("stepdag").__version__,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (the least noisy estimator on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best

"""`make test` runs the benchmark harness once in --quick mode so it cannot rot.

Figures are not asserted against goals here (speed is measured by `make bench`, not
asserted in timed tests); the harness must run every benchmark, produce every headline
key, a report and its plots, and the correctness figures (lost/duplicated/mismatched
outputs after SIGKILL) must be zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "engine_vs_limit_ratio",
    "engine_vs_moto_speedup",
    "makespan_ratio_sp",
    "makespan_ratio_nonsp_mean",
    "makespan_ratio_nonsp_level_baseline_mean",
    "transitions_per_node",
    "concurrent_p95_ms",
    "killed_runs",
    "lost_outputs",
    "duplicated_outputs",
    "output_mismatches",
    "double_resume_lost_outputs",
    "double_resume_duplicated_outputs",
    "double_resume_output_mismatches",
    "cold_import_ratio",
    "fault_runs",
    "fault_unexpected_outcomes",
    "fault_hangs",
    "fuzz_examples",
    "fuzz_crashes",
    "store_sqlite_put_ratio",
    "store_sqlite_get_ratio",
    "cost_usd_per_million_nodes_corpus",
    "api_load_errors",
    "api_load_start_p95_ms",
    "api_load_unfinished_runs",
    "api_load_serve_vs_in_process_p95",
}


@pytest.mark.slow
def test_quick_harness(tmp_path: Path) -> None:
    env = {**os.environ, "STEPDAG_BENCH_RESULTS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert KEYS <= summary.keys()
    missing = [k for k in KEYS if summary[k] is None]
    assert not missing, missing
    assert summary["makespan_ratio_sp"] == 1.0
    assert (
        summary["lost_outputs"],
        summary["duplicated_outputs"],
        summary["output_mismatches"],
    ) == (0, 0, 0)
    assert (
        summary["double_resume_lost_outputs"],
        summary["double_resume_duplicated_outputs"],
        summary["double_resume_output_mismatches"],
    ) == (0, 0, 0)
    # Injected faults end in a retried success or the expected recorded error, never a
    # hang; fuzzed definitions/inputs raise only typed errors.
    assert summary["fault_runs"] > 0 and summary["fuzz_examples"] > 0
    assert (summary["fault_unexpected_outcomes"], summary["fault_hangs"]) == (0, 0)
    assert summary["fuzz_crashes"] == 0
    # 100 clients against `stepdag serve` for a few seconds: every answer as expected,
    # every run started ends and reads back.
    assert (summary["api_load_errors"], summary["api_load_unfinished_runs"]) == (0, 0)
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Headline figures" in report and "![engine.png](engine.png)" in report
    for png in ("makespan.png", "engine.png", "scaling.png"):
        assert (tmp_path / png).stat().st_size > 1000
    for heading in ("injected faults", "fuzzing", "Store throughput", "Cost per run", "API load"):
        assert heading in report, heading
    names = ("makespan", "engine", "concurrency", "scaling", "reliability_crash", "cold_start")
    names += ("reliability_faults", "reliability_fuzz", "store", "cost", "api_load")
    for name in names:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["machine"]["python"] and data["benchmark"] == name

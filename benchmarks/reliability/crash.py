"""Reliability: SIGKILL a running `stepdag run` at random points, resume, and count
lost outputs, duplicated outputs and final-output mismatches (goal: 0 / 0 / 0).

Same method as tests/functional/test_crash_resume.py, at benchmark scale (100 runs;
quick: 5), seeded. Lost = an output present at the kill but missing or different after
resume; duplicated = an output whose token was logged by more than one invocation;
mismatch = final output differs from an uninterrupted run's.

Run: python -m benchmarks.reliability.crash [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
WF = "tests.functional.workflows.crashy:wf"


def _cli(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STEPDAG_HOME": str(home),
        "CRASHY_LOG": str(home / "log"),
        "STEPDAG_NO_LIVE": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "stepdag", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _completed(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            if con.execute("SELECT count(*) FROM executions").fetchone()[0] == 0:
                return -1
            return int(
                con.execute("SELECT count(*) FROM nodes WHERE status='SUCCEEDED'").fetchone()[0]
            )
    except sqlite3.Error:
        return -1


def _outputs(store: SqliteStore, name: str) -> dict[str, Any]:
    rec = store.get_execution(name)
    return {
        f"{n.node}[{n.map_index}]": n.output
        for n in store.list_nodes(rec.execution_id, include_items=True)
        if n.status.value == "SUCCEEDED"
    }


def _strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip(x) for k, x in v.items() if k != "token"}
    if isinstance(v, list):
        return [_strip(x) for x in v]
    return v


def main(quick: bool = False, runs: int | None = None, seed: int = 20261123) -> dict[str, Any]:
    runs = runs or (5 if quick else 100)
    base = Path(tempfile.mkdtemp(prefix="stepdag-crash-"))
    ref_home = base / "ref"
    ref_home.mkdir()
    proc = _cli(ref_home, "run", WF, "--input", '{"items": 4}', "--name", "ref")
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    reference = _strip(SqliteStore(ref_home / "stepdag.db").get_execution("ref").output)
    rng = random.Random(seed)
    lost = duplicated = mismatches = resume_failures = killed_mid_run = 0
    failure_samples: list[dict[str, Any]] = []
    for i in range(runs):
        target, delay = rng.randint(0, 10), rng.uniform(0, 0.03)
        for retry in range(4):
            home = base / f"r{i}-{retry}"
            home.mkdir()
            db = home / "stepdag.db"
            victim = _cli(home, "run", WF, "--input", '{"items": 4}', "--name", "victim")
            deadline = time.monotonic() + 60
            while _completed(db) < target and victim.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(delay)
            victim.send_signal(signal.SIGKILL)
            victim.communicate(timeout=60)
            if SqliteStore(db).get_execution("victim").status.value != "SUCCEEDED":
                break
            # The run finished before the kill landed (inside the delay, or between its
            # last commit and its exit): no crash to test; start over and kill earlier.
            target, delay = target // 2, delay / 2
        else:
            raise RuntimeError(f"run {i}: could not kill the run before it finished")
        killed_mid_run += 1
        store = SqliteStore(db)
        before = _outputs(store, "victim")
        resume = _cli(home, "resume", "victim", "--workflow", WF)
        out, err = resume.communicate(timeout=300)
        if resume.returncode != 0:
            resume_failures += 1
            failure_samples.append(
                {"run": i, "stdout": out.decode()[-800:], "stderr": err.decode()[-1500:]}
            )
            continue
        after = _outputs(store, "victim")
        lost += sum(1 for k, v in before.items() if after.get(k) != v)
        tokens = [line.split()[1] for line in (home / "log").read_text().splitlines()]
        duplicated += sum(
            1 for v in after.values() if isinstance(v, dict) and tokens.count(v.get("token")) != 1
        )
        final = store.get_execution("victim")
        mismatches += final.status.value != "SUCCEEDED" or _strip(final.output) != reference
    result = {
        "quick": quick,
        "seed": seed,
        "killed_runs": runs,
        "killed_mid_run": killed_mid_run,
        "resume_failures": resume_failures,
        "lost_outputs": lost,
        "duplicated_outputs": duplicated,
        "output_mismatches": mismatches,
        "resume_failure_samples": failure_samples[:5],
    }
    write_result("reliability_crash", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.runs), indent=2))

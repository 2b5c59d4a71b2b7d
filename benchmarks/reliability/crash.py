"""Reliability: SIGKILL a running `stepdag run` at random points, resume, and count
lost outputs, duplicated outputs and final-output mismatches (goal: 0 / 0 / 0).

Same method as tests/functional/test_crash_resume.py, one implementation
(tests/support/crash.py), at benchmark scale (100 runs; quick: 5), seeded. Lost = an
output present at the kill but missing or different after resume; duplicated = an output
whose token was logged by more than one invocation; mismatch = final output differs from
an uninterrupted run's.

Run: python -m benchmarks.reliability.crash [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from stepdag.runtime.sqlite import SqliteStore
from tests.support.crash import (
    VICTIM,
    WF,
    cli,
    invocation_tokens,
    kill_mid_run,
    outputs,
    reference_output,
    strip_tokens,
)


def main(quick: bool = False, runs: int | None = None, seed: int = 20261123) -> dict[str, Any]:
    runs = runs or (5 if quick else 100)
    base = Path(tempfile.mkdtemp(prefix="stepdag-crash-"))
    ref_home = base / "ref"
    ref_home.mkdir()
    reference = reference_output(ref_home)
    rng = random.Random(seed)
    lost = duplicated = mismatches = resume_failures = killed_mid_run = 0
    failure_samples: list[dict[str, Any]] = []
    for i in range(runs):
        target, delay = rng.randint(0, 10), rng.uniform(0, 0.03)

        def fresh(attempt: int, i: int = i) -> Path:
            home = base / f"r{i}-{attempt}"
            home.mkdir()
            return home

        home = kill_mid_run(fresh, target, delay)
        if home is None:
            raise RuntimeError(f"run {i}: could not kill the run before it finished")
        killed_mid_run += 1
        store = SqliteStore(home / "stepdag.db")
        before = outputs(store, VICTIM)
        resume = cli(home, "resume", VICTIM, "--workflow", WF)
        out, err = resume.communicate(timeout=300)
        if resume.returncode != 0:
            resume_failures += 1
            failure_samples.append(
                {"run": i, "stdout": out.decode()[-800:], "stderr": err.decode()[-1500:]}
            )
            continue
        after = outputs(store, VICTIM)
        lost += sum(1 for k, v in before.items() if after.get(k) != v)
        tokens = invocation_tokens(home)
        duplicated += sum(
            1 for v in after.values() if isinstance(v, dict) and tokens.count(v.get("token")) != 1
        )
        final = store.get_execution(VICTIM)
        mismatches += final.status.value != "SUCCEEDED" or strip_tokens(final.output) != reference
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

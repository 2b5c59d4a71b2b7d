"""Reliability: SIGKILL a running `stepdag run` at random points, resume, and count
lost outputs, duplicated outputs and final-output mismatches (goal: 0 / 0 / 0).

The double-resume run does the same with *two* `stepdag resume` started at once: one
must run, the other be refused (exit 2, one line), and the figures must stay 0 / 0 / 0
with no node or item invoked more than twice (once before the kill, once after).

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
    invocations,
    kill_mid_run,
    outputs,
    reference_output,
    strip_tokens,
)

# The resumes of a double-resume run work this long per node, so they overlap.
DOUBLE_DELAY = "0.2"


def _series(
    base: Path, reference: Any, runs: int, rng: random.Random, *, double: bool
) -> dict[str, Any]:
    """``runs`` kill/resume rounds (two resumes at once when ``double``) and their figures."""
    lost = duplicated = mismatches = resume_failures = killed_mid_run = 0
    refused = over_invoked = 0
    failure_samples: list[dict[str, Any]] = []
    for i in range(runs):
        target, delay = rng.randint(0, 10), rng.uniform(0, 0.03)

        def fresh(attempt: int, i: int = i) -> Path:
            home = base / f"{'d' if double else 'r'}{i}-{attempt}"
            home.mkdir()
            return home

        home = kill_mid_run(fresh, target, delay)
        if home is None:
            raise RuntimeError(f"run {i}: could not kill the run before it finished")
        killed_mid_run += 1
        store = SqliteStore(home / "stepdag.db")
        before = outputs(store, VICTIM)
        env = {"CRASHY_DELAY": DOUBLE_DELAY} if double else {}
        procs = [cli(home, "resume", VICTIM, "--workflow", WF, env=env)]
        if double:
            procs.append(cli(home, "resume", VICTIM, "--workflow", WF, env=env))
        ended = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            ended.append((proc.returncode, out, err))
        codes = sorted(code for code, _, _ in ended)
        ok = codes == [0] if not double else codes == [0, 2] and _one_line(ended)
        refused += double and codes == [0, 2]
        if not ok:
            resume_failures += 1
            failure_samples += [
                {"run": i, "exit": c, "stdout": o.decode()[-800:], "stderr": e.decode()[-1500:]}
                for c, o, e in ended
            ]
            continue
        after = outputs(store, VICTIM)
        lost += sum(1 for k, v in before.items() if after.get(k) != v)
        tokens = invocation_tokens(home)
        duplicated += sum(
            1 for v in after.values() if isinstance(v, dict) and tokens.count(v.get("token")) != 1
        )
        over_invoked += sum(1 for n in invocations(home).values() if n > 2)
        final = store.get_execution(VICTIM)
        mismatches += final.status.value != "SUCCEEDED" or strip_tokens(final.output) != reference
    figures = {
        "killed_runs": runs,
        "killed_mid_run": killed_mid_run,
        "resume_failures": resume_failures,
        "lost_outputs": lost,
        "duplicated_outputs": duplicated,
        "output_mismatches": mismatches,
        "resume_failure_samples": failure_samples[:5],
    }
    if double:
        figures |= {"second_resume_refused": refused, "invoked_more_than_twice": over_invoked}
    return figures


def _one_line(ended: list[tuple[int | None, bytes, bytes]]) -> bool:
    """The refused resume said why in one line, without a traceback."""
    return all(
        len(err.decode().strip().splitlines()) == 1 and b"Traceback" not in err
        for code, _, err in ended
        if code == 2
    )


def main(quick: bool = False, runs: int | None = None, seed: int = 20261123) -> dict[str, Any]:
    runs = runs or (5 if quick else 100)
    base = Path(tempfile.mkdtemp(prefix="stepdag-crash-"))
    ref_home = base / "ref"
    ref_home.mkdir()
    reference = reference_output(ref_home)
    rng = random.Random(seed)
    single = _series(base, reference, runs, rng, double=False)
    double = _series(base, reference, runs, rng, double=True)
    result = {"quick": quick, "seed": seed, **single, "double_resume": double}
    write_result("reliability_crash", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.runs), indent=2))

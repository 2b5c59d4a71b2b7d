"""Cold start of the node-runner Lambda handler vs a minimal Powertools handler.

Each sample is a fresh interpreter (``python -c "import <module>"``), so nothing is
cached in-process; the best of N wall times is kept (the least noisy estimator on a
shared machine).  Measured, for the node runner and for
``benchmarks/fixtures/minimal_handler.py`` (boto3 + Powertools Logger/Metrics):

* ``import``       -- the module import: what every Lambda init pays.  Goal: <= 1.2x.
* ``first_call``   -- import, then what the first invocation builds before its first AWS
                      request (node runner: workflows, store, runner; both: a DynamoDB
                      client).  No network: clients resolve credentials on first request.
* ``first_call_traced`` -- the node runner's first_call with X-Ray tracing on (the lazy
                      Tracer imports aws_xray_sdk and patches botocore), for information.
* ``api_import`` / ``api_first_call`` -- the same for the API handler
                      (``stepdag.handlers.api``; its first request builds the routes, the
                      DynamoDB store, the workflows and the Step Functions service).

Times are reported raw and net of the interpreter's own start-up (``python -c pass``);
the ratios use net times, which is the stricter comparison.  ``-X importtime`` of the
handler lists the costliest imports, to see what to make lazy if the goal is missed.

Run: python -m benchmarks.cold_start [--quick] [--tree CHECKOUT]

``--tree`` measures another checkout's ``functions/`` (e.g. the tree before a change)
with this checkout's scripts; its results go to stdout only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]
HANDLER = "stepdag.handlers.node_runner"
API_HANDLER = "stepdag.handlers.api"
MINIMAL = "benchmarks.fixtures.minimal_handler"
GOAL = 1.2
# The API handler needs a state machine per workflow it finds in statemachines/ (one
# compiled <workflow>.asl.json each); the ARNs are never called.
_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}:live"
_WORKFLOWS = sorted(p.name.removesuffix(".asl.json") for p in REPO.glob("statemachines/*.asl.json"))

ENV = {
    "STEPDAG_TABLE_NAME": "stepdag-bench",
    "STEPDAG_STATE_MACHINES": json.dumps({wf: _ARN.format(wf) for wf in _WORKFLOWS}),
    # Required at cold start; the first request's GetSecretValue is stubbed below (one
    # network call on AWS, not measured here).
    "STEPDAG_PAGINATION_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-1",
    "POWERTOOLS_METRICS_NAMESPACE": "stepdag-bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

CLIENT = "import boto3; boto3.client('dynamodb')"
SCRIPTS = {
    "startup": "pass",
    "minimal_import": f"import {MINIMAL}",
    "handler_import": f"import {HANDLER}",
    "minimal_first_call": f"import {MINIMAL} as m; m.dynamodb()",
    "handler_first_call": f"import {HANDLER} as h; h.app.runner(); {CLIENT}",
    "handler_first_call_traced": f"import {HANDLER} as h; h.app.runner(); {CLIENT}",
    "api_import": f"import {API_HANDLER}",
    "api_first_call": (
        f"import {API_HANDLER} as h; h.app.key_reader = lambda arn: b'k' * 32; "
        f"h.app.resolver(); {CLIENT}"
    ),
}


def _env(script: str, tree: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEPDAG_", "POWERTOOLS_"))}
    env.update(ENV)
    # The benchmark fixtures come from this checkout, stepdag from the measured tree.
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "functions"), str(REPO)])
    if script == "handler_first_call_traced":
        # What a Lambda with active tracing looks like to Powertools.
        env.pop("POWERTOOLS_TRACE_DISABLED")
        env["LAMBDA_TASK_ROOT"] = str(REPO)
        env["AWS_XRAY_CONTEXT_MISSING"] = "IGNORE_ERROR"
    return env


def sample(name: str, *extra: str, tree: Path = REPO) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, *extra, "-c", SCRIPTS[name]],
        env=_env(name, tree),
        cwd=REPO,  # the Lambda task root: statemachines/ is discovered from here
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def importtime(module: str, top: int = 15, tree: Path = REPO) -> list[dict[str, Any]]:
    """The costliest imports (cumulative microseconds) of one fresh ``import module``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=_env("handler_import", tree),
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    rows: list[dict[str, Any]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        head, cumulative, name = line.split("|")
        rows.append(
            {
                "module": name.strip(),
                # One space after the bar, then two per nesting level.
                "depth": (len(name) - len(name.lstrip()) - 1) // 2,
                "self_us": int(head.removeprefix("import time:").strip()),
                "cumulative_us": int(cumulative),
            }
        )
    return sorted(rows, key=lambda r: -int(r["cumulative_us"]))[:top]


def main(quick: bool = False, tree: Path = REPO) -> dict[str, Any]:
    repeat = 5 if quick else 15
    for name in SCRIPTS:  # warm the .pyc caches and the OS page cache; not measured
        sample(name, tree=tree)
    best: dict[str, float] = {}
    samples: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    # Interleaved rounds, so drift in machine load hits every variant alike.
    for _ in range(repeat):
        for name in SCRIPTS:
            samples[name].append(sample(name, tree=tree))
    best = {name: min(times) for name, times in samples.items()}
    startup = best["startup"]
    net = {name: best[name] - startup for name in SCRIPTS if name != "startup"}
    ratio_import = net["handler_import"] / net["minimal_import"]
    ratio_first = net["handler_first_call"] / net["minimal_first_call"]
    out: dict[str, Any] = {
        "repeat": repeat,
        "goal": f"handler import <= {GOAL}x minimal handler import (net of interpreter start)",
        "seconds_best_wall": {k: round(v, 4) for k, v in best.items()},
        "seconds_best_net": {k: round(v, 4) for k, v in net.items()},
        "ratio_import": round(ratio_import, 3),
        "ratio_import_raw_wall": round(best["handler_import"] / best["minimal_import"], 3),
        "ratio_first_call": round(ratio_first, 3),
        "tracing_first_call_extra_s": round(
            net["handler_first_call_traced"] - net["handler_first_call"], 4
        ),
        "meets_goal": ratio_import <= GOAL,
        "handler_top_imports": importtime(HANDLER, tree=tree),
    }
    if tree == REPO:
        write_result("cold_start", out)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to measure")
    args = parser.parse_args()
    result = main(quick=args.quick, tree=args.tree.resolve())
    shown = {k: v for k, v in result.items() if k != "handler_top_imports"}
    print(json.dumps(shown, indent=2))

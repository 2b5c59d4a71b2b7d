"""Smoke test of a deployed (or served) stepdag: readiness, then one run to SUCCEEDED.

    python scripts/smoke.py --url http://127.0.0.1:8000          # stepdag serve
    python scripts/smoke.py --stack stepdag-staging [--region R]  # a deployed stack

1. ``GET <api>/v1/health/ready`` must answer 200 (every readiness check passed).  With
   ``--url`` that is the URL given; with ``--stack`` it is the stack's ``ApiUrl`` output,
   SigV4-signed like the CLI signs it (IAM auth is the default).
2. One run of ``--workflow`` (default ``etl``, input ``statemachines/inputs/<wf>.json``)
   started through the public surface (``stepdag.connect``) with an idempotency key, so
   a retried CI step joins the run it already started instead of starting another.
3. That run must end SUCCEEDED within ``--timeout`` seconds.

Prints one JSON line (``ok``, the target, the health answer, the run) on stdout; on a
failure also one line on stderr saying which step failed and why.  Exit 0 when every
step passed, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stepdag
from stepdag.cli.rest import api_base, default_auth
from stepdag.core.errors import StepdagError

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "statemachines" / "inputs"
OUTPUT_API_URL = "ApiUrl"  # infra/constants.py; the CLI's stack reader has no API URL


class SmokeFailed(Exception):
    """One step of the smoke test failed; ``step`` names it."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(" ".join(reason.split()))  # one line, whatever the cause said
        self.step = step


def stack_api_url(stack: str, region: str | None) -> str:
    import boto3  # the aws extra: only a --stack target needs it

    try:
        found = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)[
            "Stacks"
        ]
    except Exception as exc:  # botocore's errors: no stack, no credentials, no region
        raise SmokeFailed("health", f"cannot read CloudFormation stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in found[0].get("Outputs", [])}
    url = outputs.get(OUTPUT_API_URL)
    if not url:
        raise SmokeFailed(
            "health",
            f"stack {stack!r} has no {OUTPUT_API_URL} output (deployed with "
            "-c stepdag:api=false?): there is no API to probe",
        )
    return str(url)


def check_ready(url: str, *, region: str | None, timeout: float) -> dict[str, Any]:
    """``GET …/v1/health/ready``; 200 required.  Returns the status, latency and checks."""
    ready = api_base(url) + "/health/ready"
    req = urllib.request.Request(ready, method="GET", headers={"Accept": "application/json"})
    auth = default_auth(ready, token=None, region=region)
    if auth is not None:
        auth(req)
    began = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # http(s) only: parse() checks
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise SmokeFailed("health", f"GET {ready}: {getattr(exc, 'reason', exc)}") from None
    ms = round((time.monotonic() - began) * 1000, 1)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    checks = body.get("checks", []) if isinstance(body, dict) else []
    answer = {"status": status, "ms": ms, "checks": {c.get("name"): c.get("ok") for c in checks}}
    if status != 200:
        failed = [f"{c.get('name')}: {c.get('detail')}" for c in checks if not c.get("ok")]
        why = "; ".join(failed) or raw[:200].decode(errors="replace")
        raise SmokeFailed("health", f"GET {ready} answered {status}: {why}")
    return answer


def read_input(workflow: str, path: str | None) -> Any:
    file = Path(path) if path else INPUTS / f"{workflow}.json"
    if path is None and not file.exists():
        return {}  # a workflow without a sample input: the API's default
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise SmokeFailed("input", f"{file}: {exc}") from None


def one_run(deployment: stepdag.Deployment, args: argparse.Namespace) -> dict[str, Any]:
    payload = read_input(args.workflow, args.input)
    began = time.monotonic()
    try:
        run = deployment.start(args.workflow, payload, idempotency_key=args.key)
    except StepdagError as exc:
        raise SmokeFailed("start", str(exc)) from None
    try:
        run.wait(timeout=args.timeout)
    except StepdagError as exc:  # RunTimeout, or the target failing while we read
        raise SmokeFailed("wait", str(exc)) from None
    result = {
        "workflow": run.workflow,
        "execution": run.name,
        "execution_id": run.execution_id,
        "status": run.status.value,
        "seconds": round(time.monotonic() - began, 2),
    }
    if not run.succeeded:
        why = f"{run.error}: {run.cause}" if run.error else "no error recorded"
        raise SmokeFailed("run", f"execution {run.name!r} ended {run.status.value} ({why})")
    return result


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the REST API (stepdag serve, or the stage URL)")
    where.add_argument("--stack", help="a deployed stack: its outputs name everything")
    p.add_argument("--region", help="the stack's region (default: the SDK's)")
    p.add_argument("--workflow", default="etl")
    p.add_argument("--input", help="a JSON file (default statemachines/inputs/<wf>.json)")
    p.add_argument("--key", help="the idempotency key (default smoke-<utc time>-<random>)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the run")
    args = p.parse_args(argv)
    if args.url and not args.url.startswith(("http://", "https://")):
        p.error(f"--url must be an http(s) URL, got {args.url!r}")
    if args.key is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        args.key = f"smoke-{stamp}-{secrets.token_hex(3)}"
    return args


def main(argv: list[str] | None = None, *, out: Callable[[str], None] = print) -> int:
    args = parse(argv)
    target = args.url or f"stack:{args.stack}"
    result: dict[str, Any] = {"ok": False, "target": target}
    try:
        url = args.url or stack_api_url(args.stack, args.region)
        result["health"] = check_ready(url, region=args.region, timeout=30.0)
        remote = args.url or "aws"
        with stepdag.connect(remote, stack=args.stack, region=args.region) as deployment:
            result["run"] = one_run(deployment, args)
        result["ok"] = True
    except SmokeFailed as exc:
        result.update(step=exc.step, reason=str(exc))
        print(f"smoke: {target}: {exc.step} failed: {exc}", file=sys.stderr)
    except StepdagError as exc:  # connecting: no boto3, an unreadable stack
        result.update(step="connect", reason=str(exc))
        print(f"smoke: {target}: connect failed: {exc}", file=sys.stderr)
    out(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

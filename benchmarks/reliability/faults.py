"""Reliability: inject faults into node functions, the store and DynamoDB; every run must
end in a retried success or a recorded failure with the expected error name.

Scenarios (each run bounded in wall time; a run still going at the bound is a *hang*):

* ``exception_*``  -- a node raises ``FlakyError`` on its first attempts (retried per its
  ``Retry`` → SUCCEEDED) or always (→ FAILED, error ``FlakyError``, also on the node record);
* ``timeout_*``    -- a node sleeps past ``timeout=`` on the execution's VirtualClock (the
  interpreter abandons it with ``States.Timeout``; retried → SUCCEEDED, or FAILED);
* ``store_*``      -- a proxy store raises ``StoreUnavailable`` on N% of ``claim_node`` /
  ``complete_node`` calls, *before* the write or *after* it committed (the answer lost);
  with ``Retry`` the run must succeed with the right outputs or fail with
  ``StoreUnavailable``; without it, fail with ``StoreUnavailable`` whenever a fault hit;
* ``dynamodb_throttle`` -- moto's DynamoDB answers N% of calls with
  ``ProvisionedThroughputExceededException`` / ``ThrottlingException`` (a botocore
  ``before-call`` hook returning the error response); the DynamoDB store must raise
  ``StoreUnavailable`` for each, and the runner's caller (the ASL interpreter, with a
  ``Retry`` on ``StoreUnavailable``) must see a retryable failure and end SUCCEEDED.

Checked on every SUCCEEDED run: the execution output and every node's stored output equal
those of a fault-free run (no lost or corrupted output). Engine runs use a VirtualClock,
so retry back-off and timeouts cost no wall time.

Run: python -m benchmarks.reliability.faults [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from stepdag import Retry, Workflow
from stepdag.asl import StateMachine, TaskContext, TaskFailure, VirtualClock
from stepdag.core.compile import Targets, compile_dag
from stepdag.core.status import NodeStatus
from stepdag.runtime.engine import EngineHooks, LocalEngine, LocalRun, lambda_cause
from stepdag.runtime.errors import StoreUnavailable
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.sqlite import SqliteStore
from stepdag.testing import node_fn

SEED = 20261123
WALL_BOUND_S = 30.0  # far above any healthy run (< 1 s); reaching it counts as a hang
ARN = "arn:aws:lambda:us-east-1:123456789012:function:stepdag-node-runner"


class FlakyError(Exception):
    """What an injected node-function fault raises (its class name is the error name)."""


# ---------------------------------------------------------------- injection points


class FaultyStore:
    """Delegates to a store; ``claim_node``/``complete_node`` raise ``StoreUnavailable``
    with probability ``rate``. ``when="before"`` fails before the write (nothing stored);
    ``when="after"`` commits and then raises, the way a lost reply looks to the caller."""

    def __init__(self, inner: Any, rate: float, when: str, seed: int) -> None:
        self._inner = inner
        self._rate = rate
        self._when = when
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # nodes of a Parallel run on several threads
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _roll(self) -> bool:
        with self._lock:
            hit = self._rng.random() < self._rate
            self.injected += hit
            return hit

    def _faulty(self, method: str, *args: Any, **kwargs: Any) -> Any:
        hit = self._roll()
        if hit and self._when == "before":
            raise StoreUnavailable(f"injected: {method} before write")
        result = getattr(self._inner, method)(*args, **kwargs)
        if hit:
            raise StoreUnavailable(f"injected: {method} reply lost after commit")
        return result

    def claim_node(self, *args: Any, **kwargs: Any) -> Any:
        return self._faulty("claim_node", *args, **kwargs)

    def complete_node(self, *args: Any, **kwargs: Any) -> Any:
        return self._faulty("complete_node", *args, **kwargs)


# The task context of the Task a node function runs in: a node that "hangs" sleeps on the
# execution's (virtual, cancellable) clock, so an abandoned attempt wakes up at once.
_task = threading.local()


class TaskContextHook(EngineHooks):
    def invoke(
        self, run: LocalRun, payload: Any, ctx: TaskContext, proceed: Callable[[Any], Any]
    ) -> Any:
        _task.ctx = ctx
        return proceed(payload)


def chain_workflow(name: str, middle: Callable[[dict[str, Any]], Any], **options: Any) -> Workflow:
    """``a -> b -> c`` plus ``d`` parallel to ``b``; ``b`` runs ``middle`` and every node
    gets ``options``. Outputs are deterministic so any lost or mixed-up output shows."""
    wf = Workflow(name)
    deps = {"a": [], "b": ["a"], "d": ["a"], "c": ["b", "d"]}
    for node, ups in deps.items():
        if node == "b":
            body: Callable[[str, dict[str, Any]], Any] = lambda n, kw: middle(kw)  # noqa: E731
        else:
            body = lambda n, kw: {"node": n, "from": sorted(kw)}  # noqa: E731
        wf.add_node(node, node_fn(node, ups, body), **options)
    return wf


# ---------------------------------------------------------------- outcome checks


def bounded(fn: Callable[[], Any], seconds: float = WALL_BOUND_S) -> tuple[bool, Any]:
    """(finished, result or exception) of ``fn`` run on a daemon thread for ``seconds``."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return (not thread.is_alive()), (box[0] if box else None)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []

    def unexpected(self, what: str) -> None:
        self.counts["unexpected_outcomes"] += 1
        if len(self.samples) < 5:
            self.samples.append(what)

    def as_dict(self) -> dict[str, Any]:
        keys = ("runs", "retried_successes", "first_try_successes", "recorded_failures")
        out: dict[str, Any] = {k: self.counts[k] for k in keys}
        out |= {
            "unexpected_outcomes": self.counts["unexpected_outcomes"],
            "hangs": self.counts["hangs"],
            "faults_injected": self.counts["faults_injected"],
            "errors": dict(self.errors),
            "samples": self.samples,
        }
        return out


def check_engine_run(
    tally: Tally,
    engine: LocalEngine,
    wf: Workflow,
    name: str,
    expected_error: str,
    reference: dict[str, Any],
    retried: bool,
) -> None:
    tally.counts["runs"] += 1
    done, rec = bounded(lambda: engine.run(wf, {}, name=name))
    if not done:
        tally.counts["hangs"] += 1
        return
    if isinstance(rec, BaseException):
        tally.unexpected(f"{name}: raised {type(rec).__name__}: {rec}")
        return
    store = engine.store
    nodes = {n.node: n for n in store.list_nodes(rec.execution_id)}
    wrong = [
        k for k, n in nodes.items() if n.status is NodeStatus.SUCCEEDED and n.output != reference[k]
    ]
    if wrong:  # a stored output that is not what the function returned: lost/corrupted
        tally.unexpected(f"{name}: wrong stored outputs {wrong}")
    elif rec.status.value == "SUCCEEDED":
        missing = [k for k in reference if k not in nodes or nodes[k].output != reference[k]]
        if missing or rec.output != reference["c"]:
            tally.unexpected(f"{name}: SUCCEEDED but outputs missing {missing}")
        else:
            tally.counts["retried_successes" if retried else "first_try_successes"] += 1
    elif rec.status.value == "FAILED" and rec.error == expected_error:
        tally.counts["recorded_failures"] += 1
        tally.errors[rec.error] += 1
    else:
        tally.unexpected(f"{name}: {rec.status.value} {rec.error} {rec.cause}")


# ---------------------------------------------------------------- scenarios


def _reference() -> dict[str, Any]:
    engine = LocalEngine(SqliteStore(Path(tempfile.mkdtemp()) / "ref.db"))
    wf = chain_workflow("faults_ref", lambda kw: {"node": "b", "from": sorted(kw)})
    rec = engine.run(wf, {}, name="ref")
    return {n.node: n.output for n in engine.store.list_nodes(rec.execution_id)}


def function_faults(runs: int, base: Path, reference: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario, failures, retry, timeout, error in (
        ("exception_retried", 2, Retry(max_attempts=3, interval=5), None, "FlakyError"),
        ("exception_failed", 99, Retry(max_attempts=2, interval=5), None, "FlakyError"),
        ("exception_no_retry", 99, None, None, "FlakyError"),
        (
            "timeout_retried",
            1,
            Retry(max_attempts=3, errors=("States.Timeout",)),
            2,
            "States.Timeout",
        ),
        (
            "timeout_failed",
            99,
            Retry(max_attempts=2, errors=("States.Timeout",)),
            2,
            "States.Timeout",
        ),
    ):
        tally = Tally()
        for i in range(runs):
            calls = Counter[str]()
            lock = threading.Lock()

            def middle(kw: dict[str, Any], failures: int = failures, timeout: Any = timeout) -> Any:
                with lock:
                    calls["b"] += 1
                    n = calls["b"]
                if n <= failures:
                    tally.counts["faults_injected"] += 1
                    if timeout is None:
                        raise FlakyError(f"injected failure {n}")
                    ctx = _task.ctx
                    ctx.sleep(timeout * 10)  # virtual; ends early once abandoned
                    if ctx.is_cancelled:
                        # Lambda kills a function at its timeout: an abandoned attempt must
                        # not go on to store an output (it would win over the retry).
                        raise FlakyError("killed at timeout")
                return {"node": "b", "from": sorted(kw)}

            wf = chain_workflow(f"faults_{scenario}", middle, retry=retry, timeout=timeout)
            engine = LocalEngine(
                SqliteStore(base / f"{scenario}-{i}.db"),
                clock=VirtualClock(),
                hooks=[TaskContextHook()],
            )
            check_engine_run(tally, engine, wf, f"{scenario}-{i}", error, reference, True)
            if "exception" in scenario and failures == 99:
                # The failure must be on the node's record too, under the class name.
                rec = engine.store.get_execution(f"{scenario}-{i}")
                b = {n.node: n for n in engine.store.list_nodes(rec.execution_id)}.get("b")
                if b is None or b.status is not NodeStatus.FAILED or b.error != "FlakyError":
                    tally.unexpected(f"{scenario}-{i}: node b recorded {b}")
        out[scenario] = tally.as_dict()
    return out


def store_faults(runs: int, base: Path, reference: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    retry = Retry(max_attempts=8, interval=1, errors=("StoreUnavailable",))
    for scenario, rate, when, node_retry in (
        ("store_before_write_retried", 0.3, "before", retry),
        ("store_after_commit_retried", 0.3, "after", retry),
        ("store_before_write_no_retry", 0.2, "before", None),
        ("store_after_commit_no_retry", 0.2, "after", None),
    ):
        tally = Tally()
        for i in range(runs):
            wf = chain_workflow(
                f"faults_{scenario}", lambda kw: {"node": "b", "from": sorted(kw)}, retry=node_retry
            )
            store = FaultyStore(SqliteStore(base / f"{scenario}-{i}.db"), rate, when, seed=SEED + i)
            engine = LocalEngine(store, clock=VirtualClock())  # type: ignore[arg-type]
            check_engine_run(
                tally, engine, wf, f"{scenario}-{i}", "StoreUnavailable", reference, True
            )
            tally.counts["faults_injected"] += store.injected
            if node_retry is None and store.injected == 0:
                # No fault hit this run: a plain success, not a retried one.
                tally.counts["retried_successes"] -= 1
                tally.counts["first_try_successes"] += 1
        out[scenario] = tally.as_dict()
    return out


def _throttle_hook(rate: float, seed: int, hits: Counter[str]) -> Callable[..., Any]:
    from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]

    rng = random.Random(seed)
    codes = ("ProvisionedThroughputExceededException", "ThrottlingException")

    def hook(model: Any, **_: Any) -> Any:
        if rng.random() >= rate:
            return None  # let the call through to moto
        code = codes[hits.total() % 2]
        hits[code] += 1
        body = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {}}
        # Returning (http, parsed) from before-call short-circuits the request: botocore
        # raises the ClientError exactly as for a real 400 from DynamoDB.
        return AWSResponse("https://dynamodb", 400, {}, None), body

    return hook


def dynamodb_throttling(runs: int, rate: float) -> dict[str, Any]:
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws

    from stepdag.runtime.dynamodb import DynamoDbStore, create_table

    tally = Tally()
    translated = untranslated = 0
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")  # never throttled
        create_table(ddb, "stepdag-faults")
        clean = DynamoDbStore("stepdag-faults", client=ddb)
        throttled = boto3.client("dynamodb", region_name="us-east-1")
        hits: Counter[str] = Counter()
        # 1. the translation itself: every throttled call must surface as StoreUnavailable.
        throttled.meta.events.register("before-call.dynamodb", _throttle_hook(1.0, SEED, hits))
        store = DynamoDbStore("stepdag-faults", client=throttled)
        for op in (lambda: store.get_execution("nope"), lambda: store.list_nodes("x:y")):
            try:
                op()
                untranslated += 1
            except StoreUnavailable as exc:
                code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code")
                translated += code in hits
            except Exception:
                untranslated += 1
        # 2. whole runs through the node runner, Step Functions-style retries on top.
        retry = Retry(max_attempts=10, interval=1, errors=("StoreUnavailable",))
        wf_retry = chain_workflow(
            "faults_ddb", lambda kw: {"node": "b", "from": sorted(kw)}, retry=retry
        )
        dag = wf_retry.build()
        definition = compile_dag(dag, Targets(resource=lambda _n: ARN)).definition
        reference = _reference()
        for i in range(runs):
            client = boto3.client("dynamodb", region_name="us-east-1")
            hits_i: Counter[str] = Counter()
            client.meta.events.register(
                "before-call.dynamodb", _throttle_hook(rate, SEED + i, hits_i)
            )
            store = DynamoDbStore("stepdag-faults", client=client)
            runner = NodeRunner({dag.workflow: dag}, store)
            serial = threading.Lock()  # moto's DynamoDB backend is not thread-safe
            seen: Counter[str] = Counter()

            def handler(resource: str, params: Any, ctx: TaskContext, runner: Any = runner) -> Any:
                with serial:
                    try:
                        return runner.handle(params)
                    except Exception as exc:
                        seen[type(exc).__name__] += 1
                        raise TaskFailure(type(exc).__name__, lambda_cause(exc)) from exc

            tally.counts["runs"] += 1
            name = f"throttle-{i}"
            done, result = bounded(
                lambda name=name, handler=handler: StateMachine(
                    definition, name=dag.workflow
                ).execute({}, task_handler=handler, name=name, clock=VirtualClock())
            )
            tally.counts["faults_injected"] += hits_i.total()
            if not done:
                tally.counts["hangs"] += 1
                continue
            if isinstance(result, BaseException):
                tally.unexpected(f"{name}: raised {type(result).__name__}: {result}")
                continue
            other = {k: v for k, v in seen.items() if k != "StoreUnavailable"}
            if other:  # a throttle surfaced as something not retryable
                tally.unexpected(f"{name}: runner raised {other}")
            elif result.status == "SUCCEEDED":
                eid = clean.get_execution(name).execution_id
                nodes = {n.node: n.output for n in clean.list_nodes(eid)}
                if nodes != reference:
                    tally.unexpected(f"{name}: outputs {nodes}")
                else:
                    tally.counts["retried_successes" if seen else "first_try_successes"] += 1
            elif result.status == "FAILED" and result.error == "StoreUnavailable":
                tally.counts["recorded_failures"] += 1
                tally.errors[result.error] += 1
            else:
                tally.unexpected(f"{name}: {result.status} {result.error}")
    return {
        "rate": rate,
        "translation_checks": {"translated": translated, "not_translated": untranslated},
        **tally.as_dict(),
    }


def main(quick: bool = False, runs: int | None = None) -> dict[str, Any]:
    runs = runs or (3 if quick else 30)
    base = Path(tempfile.mkdtemp(prefix="stepdag-faults-"))
    started = time.perf_counter()
    reference = _reference()
    scenarios = {
        **function_faults(runs, base, reference),
        **store_faults(runs, base, reference),
        "dynamodb_throttle": dynamodb_throttling(runs, rate=0.15),
    }
    ddb = scenarios["dynamodb_throttle"]["translation_checks"]
    totals = {
        k: sum(s[k] for s in scenarios.values())
        for k in ("runs", "retried_successes", "recorded_failures", "unexpected_outcomes", "hangs")
    }
    totals["unexpected_outcomes"] += ddb["not_translated"]
    result = {
        "quick": quick,
        "seed": SEED,
        "runs_per_scenario": runs,
        "wall_bound_s": WALL_BOUND_S,
        "seconds": round(time.perf_counter() - started, 2),
        **totals,
        "scenarios": scenarios,
    }
    write_result("reliability_faults", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    args = parser.parse_args()
    r = main(args.quick, args.runs)
    print(json.dumps({k: v for k, v in r.items() if k != "scenarios"}, indent=2))
    for name, s in r["scenarios"].items():
        print(f"{name:32} {json.dumps({k: v for k, v in s.items() if k != 'samples'})}")
        for sample in s.get("samples", []):
            print("   ", sample)

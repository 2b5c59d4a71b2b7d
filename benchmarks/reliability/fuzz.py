"""Reliability: hypothesis fuzzing of workflow definitions, engine inputs and raw ASL.

Three targets, each with ``max_examples`` (quick 50, full 500), ``derandomize=True`` (the
examples are a function of the test, so runs are reproducible) and no example database:

* ``workflows`` -- random adjacency dicts (cycles, unknown deps, self-loops), node names
  (bad ones included), option values (bad ones included) and annotations. Contract:
  defining + ``Workflow.build()`` succeeds or raises ``DagValidationError``; a built DAG
  compiles (or raises ``CompileError`` for a limit) and ``stepdag.asl.StateMachine``
  accepts the ASL.
* ``engine_inputs`` -- random JSON to a workflow whose nodes take a typed ``params``.
  Contract: ``LocalEngine.create`` raises ``InputValidationError``, or the run ends
  SUCCEEDED, or FAILED with a named error.
* ``asl`` -- random ASL definitions (every state type, forward transitions so runs end;
  plus unstructured junk) and inputs. Contract: ``AslDefinitionError``, or an execution
  result with a terminal status, within a wall-clock bound.

Anything else is a *crash*; crashes must be 0. Samples of each are kept in the result.

Run: python -m benchmarks.reliability.fuzz [--quick]
"""

from __future__ import annotations

import argparse
import inspect
import json
import keyword
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from benchmarks.common import write_result
from stepdag import (
    Cache,
    CompileError,
    DagValidationError,
    InputValidationError,
    Retry,
    Workflow,
)
from stepdag.asl import AslDefinitionError, StateMachine, VirtualClock
from stepdag.core.compile import compile_dag
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.sqlite import SqliteStore
from stepdag.testing import node_fn

WALL_BOUND_S = 20.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class Outcomes:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.crash_samples: list[str] = []

    def crash(self, what: str) -> None:
        self.counts["crashes"] += 1
        if len(self.crash_samples) < 5:
            self.crash_samples.append(what[-1500:])

    def as_dict(self) -> dict[str, Any]:
        return {**dict(sorted(self.counts.items())), "crash_samples": self.crash_samples}


def run_examples(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], n: int) -> None:
    """Feed ``n`` derandomized examples to ``check`` (which records, never raises)."""

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def body(example: Any) -> None:
        check(example)

    body()


# ---------------------------------------------------------------- (a) workflow definitions


class Point(BaseModel):
    x: int
    y: str = ""


GOOD_NAMES = ["a", "b", "c", "d", "e", "load_1", "Transform"]
BAD_NAMES = ["", "1abc", "has space", "a-b", "class", "params", "x" * 90, "é", "States"]
ANNOTATIONS: list[Any] = [int, str, list[int], dict[str, int], Point, Any, None, "Nope", 3]
OPTION_VALUES: dict[str, list[Any]] = {
    "retry": [Retry(), Retry(max_attempts=0), Retry(max_attempts=200), Retry(interval=-1), 3],
    "timeout": [1, 0, -5, 10**9, "x"],
    "cache": [True, Cache(ttl=0), Cache(ttl=-1)],
    "max_concurrency": [0, 5, -1],
    "max_items": [None, 1, 0, -3, 10**7],
    "when": [lambda: True, bool, lambda zzz: zzz, "yes"],
    "on_upstream_skipped": ["skip", "run", "bogus"],
    "continue_on_failure": [True, False],
    "memory_mb": [128, 512, 1, 20_000],
    "lambda_timeout": [1, 900, 0, 5000],
    "after": [[], ["a"], ["nope"], "a"],
}

node_names = st.sampled_from(GOOD_NAMES) | st.sampled_from(BAD_NAMES)
workflow_spec = st.dictionaries(
    node_names,
    st.fixed_dictionaries(
        {
            "deps": st.lists(node_names | st.just("unknown_dep"), max_size=3),
            "annotations": st.lists(st.sampled_from(ANNOTATIONS), min_size=4, max_size=4),
            "options": st.dictionaries(
                st.sampled_from(sorted(OPTION_VALUES)),
                st.integers(0, 4),
                max_size=3,
            ),
            "map_over": st.none() | node_names,
        }
    ),
    min_size=1,
    max_size=8,
)


def build_workflow(spec: dict[str, Any]) -> Workflow:
    wf = Workflow("fuzz")
    for name, s in spec.items():
        deps = list(dict.fromkeys(s["deps"]))
        # A dependency that is not an identifier cannot be a parameter name in Python; it
        # can still be declared as an ordering-only dependency (``after=``).
        params = [d for d in deps if d.isidentifier() and not keyword.iskeyword(d)]
        fn = node_fn(name or "anon", params)
        anns = s["annotations"]  # random annotations: strings and non-types included
        hints = {d: anns[i % 3] for i, d in enumerate(params)}
        fn.__annotations__ = hints | {"return": anns[3]}
        fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(d, inspect.Parameter.KEYWORD_ONLY, annotation=hints[d])
                for d in params
            ],
            return_annotation=anns[3],
        )
        options = {k: OPTION_VALUES[k][i % len(OPTION_VALUES[k])] for k, i in s["options"].items()}
        if s["map_over"] is not None:
            options["map_over"] = s["map_over"]
        others = [d for d in deps if d not in params]
        if others:
            after = options.get("after", [])
            options["after"] = [*([after] if isinstance(after, str) else after), *others]
        wf.add_node(name, fn, **options)
    return wf


def check_workflow(out: Outcomes) -> Callable[[dict[str, Any]], None]:
    def check(spec: dict[str, Any]) -> None:
        out.counts["examples"] += 1
        try:
            dag = build_workflow(spec).build()
        except DagValidationError:
            out.counts["rejected_by_validation"] += 1
            return
        except Exception:
            out.crash(f"build {spec!r}: {traceback.format_exc()}")
            return
        out.counts["built"] += 1
        try:
            definition = compile_dag(dag).definition
        except CompileError:
            out.counts["compile_limit"] += 1
            return
        except Exception:
            out.crash(f"compile {spec!r}: {traceback.format_exc()}")
            return
        try:
            StateMachine(definition)
            out.counts["asl_accepted"] += 1
        except Exception:
            out.crash(f"asl {spec!r}: {traceback.format_exc()}")

    return check


# ---------------------------------------------------------------- (b) engine inputs


class Params(BaseModel):
    n: int
    divisor: int = 1
    tags: list[str] = []
    scale: float | None = None


typed = Workflow("fuzz_inputs")


@typed.node
def first(params: Params) -> list[int]:
    return list(range(max(0, min(params.n, 20))))


@typed.node
def ratio(params: Params, first: list[int]) -> float:
    # ZeroDivisionError for divisor 0: a node failure with a named error, by design.
    return sum(first) / params.divisor * (params.scale or 1.0)


@typed.node(map_over="first")
def each(first: int, params: Params) -> str:
    return params.tags[first] if first < len(params.tags) else str(first)


@typed.node
def last(ratio: float, each: list[str]) -> dict[str, Any]:
    return {"ratio": ratio, "items": len(each)}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
params_like = st.fixed_dictionaries(
    {"n": st.integers(-5, 30) | json_values},
    optional={
        "divisor": st.integers(-2, 2) | json_values,
        "tags": st.lists(st.text(max_size=5), max_size=5) | json_values,
        "scale": st.none() | st.floats(allow_nan=False, allow_infinity=False) | json_values,
        "extra": json_values,
    },
)


def check_input(out: Outcomes, engine: LocalEngine) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        out.counts["examples"] += 1
        try:
            rec = engine.create(typed, value)
        except InputValidationError:
            out.counts["rejected_input"] += 1
            return
        except Exception:
            out.crash(f"create {value!r}: {traceback.format_exc()}")
            return
        box: list[Any] = []
        thread = threading.Thread(target=lambda: box.append(engine.execute(rec)), daemon=True)
        thread.start()
        thread.join(WALL_BOUND_S)
        if not box:
            out.crash(f"run {value!r}: no result within {WALL_BOUND_S}s (hang or raised)")
            return
        final = box[0]
        if final.status.value == "SUCCEEDED":
            out.counts["succeeded"] += 1
        elif final.status.value == "FAILED" and final.error:
            out.counts[f"failed:{final.error}"] += 1
        else:
            out.crash(f"run {value!r}: {final.status} error={final.error!r}")

    return check


# ---------------------------------------------------------------- (c) raw ASL

STATE_TYPES = ["Pass", "Succeed", "Fail", "Choice", "Wait", "Task", "Parallel", "Map"]
GOOD_PATHS = ["$", "$.a", "$.b[0]", "$.missing"]
BAD_PATHS: list[Any] = ["a", "$..x", None, "$$.Execution.Id", 7]


@st.composite
def asl_definition(draw: Any) -> Any:
    """Mostly valid definitions (so they get executed), each state mutated 1 time in 8."""
    if draw(st.integers(0, 9)) == 5:  # unstructured junk
        return draw(json_values)
    n = draw(st.integers(1, 6))
    names = [f"S{i}" for i in range(n)]
    states: dict[str, Any] = {}

    def path(bad: bool) -> Any:
        return draw(st.sampled_from(BAD_PATHS if bad else GOOD_PATHS))

    for i, name in enumerate(names):
        # A middle value: hypothesis favours bounds, which would make most states bad.
        bad = draw(st.integers(0, 7)) == 5
        # Transitions only go forward, so every run ends.
        later = names[i + 1 :]
        kinds = STATE_TYPES if later else [k for k in STATE_TYPES if k != "Choice"]
        if later and not bad:  # a terminal state before the last leaves the rest unreachable
            kinds = [k for k in kinds if k not in ("Succeed", "Fail")]
        kind = draw(st.sampled_from([*kinds, "Bogus"] if bad else kinds))
        state: dict[str, Any] = {"Type": kind}
        if kind not in ("Succeed", "Fail", "Choice"):
            nxt = "Nowhere" if bad and draw(st.booleans()) else (later[0] if later else None)
            state.update({"Next": nxt} if nxt else {"End": True})
        for field in ("InputPath", "OutputPath", "ResultPath"):
            if kind not in ("Fail", "Succeed", "Choice", "Wait") and draw(st.booleans()):
                state[field] = path(bad and draw(st.booleans()))
        if kind == "Pass" and draw(st.booleans()):
            state["Result"] = draw(json_values)
        if kind in ("Pass", "Task") and draw(st.booleans()):
            fn = "States.Nope()" if bad else "States.Format('{}', $.a)"
            state["Parameters"] = {"v.$": path(False), "f.$": fn, "k": draw(json_values)}
        if kind == "Wait":
            field = draw(st.sampled_from(["Seconds", "SecondsPath", "Timestamp"]))
            good = {"Seconds": 5, "SecondsPath": "$.a", "Timestamp": "2026-01-01T00:00:00Z"}
            state[field] = draw(json_values) if bad else good[field]
        if kind == "Fail" and draw(st.booleans()):
            state["Error"] = draw(st.text(max_size=8))
        if kind == "Choice":
            target = draw(st.sampled_from(later))
            op = draw(st.sampled_from(["NumericEquals", "StringEquals", "IsPresent", "IsNull"]))
            operand = {"NumericEquals": 1, "StringEquals": "x"}.get(op, True)
            rule = {"Variable": path(False), op: draw(json_values) if bad else operand}
            state["Choices"] = [{**rule, "Next": target}]
            state["Default"] = target
        if kind == "Task":
            state["Resource"] = "arn:aws:lambda:us-east-1:123456789012:function:f"
            if draw(st.booleans()):
                attempts = draw(st.integers(-1, 3) if bad else st.integers(0, 3))
                state["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": attempts}]
            if draw(st.booleans()):
                state["TimeoutSeconds"] = draw(st.integers(0 if bad else 1, 5))
        if kind in ("Parallel", "Map"):
            # State names are unique across the whole machine, nested ones included.
            sub = {"StartAt": f"P{i}", "States": {f"P{i}": {"Type": "Pass", "End": True}}}
            if kind == "Parallel":
                state["Branches"] = [] if bad else [sub]
            else:
                state["ItemProcessor" if draw(st.booleans()) else "Iterator"] = sub
                if draw(st.booleans()):
                    state["ItemsPath"] = path(bad)
        states[name] = state
    start = "Nowhere" if draw(st.integers(0, 19)) == 5 else names[0]
    return {"StartAt": start, "States": states}


def task_handler(resource: str, params: Any, ctx: Any) -> Any:
    if isinstance(params, dict) and params.get("fail"):
        raise RuntimeError("task asked to fail")
    return params


def check_asl(out: Outcomes) -> Callable[[tuple[Any, Any]], None]:
    def check(example: tuple[Any, Any]) -> None:
        definition, value = example
        out.counts["examples"] += 1
        try:
            sm = StateMachine(definition)
        except AslDefinitionError:
            out.counts["rejected_definition"] += 1
            return
        except Exception:
            out.crash(f"define {definition!r}: {traceback.format_exc()}")
            return
        try:
            handle = sm.start(value, task_handler=task_handler, clock=VirtualClock(), seed=1)
            result = handle.wait(WALL_BOUND_S)
        except TimeoutError:
            out.crash(f"hang {definition!r} input {value!r}")
            return
        except Exception:
            out.crash(f"run {definition!r} input {value!r}: {traceback.format_exc()}")
            return
        if result.status in TERMINAL:
            out.counts[f"status:{result.status}"] += 1
        else:
            out.crash(f"status {result.status!r} for {definition!r}")

    return check


def main(quick: bool = False, examples: int | None = None) -> dict[str, Any]:
    n = examples or (50 if quick else 500)
    started = time.perf_counter()
    targets: dict[str, Outcomes] = {k: Outcomes() for k in ("workflows", "engine_inputs", "asl")}
    timings = {}
    t = time.perf_counter()
    run_examples(workflow_spec, check_workflow(targets["workflows"]), n)
    timings["workflows"] = time.perf_counter() - t
    engine = LocalEngine(SqliteStore(Path(tempfile.mkdtemp(prefix="stepdag-fuzz-")) / "f.db"))
    t = time.perf_counter()
    run_examples(params_like | json_values, check_input(targets["engine_inputs"], engine), n)
    timings["engine_inputs"] = time.perf_counter() - t
    t = time.perf_counter()
    run_examples(st.tuples(asl_definition(), json_values), check_asl(targets["asl"]), n)
    timings["asl"] = time.perf_counter() - t
    result = {
        "quick": quick,
        "max_examples": n,
        "derandomize": True,
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_by_target": {k: round(v, 2) for k, v in timings.items()},
        "examples": sum(o.counts["examples"] for o in targets.values()),
        "crashes": sum(o.counts["crashes"] for o in targets.values()),
        "targets": {k: o.as_dict() for k, o in targets.items()},
    }
    write_result("reliability_fuzz", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--examples", type=int)
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.examples), indent=2))

"""Property tests over random DAGs, executing the *compiled ASL*:

* every node runs exactly once, and only after all of its dependencies finished;
* for series-parallel DAGs the makespan (virtual time) equals the critical path;
* for any DAG the makespan equals what the compiler's series-parallel tree predicts
  (so the benchmark's tree-based figures describe real runs) and is >= the critical path.

The local interpreter runs with a VirtualClock (handlers "sleep" their duration in
virtual time), so makespans are exact and the tests are fast. A smaller sample runs in
moto's interpreter to cross-check ordering and exactly-once on the oracle.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepdag.asl import StateMachine, VirtualClock
from stepdag.core.compile import compile_dag
from stepdag.core.graph import critical_path, makespan
from stepdag.testing import random_dag, random_sp_dag, workflow_from_adjacency
from tests.support.lambdas import lambda_arn
from tests.support.moto_sfn import moto_sfn, substitute


def compiled(adj: dict[str, list[str]]) -> tuple[dict[str, Any], Any]:
    c = compile_dag(workflow_from_adjacency("prop", adj).build())
    text = substitute(c.to_json(), {"NodeRunnerFunctionArn": lambda_arn("runner")})
    return (json.loads(text) if isinstance(text, str) else text), c.tree


def run_virtual(
    adj: dict[str, list[str]], durations: dict[str, float]
) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    definition, _ = compiled(adj)
    clock = VirtualClock()
    spans: dict[str, list[tuple[float, float]]] = {}
    lock = threading.Lock()

    def handler(resource: str, params: Any, ctx: Any) -> Any:
        node = params["node"]
        start = ctx.clock.now()
        ctx.clock.sleep(durations[node])
        with lock:
            spans.setdefault(node, []).append((start, ctx.clock.now()))
        return {"node": node, "status": "SUCCEEDED"}

    t0 = clock.now()
    result = StateMachine(definition).execute({}, task_handler=handler, clock=clock)
    assert result.status == "SUCCEEDED", result.to_contract()
    return clock.now() - t0, spans


def check_order(adj: dict[str, list[str]], spans: dict[str, list[tuple[float, float]]]) -> None:
    assert sorted(spans) == sorted(adj)
    for node, runs in spans.items():
        assert len(runs) == 1, f"{node} ran {len(runs)} times"
        for dep in adj[node]:
            assert spans[dep][0][1] <= runs[0][0], f"{node} started before {dep} finished"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 18))
def test_sp_dags_run_once_in_order_with_makespan_equal_to_critical_path(seed: int, n: int) -> None:
    rng = random.Random(seed)
    adj = random_sp_dag(rng, n)
    durations = {k: float(rng.randint(1, 9)) for k in adj}
    total, spans = run_virtual(adj, durations)
    check_order(adj, spans)
    assert total == critical_path(adj, durations)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 18), p=st.floats(0.1, 0.6))
def test_any_dag_runs_once_in_order(seed: int, n: int, p: float) -> None:
    rng = random.Random(seed)
    adj = random_dag(rng, n, edge_prob=p)
    durations = {k: float(rng.randint(1, 9)) for k in adj}
    total, spans = run_virtual(adj, durations)
    check_order(adj, spans)
    _, tree = compiled(adj)
    assert total == makespan(tree, durations) >= critical_path(adj, durations)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 10))
def test_moto_runs_compiled_dags_once_in_order(seed: int, n: int) -> None:
    adj = random_dag(random.Random(seed), n, edge_prob=0.4)
    definition, _ = compiled(adj)
    ticks = itertools.count()
    spans: dict[str, list[tuple[int, int]]] = {}
    lock = threading.Lock()

    def runner(_fn: str, payload: Any) -> Any:
        with lock:
            start = next(ticks)
        with lock:
            spans.setdefault(payload["node"], []).append((start, next(ticks)))
        return {"node": payload["node"], "status": "SUCCEEDED"}

    with moto_sfn(runner) as sfn:
        result = sfn.run(definition, {}, name="prop", execution_name=f"p{seed}")
    assert result["status"] == "SUCCEEDED", result
    check_order(adj, spans)  # type: ignore[arg-type]

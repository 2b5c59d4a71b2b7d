"""The local engine end to end: retries, skips, cache, continue-on-failure, rerun, resume,
duplicate deliveries — each checked through the store, not just the final status."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stepdag import Cache, Retry, Workflow
from stepdag.asl import VirtualClock
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.records import NodeKey
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.sqlite import SqliteStore


class Flaky(Exception):
    pass


class Out(BaseModel):
    n: int


@pytest.fixture()
def engine(tmp_path: Path) -> LocalEngine:
    # Virtual clock: retry back-off costs no wall time.
    return LocalEngine(SqliteStore(tmp_path / "s.db"), clock=VirtualClock())


def nodes(engine: LocalEngine, rec: Any) -> dict[str, Any]:
    return {n.node: n for n in engine.store.list_nodes(rec.execution_id)}


def test_retry_until_success_counts_attempts(engine: LocalEngine) -> None:
    calls = Counter[str]()
    wf = Workflow("retrying")

    @wf.node(retry=Retry(max_attempts=4, interval=2, backoff_rate=2.0, errors=(Flaky,)))
    def shaky() -> int:
        calls["shaky"] += 1
        if calls["shaky"] < 3:
            raise Flaky(f"attempt {calls['shaky']}")
        return 7

    rec = engine.run(wf, name="r1")
    assert rec.status is RunStatus.SUCCEEDED and rec.output == 7
    n = nodes(engine, rec)["shaky"]
    assert (n.status, n.attempts, calls["shaky"]) == (NodeStatus.SUCCEEDED, 3, 3)


def test_non_matching_error_is_not_retried_and_names_the_exception(engine: LocalEngine) -> None:
    calls = Counter[str]()
    wf = Workflow("noretry")

    @wf.node(retry=Retry(max_attempts=5, errors=(Flaky,)))
    def boom() -> int:
        calls["boom"] += 1
        raise ValueError("bad value 42")

    rec = engine.run(wf, name="n1")
    assert rec.status is RunStatus.FAILED and rec.error == "ValueError"
    assert "bad value 42" in (rec.cause or "") and calls["boom"] == 1


def test_invalid_output_names_node_and_is_never_retried(engine: LocalEngine) -> None:
    calls = Counter[str]()
    wf = Workflow("badout")

    @wf.node(retry=Retry(max_attempts=3))
    def wrong() -> Out:
        calls["wrong"] += 1
        return {"n": "not a number"}  # type: ignore[return-value]

    rec = engine.run(wf, name="b1")
    assert rec.status is RunStatus.FAILED and rec.error == "StepdagInvalidOutput"
    assert "node 'wrong'" in (rec.cause or "") and calls["wrong"] == 1


def test_when_false_skips_and_skip_propagates_unless_opted_in(engine: LocalEngine) -> None:
    wf = Workflow("skips")

    @wf.node
    def a() -> int:
        return 0

    @wf.node(when=lambda a: a > 0)
    def b(a: int) -> int:
        return a

    @wf.node
    def c(b: int) -> int:
        return b

    @wf.node(on_upstream_skipped="run")
    def d(b: int | None, a: int) -> str:
        return f"b={b}"

    rec = engine.run(wf, name="s1")
    n = nodes(engine, rec)
    assert n["b"].status is NodeStatus.SKIPPED and n["b"].skip_reason == "condition is false"
    assert n["c"].status is NodeStatus.SKIPPED and "upstream skipped: b" in (
        n["c"].skip_reason or ""
    )
    assert n["d"].status is NodeStatus.SUCCEEDED and n["d"].output == "b=None"
    assert rec.status is RunStatus.SUCCEEDED and rec.output == {"c": None, "d": "b=None"}


def test_continue_on_failure_records_failure_and_carries_on(engine: LocalEngine) -> None:
    wf = Workflow("carryon")

    @wf.node(continue_on_failure=True)
    def fragile() -> int:
        raise RuntimeError("nope")

    @wf.node
    def after_it(fragile: int) -> int:
        return fragile

    @wf.node
    def independent() -> int:
        return 5

    rec = engine.run(wf, name="c1")
    n = nodes(engine, rec)
    assert rec.status is RunStatus.SUCCEEDED
    assert n["fragile"].status is NodeStatus.FAILED and n["fragile"].error == "RuntimeError"
    assert n["after_it"].status is NodeStatus.SKIPPED
    assert n["independent"].output == 5


def test_cache_hit_skips_the_function(engine: LocalEngine) -> None:
    calls = Counter[str]()
    wf = Workflow("cached")

    @wf.node(cache=Cache(ttl=60, version="1"))
    def expensive(params: dict[str, int]) -> int:
        calls["expensive"] += 1
        return params["x"] * 2

    first = engine.run(wf, {"x": 2}, name="k1")
    second = engine.run(wf, {"x": 2}, name="k2")
    third = engine.run(wf, {"x": 3}, name="k3")
    assert (first.output, second.output, third.output) == (4, 4, 6)
    assert calls["expensive"] == 2
    assert nodes(engine, second)["expensive"].cache_hit is True


def test_map_with_empty_list_and_items(engine: LocalEngine) -> None:
    wf = Workflow("mapping")

    @wf.node
    def src(params: dict[str, int]) -> list[int]:
        return list(range(params["n"]))

    @wf.node(map_over="src", max_concurrency=3)
    def sq(src: int) -> int:
        return src * src

    @wf.node
    def total(sq: list[int]) -> int:
        return sum(sq)

    assert engine.run(wf, {"n": 5}, name="m5").output == 30
    assert engine.run(wf, {"n": 0}, name="m0").output == 0
    rec = engine.store.get_execution("m5")
    items = [
        n
        for n in engine.store.list_nodes(rec.execution_id, include_items=True)
        if n.map_index is not None
    ]
    assert sorted(n.output for n in items) == [0, 1, 4, 9, 16]


def test_rerun_from_node_reuses_upstream(engine: LocalEngine) -> None:
    calls = Counter[str]()
    wf = Workflow("rerunnable")

    @wf.node
    def a() -> int:
        calls["a"] += 1
        return 1

    @wf.node
    def b(a: int) -> int:
        calls["b"] += 1
        return a + 1

    @wf.node
    def c(b: int) -> int:
        calls["c"] += 1
        return b * 10

    @wf.node
    def side() -> str:
        calls["side"] += 1
        return "s"

    first = engine.run(wf, name="orig")
    again = engine.rerun("orig", "b", name="again")
    assert again.status is RunStatus.SUCCEEDED and again.output == first.output
    assert calls == Counter({"a": 1, "b": 2, "c": 2, "side": 1})
    assert again.rerun_of == first.execution_id and again.rerun_from == "b"


def test_resume_reruns_only_unfinished_nodes(engine: LocalEngine) -> None:
    calls = Counter[str]()
    broken = {"on": True}
    wf = Workflow("resumable")

    @wf.node
    def a() -> int:
        calls["a"] += 1
        return 1

    @wf.node
    def b(a: int) -> int:
        calls["b"] += 1
        if broken["on"]:
            raise RuntimeError("transient outage")
        return a + 1

    failed = engine.run(wf, name="res")
    assert failed.status is RunStatus.FAILED
    broken["on"] = False
    done = engine.resume("res")
    assert done.status is RunStatus.SUCCEEDED and done.output == 2 and done.redrive_count == 1
    assert calls == Counter({"a": 1, "b": 2})
    ids = [e["id"] for e in engine.store.get_events(done.execution_id)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))  # history continues, no clash


def test_duplicate_concurrent_deliveries_run_once(tmp_path: Path) -> None:
    """At-least-once delivery: 8 concurrent invocations of one attempt → one run, one output."""
    runs = Counter[str]()
    gate = threading.Barrier(8)
    wf = Workflow("dupes")

    @wf.node
    def once() -> int:
        runs["once"] += 1
        return 99

    store = SqliteStore(tmp_path / "d.db")
    runner = NodeRunner({"dupes": wf.build()}, store, poll_seconds=0.005)
    payload = {"workflow": "dupes", "node": "once", "phase": "run", "execution": "e1", "attempt": 0}
    results: list[Any] = []

    def deliver() -> None:
        gate.wait()
        results.append(runner.handle(payload))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs["once"] == 1
    assert results == [{"node": "once", "status": "SUCCEEDED"}] * 8
    rec = store.get_node(NodeKey("e1", "once"))
    assert rec is not None and rec.output == 99 and rec.attempts == 1


def test_bad_payload_is_a_clear_input_error(tmp_path: Path) -> None:
    from stepdag import InputValidationError

    runner = NodeRunner({}, SqliteStore(tmp_path / "p.db"))
    with pytest.raises(InputValidationError, match="'node' must be a non-empty string"):
        runner.handle({"workflow": "x", "execution": "e", "phase": "run"})
    with pytest.raises(InputValidationError, match="unknown workflow/node"):
        runner.handle({"workflow": "x", "node": "n", "execution": "e"})

"""Parallel and Map: outputs, concurrency bounds, failure modes, tolerated failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from stepdag.asl import RealClock, TaskContext, TaskFailure, VirtualClock

from ._util import echo, run, single, types


def sleeper(resource: str, params: Any, ctx: TaskContext) -> Any:
    ctx.clock.sleep(params["s"])
    if params.get("fail"):
        raise TaskFailure(params["fail"], f"after {params['s']}")
    return params["s"]


def branch(name: str, seconds: float, fail: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"s": seconds}
    if fail:
        params["fail"] = fail
    return {
        "StartAt": name,
        "States": {name: {"Type": "Task", "Resource": "r", "Parameters": params, "End": True}},
    }


def test_parallel_makespan_in_virtual_time() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Parallel", "Branches": [branch("A", 3), branch("B", 5)], "Next": "C"},
            "C": {
                "Type": "Task",
                "Resource": "r",
                "Parameters": {"s": 1},
                "ResultPath": None,
                "End": True,
            },
        },
    }
    clock = VirtualClock()
    result = run(definition, {}, sleeper, clock=clock)
    assert result.status == "SUCCEEDED"
    assert result.output == [3, 5]
    assert clock.now() == 6


def test_parallel_output_is_ordered_by_branch() -> None:
    definition = single(
        {
            "Type": "Parallel",
            "Branches": [branch("A", 5), branch("B", 1), branch("C", 3)],
            "ResultSelector": {"first.$": "$[0]", "all.$": "$"},
            "ResultPath": "$.out",
        }
    )
    result = run(definition, {"in": 1}, sleeper)
    assert result.output == {"in": 1, "out": {"first": 5, "all": [5, 1, 3]}}


def test_parallel_parameters_feed_each_branch() -> None:
    definition = single(
        {
            "Type": "Parallel",
            "Parameters": {"v.$": "$.x"},
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {
                    "StartAt": "B",
                    "States": {"B": {"Type": "Pass", "InputPath": "$.v", "End": True}},
                },
            ],
        }
    )
    assert run(definition, {"x": 9}).output == [{"v": 9}, 9]


def test_parallel_failure_stops_other_branches() -> None:
    clock = VirtualClock()
    definition = single(
        {"Type": "Parallel", "Branches": [branch("A", 2, fail="Bad"), branch("B", 100)]}
    )
    result = run(definition, {}, sleeper, clock=clock)
    assert (result.status, result.error, result.cause) == ("FAILED", "Bad", "after 2")
    assert clock.now() == 2
    assert "ParallelStateFailed" in types(result)
    assert "ParallelStateExited" not in types(result)


def test_parallel_catch_and_retry() -> None:
    attempts: list[int] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        attempts.append(1)
        raise TaskFailure("Flaky")

    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "T",
                        "States": {"T": {"Type": "Task", "Resource": "r", "End": True}},
                    }
                ],
                "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": "$.err"}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {"a": 1}, handler)
    assert len(attempts) == 3
    assert result.output == {"a": 1, "err": {"Error": "Flaky", "Cause": ""}}
    assert types(result).count("ParallelStateStarted") == 3


def test_fail_state_inside_branch_propagates_error() -> None:
    definition = single(
        {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}
            ],
        }
    )
    assert run(definition).error == "E"


def test_runtime_error_in_branch_is_not_caught() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "B",
                        "States": {"B": {"Type": "Pass", "InputPath": "$.q", "End": True}},
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}],
                "End": True,
            },
            "C": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {"x": 5})
    assert result.error == "States.Runtime"
    assert result.cause is not None and "state 'B'" in result.cause


def test_map_basic_items_path_and_item_selector() -> None:
    definition = single(
        {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {
                "value.$": "$$.Map.Item.Value",
                "index.$": "$$.Map.Item.Index",
                "shared.$": "$.shared",
            },
            "ItemProcessor": {
                "StartAt": "T",
                "States": {"T": {"Type": "Task", "Resource": "r", "End": True}},
            },
            "ResultPath": "$.results",
        }
    )
    result = run(definition, {"items": ["a", "b"], "shared": 1}, echo)
    assert result.output["results"] == [
        {"value": "a", "index": 0, "shared": 1},
        {"value": "b", "index": 1, "shared": 1},
    ]


def test_map_legacy_iterator_and_parameters() -> None:
    definition = single(
        {
            "Type": "Map",
            "Parameters": {"v.$": "$$.Map.Item.Value"},
            "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        }
    )
    assert run(definition, [1, 2]).output == [{"v": 1}, {"v": 2}]


def test_map_empty_array() -> None:
    definition = single(
        {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        }
    )
    result = run(definition, [])
    assert result.output == []
    assert result.history[2].details == {"length": 0}


def test_map_requires_array() -> None:
    definition = single(
        {
            "Type": "Map",
            "ItemsPath": "$.x",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        }
    )
    result = run(definition, {"x": 5})
    assert result.error == "States.Runtime"
    assert result.cause is not None and "must be an array" in result.cause


def map_of_sleeps(max_concurrency: int | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Type": "Map",
        "ItemProcessor": {
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": "r", "End": True}},
        },
        **extra,
    }
    if max_concurrency is not None:
        spec["MaxConcurrency"] = max_concurrency
    return single(spec)


@pytest.mark.parametrize(
    ("concurrency", "makespan"),
    [(None, 4), (0, 4), (1, 10), (2, 6), (3, 5), (10, 4)],
)
def test_map_max_concurrency_makespan(concurrency: int | None, makespan: float) -> None:
    clock = VirtualClock()
    # Work is handed out in index order as workers free up (like AWS's inline Map).
    items = [{"s": s} for s in (1, 2, 3, 4)]
    result = run(map_of_sleeps(concurrency), items, sleeper, clock=clock)
    assert result.output == [1, 2, 3, 4]
    assert clock.now() == makespan


def test_map_max_concurrency_bounds_parallelism() -> None:
    lock = threading.Lock()
    live = [0, 0]

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        with lock:
            live[0] += 1
            live[1] = max(live[1], live[0])
        ctx.clock.sleep(1)
        with lock:
            live[0] -= 1
        return None

    run(map_of_sleeps(3), [{}] * 20, handler)
    assert live[1] == 3


def test_map_max_concurrency_path() -> None:
    clock = VirtualClock()
    items = [{"s": 1}] * 4
    definition = map_of_sleeps(None, ItemsPath="$.items", MaxConcurrencyPath="$.mc")
    run(definition, {"items": items, "mc": 2}, sleeper, clock=clock)
    assert clock.now() == 2
    bad = run(definition, {"items": items, "mc": "x"}, sleeper)
    assert bad.error == "States.Runtime"
    assert run(definition, {"items": items, "mc": -1}, sleeper).error == "States.Runtime"


def test_map_failure_fails_map_and_aborts_others() -> None:
    clock = VirtualClock()
    items = [{"s": 1, "fail": "Bad"}, {"s": 50}, {"s": 60}]
    result = run(map_of_sleeps(), items, sleeper, clock=clock)
    assert (result.error, result.cause) == ("Bad", "after 1")
    assert clock.now() == 1
    names = types(result)
    assert names.count("MapIterationFailed") == 1
    assert names.count("MapIterationAborted") == 2
    assert "MapStateFailed" in names


def test_map_events() -> None:
    definition = single(
        {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        },
        "M",
    )
    result = run(definition, [1])
    assert types(result) == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert result.history[3].to_dict()["mapIterationStartedEventDetails"] == {
        "name": "M",
        "index": 0,
    }


@pytest.mark.parametrize(
    ("extra", "failures", "status"),
    [
        ({"ToleratedFailureCount": 2}, 2, "SUCCEEDED"),
        ({"ToleratedFailureCount": 2}, 3, "FAILED"),
        ({"ToleratedFailurePercentage": 50}, 2, "SUCCEEDED"),
        ({"ToleratedFailurePercentage": 50}, 3, "FAILED"),
        ({"ToleratedFailurePercentage": 100}, 4, "SUCCEEDED"),
        ({"ToleratedFailureCount": 0}, 1, "FAILED"),
    ],
)
def test_tolerated_failures(extra: dict[str, Any], failures: int, status: str) -> None:
    items = [{"s": 1, "fail": "Bad"} if i < failures else {"s": 1} for i in range(4)]
    result = run(map_of_sleeps(**extra), items, sleeper)
    assert result.status == status
    if status == "SUCCEEDED":
        assert result.output[:failures] == [{"Error": "Bad", "Cause": "after 1"}] * failures
        assert result.output[failures:] == [1] * (4 - failures)
    elif extra.get("ToleratedFailureCount", 1) == 0:
        assert result.error == "Bad"
    else:
        assert result.error == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failure_paths() -> None:
    items = [{"s": 1, "fail": "Bad"}, {"s": 1}]
    definition = map_of_sleeps(ItemsPath="$.items", ToleratedFailureCountPath="$.n")
    assert run(definition, {"items": items, "n": 1}, sleeper).status == "SUCCEEDED"
    assert run(definition, {"items": items, "n": 0}, sleeper).error == "Bad"
    assert run(definition, {"items": items, "n": "x"}, sleeper).error == "States.Runtime"
    definition = map_of_sleeps(ItemsPath="$.items", ToleratedFailurePercentagePath="$.p")
    assert run(definition, {"items": items, "p": 50}, sleeper).status == "SUCCEEDED"
    assert (
        run(definition, {"items": items, "p": 10}, sleeper).error
        == "States.ExceedToleratedFailureThreshold"
    )
    assert run(definition, {"items": items, "p": 500}, sleeper).error == "States.Runtime"


def test_map_catch_exceeded_threshold() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ToleratedFailureCount": 1,
                "ItemProcessor": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "X"}}},
                "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    assert run(definition, [1, 2, 3]).output["Error"] == "States.ExceedToleratedFailureThreshold"


def test_nested_map_in_parallel_makespan() -> None:
    inner = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": "r", "End": True}},
                },
                "End": True,
            }
        },
    }
    definition = single({"Type": "Parallel", "Branches": [inner, branch("B", 7)], "InputPath": "$"})
    clock = VirtualClock()
    result = run(definition, [{"s": 2}, {"s": 2}, {"s": 2}], sleeper, clock=clock)
    assert result.output == [[2, 2, 2], 7]
    assert clock.now() == 7


@pytest.mark.parametrize("concurrency", [0, 100])
def test_inline_map_runs_at_most_40_iterations_at_once(concurrency: int) -> None:
    clock = VirtualClock()
    result = run(map_of_sleeps(concurrency), [{"s": 1}] * 100, sleeper, clock=clock)
    assert result.status == "SUCCEEDED" and len(result.output) == 100
    assert clock.now() == 3  # ceil(100 / 40) waves of one second


def test_parallel_runs_every_branch_at_once() -> None:
    clock = VirtualClock()
    definition = single({"Type": "Parallel", "Branches": [branch(f"B{i}", 2) for i in range(50)]})
    assert run(definition, {}, sleeper, clock=clock).output == [2] * 50
    assert clock.now() == 2


def test_map_event_chain_follows_last_iteration() -> None:
    definition = single(
        {
            "Type": "Map",
            "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        }
    )
    events = run(definition, [1, 2]).history
    by_type = {e.type: e for e in events}
    last_iteration = [e for e in events if e.type == "MapIterationSucceeded"][-1]
    assert by_type["MapStateSucceeded"].previous_event_id == last_iteration.id
    started = by_type["MapStateStarted"]
    first_iteration = next(e for e in events if e.type == "MapIterationStarted")
    assert first_iteration.previous_event_id == started.id


def test_distributed_mode_fails_with_threshold_error_by_default() -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "ItemFailed"}},
    }
    result = run(single({"Type": "Map", "ItemProcessor": processor}), [1, 2])
    assert result.error == "States.ExceedToleratedFailureThreshold"
    inline = {**processor, "ProcessorConfig": {"Mode": "INLINE"}}
    assert run(single({"Type": "Map", "ItemProcessor": inline}), [1, 2]).error == "ItemFailed"


def test_jitter_is_reproducible_across_concurrent_iterations() -> None:
    state = {
        "Type": "Map",
        "ItemProcessor": {
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "r",
                    "Retry": [
                        {"ErrorEquals": ["Boom"], "IntervalSeconds": 10, "JitterStrategy": "FULL"}
                    ],
                    "End": True,
                }
            },
        },
    }

    def run_once(seed: int) -> list[float]:
        lock = threading.Lock()
        first_attempt: dict[int, bool] = {}
        times: dict[int, float] = {}

        def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
            with lock:
                retry = first_attempt.get(params, False)
                first_attempt[params] = True
            if not retry:
                raise TaskFailure("Boom")
            times[params] = ctx.clock.now()
            return params

        assert run(single(state), list(range(8)), handler, seed=seed).status == "SUCCEEDED"
        return [times[i] for i in range(8)]

    assert run_once(5) == run_once(5)
    assert run_once(5) != run_once(6)
    assert len(set(run_once(5))) > 1  # each iteration draws its own jitter


def test_runtime_errors_are_never_tolerated() -> None:
    processor = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "InputPath": "$.missing", "End": True}},
    }
    definition = single(
        {"Type": "Map", "ToleratedFailurePercentage": 100, "ItemProcessor": processor}
    )
    result = run(definition, [{}, {}])
    assert result.error == "States.Runtime"


def test_real_clock_map_ramps_up_for_blocking_iterations() -> None:
    def blocking(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.clock.sleep(0.3)
        return params

    t0 = time.monotonic()
    result = run(map_of_sleeps(0), list(range(40)), blocking, clock=RealClock())
    elapsed = time.monotonic() - t0
    assert result.output == list(range(40))
    # Sequentially it would take 12 s; ramped up it takes ~0.6 s.  The bound only has to
    # tell the two apart, with room for a loaded 2-core machine.
    assert elapsed < 6, elapsed


def test_real_clock_map_of_instant_iterations_uses_few_threads() -> None:
    peak = [0]

    def instant(resource: str, params: Any, ctx: TaskContext) -> Any:
        peak[0] = max(peak[0], threading.active_count())
        return params

    before = threading.active_count()
    result = run(map_of_sleeps(0), list(range(300)), instant, clock=RealClock())
    assert result.output == list(range(300))
    assert peak[0] - before < 40

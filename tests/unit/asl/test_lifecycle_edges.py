"""Edge cases of cancellation and timing across nested structures."""

from __future__ import annotations

import threading
import time
from typing import Any

from stepdag.asl import RealClock, StateMachine, TaskContext, TaskFailure, VirtualClock

from ._util import run, single, types

CALLBACK = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}


def test_stop_while_waiting_for_task_token() -> None:
    submitted = threading.Event()

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        submitted.set()
        return None

    handle = StateMachine(single(CALLBACK)).start({}, task_handler=handler, clock=RealClock())
    assert submitted.wait(5)
    handle.stop()
    result = handle.wait(5)
    assert result.status == "ABORTED"
    assert result.error is None


def test_machine_timeout_during_map_aborts_iterations() -> None:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.clock.sleep(params)
        return params

    definition = {
        "TimeoutSeconds": 5,
        **single(
            {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": "r", "End": True}},
                },
            }
        ),
    }
    clock = VirtualClock()
    result = run(definition, [1, 10, 20], handler, clock=clock)
    assert result.status == "TIMED_OUT"
    assert clock.now() == 5
    assert types(result)[-1] == "ExecutionTimedOut"


def test_nested_parallel_in_map_failure_aborts_siblings() -> None:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.clock.sleep(params["s"])
        if params.get("fail"):
            raise TaskFailure("Inner")
        return params["s"]

    inner = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {"A": {"Type": "Task", "Resource": "r", "End": True}},
                    },
                    {
                        "StartAt": "B",
                        "States": {
                            "B": {
                                "Type": "Task",
                                "Resource": "r",
                                "Parameters": {"s": 100},
                                "End": True,
                            }
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": inner,
                "Catch": [{"ErrorEquals": ["Inner"], "Next": "H", "ResultPath": "$.err"}],
                "ResultPath": "$.out",
                "ItemsPath": "$.items",
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    clock = VirtualClock()
    result = run(definition, {"items": [{"s": 3, "fail": True}, {"s": 50}]}, handler, clock=clock)
    assert result.status == "SUCCEEDED"
    assert result.output["err"]["Error"] == "Inner"
    assert clock.now() == 3
    assert "MapIterationAborted" in types(result)


def test_heartbeat_via_handle_from_outside() -> None:
    tokens: list[str] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        assert ctx.task_token is not None
        tokens.append(ctx.task_token)
        return None

    handle = StateMachine(single({**CALLBACK, "HeartbeatSeconds": 1})).start(
        {}, task_handler=handler, clock=RealClock()
    )
    deadline = time.time() + 5
    while not tokens and time.time() < deadline:
        time.sleep(0.01)
    for _ in range(4):  # 1.2 s in total, longer than HeartbeatSeconds
        time.sleep(0.3)
        handle.send_task_heartbeat(tokens[0])
    handle.send_task_success(tokens[0], "alive")
    assert handle.wait(5).output == "alive"


def test_task_succeeds_after_retries_inside_parallel_branch_timing() -> None:
    attempts: dict[str, int] = {}

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        attempts[params] = attempts.get(params, 0) + 1
        if attempts[params] < 3:
            raise TaskFailure("Again")
        return params

    def branch(name: str, interval: int) -> dict[str, Any]:
        return {
            "StartAt": name,
            "States": {
                name: {
                    "Type": "Task",
                    "Resource": "r",
                    "Parameters": name,
                    "Retry": [
                        {"ErrorEquals": ["Again"], "IntervalSeconds": interval, "BackoffRate": 1}
                    ],
                    "End": True,
                }
            },
        }

    clock = VirtualClock()
    result = run(
        single({"Type": "Parallel", "Branches": [branch("A", 2), branch("B", 5)]}),
        {},
        handler,
        clock=clock,
    )
    assert result.output == ["A", "B"]
    assert clock.now() == 10  # B: two retries of 5 s; A finished at 4 s meanwhile

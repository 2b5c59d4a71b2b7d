"""Execution lifecycle: stop, machine timeout, history, streaming, clocks, performance."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from stepdag.asl import HistoryEvent, RealClock, StateMachine, TaskContext, VirtualClock

from ._util import echo, run, single, types


def test_machine_timeout_seconds_times_out() -> None:
    definition = {"TimeoutSeconds": 10, **single({"Type": "Wait", "Seconds": 100})}
    clock = VirtualClock()
    result = run(definition, {}, clock=clock)
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")
    assert types(result)[-1] == "ExecutionTimedOut"
    assert result.history[-1].timestamp.timestamp() == 10
    assert result.to_contract() == {
        "status": "TIMED_OUT",
        "output": None,
        "error": "States.Timeout",
        "cause": None,
    }


def test_machine_timeout_not_reached() -> None:
    definition = {"TimeoutSeconds": 10, **single({"Type": "Wait", "Seconds": 5})}
    clock = VirtualClock()
    assert run(definition, {}, clock=clock).status == "SUCCEEDED"
    assert clock.now() == 5


def test_machine_timeout_while_handler_sleeps() -> None:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.clock.sleep(1000)
        return 1

    definition = {"TimeoutSeconds": 3, **single({"Type": "Task", "Resource": "r"})}
    clock = VirtualClock()
    assert run(definition, {}, handler, clock=clock).status == "TIMED_OUT"
    assert clock.now() == 3


def test_stop_aborts_running_execution() -> None:
    started = threading.Event()

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        started.set()
        ctx.clock.sleep(60)
        return "late"

    sm = StateMachine(single({"Type": "Task", "Resource": "r"}))
    handle = sm.start({}, task_handler=handler, clock=RealClock())
    assert started.wait(5)
    t0 = time.monotonic()
    handle.stop(error="User.Stop", cause="enough")
    result = handle.wait(timeout=5)
    assert time.monotonic() - t0 < 2
    assert (result.status, result.error, result.cause) == ("ABORTED", "User.Stop", "enough")
    assert types(result)[-1] == "ExecutionAborted"
    assert result.output is None
    assert handle.history[-1].type == "ExecutionAborted"  # nothing recorded after the end


def test_stop_during_virtual_wait_and_parallel() -> None:
    definition = single(
        {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "W1", "States": {"W1": {"Type": "Wait", "Seconds": 100, "End": True}}},
                {"StartAt": "W2", "States": {"W2": {"Type": "Wait", "Seconds": 200, "End": True}}},
            ],
        }
    )
    gate = threading.Event()

    def gatekeeper(resource: str, params: Any, ctx: TaskContext) -> Any:
        gate.wait(5)  # holds virtual time still until the test has called stop()
        return None

    definition = {
        "StartAt": "G",
        "States": {
            "G": {"Type": "Task", "Resource": "r", "Next": "S"},
            "S": definition["States"]["S"],
        },
    }
    handle = StateMachine(definition).start({}, task_handler=gatekeeper, clock=VirtualClock())
    handle.stop()
    gate.set()
    result = handle.wait(timeout=5)
    assert result.status == "ABORTED"
    assert handle.done


def test_wait_timeout_raises() -> None:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        time.sleep(0.3)
        return None

    handle = StateMachine(single({"Type": "Task", "Resource": "r"})).start({}, task_handler=handler)
    with pytest.raises(TimeoutError):
        handle.wait(timeout=0.01)
    assert handle.wait(timeout=5).status == "SUCCEEDED"


def test_history_ids_and_previous_event_ids() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Task", "Resource": "r", "End": True},
        },
    }
    result = run(definition, {"x": 1}, echo)
    events = result.history
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].previous_event_id == 0
    for prev, cur in itertools.pairwise(events[1:]):
        assert cur.previous_event_id == prev.id
    started = events[0].to_dict()
    assert started["executionStartedEventDetails"]["input"] == '{"x":1}'
    assert started["executionStartedEventDetails"]["inputDetails"] == {"truncated": False}
    exited = events[2].to_dict()
    assert exited["type"] == "PassStateExited"
    assert exited["stateExitedEventDetails"] == {
        "name": "A",
        "output": '{"x":1}',
        "outputDetails": {"truncated": False},
    }
    assert events[-1].to_dict()["executionSucceededEventDetails"]["output"] == '{"x":1}'


def test_history_event_types_for_every_state() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 1, "Next": "C"},
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Par"}],
            },
            "Par": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "In", "States": {"In": {"Type": "Pass", "End": True}}}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    assert types(run(definition, {"x": 1})) == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "WaitStateEntered",
        "WaitStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "ParallelStateEntered",
        "ParallelStateStarted",
        "PassStateEntered",
        "PassStateExited",
        "ParallelStateSucceeded",
        "ParallelStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]


def test_failed_execution_event_details() -> None:
    result = run(single({"Type": "Task", "Resource": "r"}), {}, lambda r, p, c: 1 / 0)
    failed = result.history[-1].to_dict()
    assert failed["type"] == "ExecutionFailed"
    assert failed["executionFailedEventDetails"] == {
        "error": "ZeroDivisionError",
        "cause": "division by zero",
    }
    task_failed = next(e for e in result.history if e.type == "TaskFailed")
    assert task_failed.details["error"] == "ZeroDivisionError"


def test_on_event_streams_in_order() -> None:
    seen: list[HistoryEvent] = []
    result = run(single({"Type": "Pass"}), {}, on_event=seen.append)
    assert seen == result.history
    assert isinstance(seen[0], HistoryEvent)


def test_on_event_streams_live() -> None:
    seen: list[str] = []
    release = threading.Event()

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        release.wait(5)
        return None

    handle = StateMachine(single({"Type": "Task", "Resource": "r"})).start(
        {}, task_handler=handler, on_event=lambda e: seen.append(e.type)
    )
    deadline = time.time() + 5
    while "TaskStarted" not in seen and time.time() < deadline:
        time.sleep(0.005)
    assert seen[-1] == "TaskStarted"  # visible before the execution ends
    release.set()
    handle.wait(5)
    assert seen[-1] == "ExecutionSucceeded"


def test_virtual_clock_timestamps() -> None:
    clock = VirtualClock(start=1_700_000_000)
    result = run(single({"Type": "Wait", "Seconds": 2}), {}, clock=clock)
    assert result.history[0].timestamp.timestamp() == 1_700_000_000
    assert result.history[-1].timestamp.timestamp() == 1_700_000_002


def test_virtual_clock_standalone() -> None:
    clock = VirtualClock()
    order: list[tuple[str, float]] = []

    def worker(name: str, delay: float) -> None:
        clock.sleep(delay)
        order.append((name, clock.now()))

    done = threading.Event()

    def main() -> None:
        clock.spawn(lambda: worker("b", 5))
        clock.spawn(lambda: worker("a", 2))
        clock.sleep(10)
        order.append(("main", clock.now()))
        done.set()

    clock.spawn(main)
    assert done.wait(5)
    assert order == [("a", 2), ("b", 5), ("main", 10)]


def test_virtual_clock_event_wait_timeout() -> None:
    clock = VirtualClock()
    ev = clock.event()
    out: list[Any] = []

    def main() -> None:
        out.append(ev.wait(7))
        out.append(clock.now())

    clock.spawn(main)
    deadline = time.time() + 5
    while len(out) < 2 and time.time() < deadline:
        time.sleep(0.005)
    assert out == [False, 7]
    assert ev.wait(0) is False
    ev.set()
    assert ev.wait() is True


def test_real_clock_wait_state() -> None:
    t0 = time.monotonic()
    result = StateMachine(single({"Type": "Wait", "Seconds": 1})).execute({}, clock=RealClock())
    assert result.status == "SUCCEEDED"
    assert time.monotonic() - t0 >= 0.9


def test_execution_name_and_default_input() -> None:
    result = StateMachine(single({"Type": "Pass"})).execute(name="my-exec", clock=VirtualClock())
    assert result.output == {}
    assert result.name == "my-exec"
    assert result.execution_arn.endswith(":my-exec")


def test_definition_as_json_string() -> None:
    sm = StateMachine('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}', name="named")
    assert sm.arn.endswith(":stateMachine:named")
    assert sm.execute({"k": 1}, clock=VirtualClock()).output == {"k": 1}


def test_thousand_state_chain_is_fast() -> None:
    n = 1000
    states = {
        f"S{i}": {
            "Type": "Task",
            "Resource": "r",
            **({"Next": f"S{i + 1}"} if i < n - 1 else {"End": True}),
        }
        for i in range(n)
    }
    sm = StateMachine({"StartAt": "S0", "States": states})
    calls = [0]

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        calls[0] += 1
        return params

    # Correctness only: its speed is measured by benchmarks/engine.py (1,000-node chain,
    # as a ratio to a baseline run in the same process), never asserted in a timed test.
    result = sm.execute({"payload": list(range(20))}, task_handler=handler)
    assert result.status == "SUCCEEDED" and calls[0] == n
    assert len(result.history) == 2 + 5 * n


def test_concurrent_executions_share_a_virtual_clock() -> None:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.clock.sleep(params)
        return params

    sm = StateMachine(single({"Type": "Task", "Resource": "r"}))
    clock = VirtualClock()
    handles: list[Any] = []
    started = threading.Event()

    def driver() -> None:
        # A participant thread holds virtual time still while it starts all three.
        handles.extend(sm.start(s, task_handler=handler, clock=clock) for s in (3, 9, 5))
        started.set()

    clock.spawn(driver)
    assert started.wait(5)
    results = [h.wait(5) for h in handles]
    assert [r.output for r in results] == [3, 9, 5]
    assert clock.now() == 9
    # Started one by one from a non-participant thread, each runs alone in virtual time.
    sequential = VirtualClock()
    for s in (3, 9, 5):
        sm.start(s, task_handler=handler, clock=sequential).wait(5)
    assert sequential.now() == 17


def test_non_json_input_is_rejected_by_start() -> None:
    with pytest.raises(TypeError):
        StateMachine(single({"Type": "Pass"})).start({"x": object()})


def test_failing_listener_does_not_break_the_run() -> None:
    def listener(event: HistoryEvent) -> None:
        raise RuntimeError("disk full")

    handle = StateMachine(single({"Type": "Pass"})).start(
        {}, on_event=listener, clock=VirtualClock()
    )
    assert handle.wait(5).status == "SUCCEEDED"
    assert isinstance(handle.listener_error, RuntimeError)

"""Task state: handlers, Retry/Catch, timeouts, heartbeats and task tokens."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from stepdag.asl import RealClock, StateMachine, TaskContext, TaskFailure, VirtualClock
from stepdag.asl.states.base import Retrier, error_matches

from ._util import echo, run, single, types


class Flaky:
    """Fails ``failures`` times with ``error`` then succeeds; records call times."""

    def __init__(self, failures: int, error: str = "Boom", cause: str = "c") -> None:
        self.failures = failures
        self.error = error
        self.cause = cause
        self.calls: list[tuple[float, Any]] = []

    def __call__(self, resource: str, params: Any, ctx: TaskContext) -> Any:
        self.calls.append((ctx.clock.now(), ctx.context["State"]["RetryCount"]))
        if len(self.calls) <= self.failures:
            raise TaskFailure(self.error, self.cause)
        return {"ok": len(self.calls)}


def test_handler_receives_resource_parameters_and_context() -> None:
    seen: dict[str, Any] = {}

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        seen.update(resource=resource, params=params, state=ctx.state_name, token=ctx.task_token)
        seen["ctx_state"] = ctx.context["State"]["Name"]
        return "done"

    result = run(
        single({"Type": "Task", "Resource": "arn:x", "Parameters": {"k.$": "$.v"}}, "T"),
        {"v": 1},
        handler,
    )
    assert result.output == "done"
    assert seen == {
        "resource": "arn:x",
        "params": {"k": 1},
        "state": "T",
        "token": None,
        "ctx_state": "T",
    }


def test_task_failure_and_exception_mapping() -> None:
    def raises(resource: str, params: Any, ctx: TaskContext) -> Any:
        raise ValueError("bad value")

    result = run(single({"Type": "Task", "Resource": "r"}), {}, raises)
    assert (result.status, result.error, result.cause) == ("FAILED", "ValueError", "bad value")
    result = run(single({"Type": "Task", "Resource": "r"}), {}, Flaky(9, "Custom.Err", "why"))
    assert (result.error, result.cause) == ("Custom.Err", "why")
    assert types(result)[-2:] == ["TaskFailed", "ExecutionFailed"]


def test_no_handler_fails_clearly() -> None:
    result = run(single({"Type": "Task", "Resource": "arn:fn"}), {})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "No task handler" in (result.cause or "")


def test_task_events() -> None:
    result = run(
        single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}), {"a": 1}, echo
    )
    assert types(result) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    scheduled = result.history[2]
    assert scheduled.details["resourceType"] == "lambda"
    assert scheduled.details["resource"] == "invoke"
    assert scheduled.details["parameters"] == '{"a":1}'
    assert scheduled.to_dict()["taskScheduledEventDetails"]["region"] == "us-east-1"


def test_retry_backoff_timing_in_virtual_time() -> None:
    flaky = Flaky(3)
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [
            {"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 3}
        ],
    }
    clock = VirtualClock()
    result = run(single(state), {}, flaky, clock=clock)
    assert result.output == {"ok": 4}
    assert flaky.calls == [(0, 0), (2, 1), (8, 2), (26, 3)]
    assert clock.now() == 26


def test_retry_defaults() -> None:
    flaky = Flaky(3)
    result = run(
        single({"Type": "Task", "Resource": "r", "Retry": [{"ErrorEquals": ["States.ALL"]}]}),
        {},
        flaky,
    )
    assert result.status == "SUCCEEDED"
    assert [t for t, _ in flaky.calls] == [0, 1, 3, 7]


def test_retry_exhausted_then_fails() -> None:
    flaky = Flaky(10)
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2}],
    }
    result = run(single(state), {}, flaky)
    assert result.error == "Boom"
    assert len(flaky.calls) == 3


def test_max_attempts_zero_never_retries() -> None:
    flaky = Flaky(1)
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 0}],
    }
    assert run(single(state), {}, flaky).status == "FAILED"
    assert len(flaky.calls) == 1


def test_max_delay_seconds_caps_backoff() -> None:
    flaky = Flaky(4)
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [
            {
                "ErrorEquals": ["Boom"],
                "IntervalSeconds": 1,
                "BackoffRate": 10,
                "MaxAttempts": 5,
                "MaxDelaySeconds": 15,
            }
        ],
    }
    run(single(state), {}, flaky)
    assert [t for t, _ in flaky.calls] == [0, 1, 11, 26, 41]


def test_full_jitter_is_bounded_and_seedable() -> None:
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [
            {
                "ErrorEquals": ["Boom"],
                "IntervalSeconds": 10,
                "MaxAttempts": 3,
                "JitterStrategy": "FULL",
            }
        ],
    }
    runs = []
    for _ in range(2):
        flaky = Flaky(3)
        run(single(state), {}, flaky, seed=1234)
        runs.append([t for t, _ in flaky.calls])
    assert runs[0] == runs[1]
    gaps = [b - a for a, b in zip(runs[0], runs[0][1:], strict=False)]
    assert all(0 <= g <= cap for g, cap in zip(gaps, [10, 20, 40], strict=True))
    assert gaps != [10, 20, 40]
    other = Flaky(3)
    run(single(state), {}, other, seed=99)
    assert [t for t, _ in other.calls] != runs[0]


def test_retrier_delay_unit() -> None:
    r = Retrier(("X",), interval_seconds=3, backoff_rate=2.0, max_delay_seconds=10, jitter="FULL")
    assert r.delay(0, 0.5) == 1.5
    assert r.delay(5, 0.5) == 5.0
    assert Retrier(("X",)).delay(2, 0.0) == 4.0


def test_first_matching_retrier_decides() -> None:
    flaky = Flaky(2)
    state = {
        "Type": "Task",
        "Resource": "r",
        "Retry": [
            {"ErrorEquals": ["Boom"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5},
        ],
    }
    result = run(single(state), {}, flaky)
    assert result.status == "FAILED"  # the exhausted first retrier is not followed by the second
    assert len(flaky.calls) == 2


def test_retry_count_in_context_and_parameters_reevaluated() -> None:
    seen: list[Any] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        seen.append(params["attempt"])
        if len(seen) < 3:
            raise TaskFailure("Again")
        return "ok"

    state = {
        "Type": "Task",
        "Resource": "r",
        "Parameters": {"attempt.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["Again"]}],
    }
    assert run(single(state), {}, handler).output == "ok"
    assert seen == [0, 1, 2]


def test_catch_with_result_path_and_next() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Catch": [
                    {"ErrorEquals": ["Other"], "Next": "Wrong"},
                    {"ErrorEquals": ["Boom"], "Next": "Handler", "ResultPath": "$.error"},
                ],
                "Next": "Wrong",
            },
            "Handler": {"Type": "Pass", "End": True},
            "Wrong": {"Type": "Fail"},
        },
    }
    result = run(definition, {"orig": 1}, Flaky(9, "Boom", "detail"))
    assert result.output == {"orig": 1, "error": {"Error": "Boom", "Cause": "detail"}}
    assert "TaskStateExited" in types(result)


def test_catch_result_path_null_keeps_input() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "H", "ResultPath": None}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    assert run(definition, {"orig": 1}, Flaky(9)).output == {"orig": 1}


def test_retry_then_catch() -> None:
    flaky = Flaky(9)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["Boom"], "Next": "H"}],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {}, flaky)
    assert result.status == "SUCCEEDED" and len(flaky.calls) == 3


@pytest.mark.parametrize(
    ("names", "error", "expected"),
    [
        (("States.ALL",), "Anything", True),
        (("States.ALL",), "States.Timeout", True),
        (("States.ALL",), "States.Runtime", False),
        (("States.ALL",), "States.DataLimitExceeded", False),
        (("States.Runtime",), "States.Runtime", False),
        (("States.TaskFailed",), "Custom", True),
        (("States.TaskFailed",), "States.HeartbeatTimeout", True),
        (("States.TaskFailed",), "States.Timeout", False),
        (("States.Timeout",), "States.Timeout", True),
        (("A", "B"), "B", True),
        (("A",), "a", False),
        (("A",), None, False),
        (("States.ALL",), None, True),
    ],
)
def test_error_matching(names: tuple[str, ...], error: str | None, expected: bool) -> None:
    assert error_matches(names, error) is expected


def slow(seconds: float) -> Any:
    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.sleep(seconds)
        return "finished"

    return handler


def test_timeout_seconds() -> None:
    clock = VirtualClock()
    result = run(
        single({"Type": "Task", "Resource": "r", "TimeoutSeconds": 5}), {}, slow(10), clock=clock
    )
    assert (result.status, result.error) == ("FAILED", "States.Timeout")
    assert "TaskTimedOut" in types(result)
    assert result.history[-1].timestamp.timestamp() == 5
    ok = run(single({"Type": "Task", "Resource": "r", "TimeoutSeconds": 5}), {}, slow(4))
    assert ok.output == "finished"


def test_timeout_seconds_path_and_catch_by_name() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "TimeoutSecondsPath": "$.t",
                "Catch": [
                    {"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"},
                    {"ErrorEquals": ["States.Timeout"], "Next": "H"},
                ],
                "End": True,
            },
            "H": {"Type": "Pass", "End": True},
            "Wrong": {"Type": "Fail"},
        },
    }
    result = run(definition, {"t": 2}, slow(3))
    assert result.output == {"Error": "States.Timeout", "Cause": ""}


def test_timeout_seconds_path_invalid() -> None:
    state = {"Type": "Task", "Resource": "r", "TimeoutSecondsPath": "$.t"}
    assert run(single(state), {"t": "x"}, echo).error == "States.Runtime"
    assert run(single(state), {}, echo).error == "States.Runtime"


def test_timed_out_handler_is_cancelled() -> None:
    flags: list[bool] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        ctx.sleep(100)
        flags.append(ctx.is_cancelled)
        return None

    clock = VirtualClock()
    run(single({"Type": "Task", "Resource": "r", "TimeoutSeconds": 1}), {}, handler, clock=clock)
    deadline = time.time() + 2
    while not flags and time.time() < deadline:
        time.sleep(0.01)
    assert flags == [True]
    assert clock.now() == 1  # the abandoned sleep did not drag virtual time forward


CALLBACK = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}


def test_wait_for_task_token_from_another_thread() -> None:
    tokens: list[str] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        assert ctx.task_token is not None
        assert params == {"token": ctx.task_token}
        tokens.append(ctx.task_token)
        return {"MessageId": "m"}

    sm = StateMachine(single({**CALLBACK, "Parameters": {"token.$": "$$.Task.Token"}}))
    handle = sm.start({}, task_handler=handler, clock=RealClock())
    deadline = time.time() + 5
    while not tokens and time.time() < deadline:
        time.sleep(0.005)
    threading.Thread(target=handle.send_task_success, args=(tokens[0], {"answer": 42})).start()
    result = handle.wait(timeout=5)
    assert result.output == {"answer": 42}
    assert types(result)[2:7] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
        "TaskStateExited",
    ]
    with pytest.raises(KeyError):
        handle.send_task_success(tokens[0], {})


def test_wait_for_task_token_completed_inside_handler() -> None:
    holder: dict[str, Any] = {}
    ready = threading.Event()

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        assert ctx.task_token is not None
        ready.wait(5)  # the handle is published by the test thread after start() returns
        holder["handle"].send_task_failure(ctx.task_token, "Rejected", "no")
        return None

    sm = StateMachine(single(CALLBACK))
    handle = holder["handle"] = sm.start({}, task_handler=handler, clock=VirtualClock())
    ready.set()
    result = handle.wait(timeout=5)
    assert (result.error, result.cause) == ("Rejected", "no")


def test_callback_timeout_and_heartbeat_timeout() -> None:
    def nothing(resource: str, params: Any, ctx: TaskContext) -> Any:
        return None

    clock = VirtualClock()
    result = run(single({**CALLBACK, "TimeoutSeconds": 30}), {}, nothing, clock=clock)
    assert result.error == "States.Timeout" and clock.now() == 30
    clock = VirtualClock()
    result = run(
        single({**CALLBACK, "TimeoutSeconds": 30, "HeartbeatSeconds": 10}), {}, nothing, clock=clock
    )
    assert result.error == "States.HeartbeatTimeout" and clock.now() == 10


def test_heartbeats_extend_the_deadline() -> None:
    def beating(resource: str, params: Any, ctx: TaskContext) -> Any:
        token = ctx.task_token
        assert token is not None

        def worker() -> None:
            for _ in range(3):
                ctx.clock.sleep(8)
                ctx.heartbeat()
            ctx.clock.sleep(8)
            published.wait(5)
            holder["handle"].send_task_success(token, "beat")

        ctx.clock.spawn(worker)
        return None

    holder: dict[str, Any] = {}
    published = threading.Event()
    clock = VirtualClock()
    sm = StateMachine(single({**CALLBACK, "HeartbeatSeconds": 10}))
    handle = holder["handle"] = sm.start({}, task_handler=beating, clock=clock)
    published.set()
    result = handle.wait(timeout=5)
    assert result.output == "beat"
    assert clock.now() == 32


def test_heartbeat_seconds_path() -> None:
    clock = VirtualClock()
    result = run(
        single({**CALLBACK, "HeartbeatSecondsPath": "$.h"}),
        {"h": 7},
        lambda r, p, c: None,
        clock=clock,
    )
    assert result.error == "States.HeartbeatTimeout" and clock.now() == 7


def test_callback_handler_failure_fails_task() -> None:
    result = run(single(CALLBACK), {}, Flaky(9, "SendFailed"))
    assert result.error == "SendFailed"


def test_non_json_result_fails_execution() -> None:
    result = run(single({"Type": "Task", "Resource": "r"}), {}, lambda r, p, c: {1, 2})
    assert result.error == "States.Runtime"
    assert "not JSON-serializable" in (result.cause or "")

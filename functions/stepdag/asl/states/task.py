"""Task state: handler invocation, timeouts, heartbeats, ``.waitForTaskToken``."""

from __future__ import annotations

import threading
from typing import Any

from stepdag.asl import jsonata
from stepdag.asl.clock import CancellableClock
from stepdag.asl.errors import (
    DATA_LIMIT_EXCEEDED,
    HEARTBEAT_TIMEOUT,
    RUNTIME,
    TIMEOUT,
    ExecutionAborted,
    StatesError,
    TaskFailure,
    to_json,
)
from stepdag.asl.paths import JsonPath, NoMatch, compile_path
from stepdag.asl.runtime import Frame, TaskContext, TokenWait
from stepdag.asl.states import query
from stepdag.asl.states.base import State, no_results, payload_size_exceeded, shown

_CALLBACK_SUFFIX = ".waitForTaskToken"


def resource_type_and_name(resource: str) -> tuple[str, str]:
    """Split a resource ARN the way history events report it.

    ``arn:aws:states:::lambda:invoke.waitForTaskToken`` → (``lambda``,
    ``invoke.waitForTaskToken``); other ARNs → (their service, the whole ARN).
    """
    parts = resource.split(":")
    if resource.startswith("arn:") and len(parts) >= 6 and parts[2] == "states" and not parts[4]:
        return parts[5], ":".join(parts[6:]) if len(parts) > 6 else ""
    if resource.startswith("arn:") and len(parts) > 2:
        return parts[2], resource
    return "custom", resource


class TaskState(State):
    type_name = "Task"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.resource: str = raw["Resource"]
        self.resource_type, self.resource_name = resource_type_and_name(self.resource)
        self.callback = self.resource.endswith(_CALLBACK_SUFFIX)
        self.timeout_seconds: float | None = raw.get("TimeoutSeconds")
        self.heartbeat_seconds: float | None = raw.get("HeartbeatSeconds")
        self.timeout_path = _opt(raw, "TimeoutSecondsPath")
        self.heartbeat_path = _opt(raw, "HeartbeatSecondsPath")

    def _event_base(self) -> dict[str, Any]:
        return {"resourceType": self.resource_type, "resource": self.resource_name}

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        def attempt(ctx: dict[str, Any]) -> Any:
            effective = self.effective_input(data, frame)
            token: tuple[str, TokenWait] | None = None
            if self.callback:
                # Created first: Parameters usually pass $$.Task.Token along.
                token = frame.execution.tokens.new()
                ctx["Task"] = {"Token": token[0]}
            try:
                params = self.apply_parameters(frame, effective, ctx)
                timeout, heartbeat = self._timeouts(frame, effective, ctx)
                return self._invoke(frame, params, ctx, token, timeout=timeout, heartbeat=heartbeat)
            finally:
                if token is not None:
                    frame.execution.tokens.discard(token[0])

        return self.run_attempts(frame, data, attempt)

    def _timeouts(
        self, frame: Frame, effective: Any, ctx: dict[str, Any]
    ) -> tuple[float | None, float | None]:
        timeout = self.timeout_seconds
        heartbeat = self.heartbeat_seconds
        if self.jsonata and (jsonata.is_expression(timeout) or jsonata.is_expression(heartbeat)):
            bound = query.bindings(frame, effective, ctx)
            timeout = _jsonata_seconds(timeout, "TimeoutSeconds", bound)
            heartbeat = _jsonata_seconds(heartbeat, "HeartbeatSeconds", bound)
        if self.timeout_path is not None:
            timeout = _positive_int(
                self.timeout_path,
                self.path_source(self.timeout_path, effective, frame),
                "TimeoutSecondsPath",
            )
        if self.heartbeat_path is not None:
            heartbeat = _positive_int(
                self.heartbeat_path,
                self.path_source(self.heartbeat_path, effective, frame),
                "HeartbeatSecondsPath",
            )
        return timeout, heartbeat

    def _invoke(
        self,
        frame: Frame,
        params: Any,
        context: dict[str, Any],
        token_wait: tuple[str, TokenWait] | None,
        *,
        timeout: float | None,
        heartbeat: float | None,
    ) -> Any:
        execution = frame.execution
        params_text = to_json(params)
        if payload_size_exceeded(params_text):
            # AWS: "the state's input is larger than the quota after Parameters processing".
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{self.name}' input after Parameters processing exceeds the "
                "maximum number of bytes service limit.",
            )
        scheduled: dict[str, Any] = {
            **self._event_base(),
            "region": execution.region,
            "parameters": params_text,
        }
        if timeout is not None:
            scheduled["timeoutInSeconds"] = int(timeout)
        if heartbeat is not None:
            scheduled["heartbeatInSeconds"] = int(heartbeat)
        frame.event("TaskScheduled", scheduled)
        frame.event("TaskStarted", self._event_base())
        if execution.handler is None:
            return self._fail(
                frame,
                StatesError(
                    RUNTIME,
                    f"No task handler is configured to run resource '{self.resource}'",
                ),
            )
        token, wait = token_wait if token_wait is not None else (None, None)
        cancelled = execution.clock.event()
        frame.listen(cancelled)
        task_ctx = TaskContext(
            context=context,
            state_name=self.name,
            clock=CancellableClock(execution.clock, cancelled),
            task_token=token,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            cancelled=cancelled,
            _heartbeat=(lambda: execution.tokens.heartbeat(token)) if token else None,
        )
        try:
            if self.callback:
                assert wait is not None
                return self._run_callback(
                    frame, params, task_ctx, wait, timeout=timeout, heartbeat=heartbeat
                )
            if timeout is None:
                outcome = _call(execution.handler, self.resource, params, task_ctx)
            else:
                outcome = self._call_with_timeout(frame, params, task_ctx, timeout)
            # A result that arrives after the branch was abandoned is discarded.
            frame.check()
            return self._complete(frame, outcome)
        finally:
            frame.unlisten(cancelled)
            # Anything still running on behalf of this task is abandoned now.
            cancelled.set()

    def _call_with_timeout(
        self, frame: Frame, params: Any, task_ctx: TaskContext, timeout: float
    ) -> tuple[str, Any, str | None, str | None]:
        execution = frame.execution
        assert execution.handler is not None
        handler = execution.handler
        done = execution.clock.event()
        box: list[tuple[str, Any, str | None, str | None]] = []
        lock = threading.Lock()

        def target() -> None:
            outcome = _call(handler, self.resource, params, task_ctx)
            with lock:
                box.append(outcome)
            done.set()

        execution.clock.spawn(target, name=f"task:{self.name}")
        frame.listen(done)
        try:
            finished = done.wait(timeout)
        finally:
            frame.unlisten(done)
        frame.check()
        with lock:
            if finished and box:
                return box[0]
        return ("timeout", None, TIMEOUT, None)

    def _run_callback(
        self,
        frame: Frame,
        params: Any,
        task_ctx: TaskContext,
        wait: TokenWait,
        *,
        timeout: float | None,
        heartbeat: float | None,
    ) -> Any:
        execution = frame.execution
        assert execution.handler is not None
        clock = execution.clock
        # The handler only *submits* the work; the result arrives through the token
        # (send_task_success/failure), possibly from another thread, even before we wait.
        outcome = _call(execution.handler, self.resource, params, task_ctx)
        if outcome[0] == "failure":
            return self._complete(frame, outcome)
        frame.event(
            "TaskSubmitted",
            {
                **self._event_base(),
                "output": to_json(outcome[1]),
                "outputDetails": {"truncated": False},
            },
        )
        start = clock.now()
        while True:
            frame.check()
            with wait.lock:
                if wait.outcome is not None:
                    return self._complete(frame, wait.outcome)
                wake = clock.event()
                wait.wake = wake
                last_beat = wait.last_heartbeat
            now = clock.now()
            deadlines: list[tuple[float, str]] = []
            if timeout is not None:
                deadlines.append((start + timeout, TIMEOUT))
            if heartbeat is not None:
                deadlines.append((max(start, last_beat) + heartbeat, HEARTBEAT_TIMEOUT))
            frame.listen(wake)
            try:
                if deadlines:
                    deadline, kind = min(deadlines)
                    if deadline <= now:
                        return self._complete(frame, ("timeout", None, kind, None))
                    wake.wait(deadline - now)
                else:
                    wake.wait()
            finally:
                frame.unlisten(wake)

    def _complete(self, frame: Frame, outcome: tuple[str, Any, str | None, str | None]) -> Any:
        kind, output, error, cause = outcome
        if kind == "success":
            try:
                text = to_json(output)
            except (TypeError, ValueError) as exc:
                return self._fail(
                    frame,
                    StatesError(
                        RUNTIME,
                        f"The task handler for '{self.resource}' returned a value that is not "
                        f"JSON-serializable: {exc}",
                    ),
                )
            if payload_size_exceeded(text):
                # The connector's output itself is over the quota (AWS names the resource).
                return self._fail(
                    frame,
                    StatesError(
                        DATA_LIMIT_EXCEEDED,
                        f"The state/task '{self.resource}' returned a result with a size "
                        "exceeding the maximum number of bytes service limit.",
                    ),
                )
            frame.event(
                "TaskSucceeded",
                {**self._event_base(), "output": text, "outputDetails": {"truncated": False}},
            )
            return output
        if kind == "timeout":
            frame.event(
                "TaskTimedOut", {**self._event_base(), "error": error, "cause": cause or ""}
            )
            raise StatesError(error, cause)
        return self._fail(frame, StatesError(error, cause))

    def _fail(self, frame: Frame, err: StatesError) -> Any:
        details = {**self._event_base()}
        if err.error is not None:
            details["error"] = err.error
        if err.cause is not None:
            details["cause"] = err.cause
        frame.event("TaskFailed", details)
        raise err


def _call(
    handler: Any, resource: str, params: Any, ctx: TaskContext
) -> tuple[str, Any, str | None, str | None]:
    try:
        return ("success", handler(resource, params, ctx), None, None)
    except TaskFailure as exc:
        return ("failure", None, exc.error, exc.cause)
    except ExecutionAborted:
        raise
    except Exception as exc:
        return ("failure", None, type(exc).__name__, str(exc))


def _jsonata_seconds(value: Any, field: str, bound: dict[str, Any]) -> float | None:
    if not jsonata.is_expression(value):
        return value  # type: ignore[no-any-return]
    out = jsonata.Expression(value).evaluate(field, bound)
    if isinstance(out, bool) or not isinstance(out, int) or out <= 0:
        raise StatesError(
            jsonata.QUERY_EVALUATION_ERROR,
            f"The JSONata expression '{value[2:-2].strip()}' specified for the field '{field}' "
            f"must evaluate to a positive integer, got: {to_json(out)}",
        )
    return float(out)


def _opt(raw: dict[str, Any], key: str) -> JsonPath | None:
    return compile_path(raw[key]) if key in raw else None


def _positive_int(path: JsonPath, data: Any, field: str) -> int:
    try:
        value = path.find(data)
    except NoMatch as exc:
        raise no_results(path) from exc
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StatesError(
            RUNTIME,
            f'The {field} field refers to value "{shown(value)}" which is not a valid '
            f"positive integer: {path.source}",
        )
    return value


__all__ = ["TaskState", "resource_type_and_name"]

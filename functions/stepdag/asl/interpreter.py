"""Public entry points: :class:`StateMachine`, execution handles and results."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict, Unpack

from stepdag.asl.clock import Clock, RealClock
from stepdag.asl.definition import load_definition
from stepdag.asl.errors import (
    DATA_LIMIT_EXCEEDED,
    RUNTIME,
    TIMEOUT,
    AslDefinitionError,
    ExecutionAborted,
    StatesError,
    to_json,
)
from stepdag.asl.history import (
    HISTORY_LIMIT_CAUSE,
    MAX_HISTORY_EVENTS,
    HistoryEvent,
    HistoryRecorder,
)
from stepdag.asl.item_io import ItemReader, ResultWriter
from stepdag.asl.machine import Machine
from stepdag.asl.quotas import name_problem
from stepdag.asl.runtime import Execution, Frame, TaskHandler
from stepdag.asl.states.base import payload_size_exceeded

ACCOUNT: Final = "123456789012"
REGION: Final = "us-east-1"
ROLE_ARN: Final = f"arn:aws:iam::{ACCOUNT}:role/StepDagLocalExecutionRole"

SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
ABORTED: Final = "ABORTED"

STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"
# AWS quotas: Express executions run at most five minutes and keep no 25,000-event
# history cap (they have no execution history on AWS at all).
EXPRESS_MAX_DURATION_SECONDS: Final = 300


class StartOptions(TypedDict, total=False):
    """How to run one execution: the keywords of :meth:`StateMachine.start` and
    :meth:`StateMachine.execute`, written once."""

    task_handler: TaskHandler | None
    """Answers every Task state (``resource, parameters, context -> result``)."""
    name: str | None
    """The execution's name (default: a fresh uuid)."""
    execution_id: str | None
    """Its ARN (default: derived from the machine and ``name``, as Step Functions does)."""
    clock: Clock | None
    """Real time by default; a ``VirtualClock`` runs waits and retries instantly."""
    on_event: Callable[[HistoryEvent], None] | None
    """Called with each history event as it is recorded."""
    context_overrides: dict[str, Any] | None
    """Merged into the context object (``$$``), e.g. ``Execution.RedriveCount``."""
    seed: int | None
    """Seeds retry jitter, ``States.UUID`` and unseeded ``States.MathRandom``."""
    item_reader: ItemReader | None
    """Answers a Distributed Map's ``ItemReader`` (``s3:getObject``/``s3:listObjectsV2``)."""
    result_writer: ResultWriter | None
    """Stores a Distributed Map's ``ResultWriter`` files (``s3:putObject``)."""
    on_child_event: Callable[[str, HistoryEvent], None] | None
    """Called with (child execution ARN, event) for each event of a Distributed Map's
    child executions, whose histories are otherwise only counted, never kept."""


@dataclass(frozen=True)
class ExecutionResult:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    execution_arn: str = ""
    name: str = ""

    def to_contract(self) -> dict[str, Any]:
        """The public contract of ``stepdag asl run``."""
        return {
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
        }


def _iso(clock: Clock) -> str:
    return clock.now_iso()


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ExecutionHandle:
    """A running execution: wait for it, stop it, or answer its callback tasks."""

    def __init__(
        self,
        machine: StateMachine,
        input: Any,
        *,
        child_of: Frame | None = None,
        **options: Unpack[StartOptions],
    ) -> None:
        """``child_of``: a Distributed Map's child execution, run by the caller's thread
        (:meth:`run_here`), cancelled with that frame, keeping no events in memory."""
        name = options.get("name")
        if name is not None:
            problem = name_problem("execution name", name)
            if problem is not None:
                raise ValueError(problem)
        self.clock: Clock = options.get("clock") or RealClock()
        self.name = name or str(uuid.uuid4())
        self.execution_arn = (
            options.get("execution_id")
            or f"arn:aws:states:{machine.region}:{machine.account_id}:execution:"
            f"{machine.name}:{self.name}"
        )
        self._machine = machine
        self._input = input
        # Serialized up front so a non-JSON input is the caller's error, not the run's.
        self._input_text = to_json(input)
        self._recorder = HistoryRecorder(
            self.clock,
            options.get("on_event"),
            max_events=MAX_HISTORY_EVENTS if machine.machine_type == STANDARD else None,
            on_limit=lambda: self._terminate(FAILED, None, RUNTIME, HISTORY_LIMIT_CAUSE),
            retain=child_of is None,
        )
        self._done = threading.Event()
        self._result: ExecutionResult | None = None
        self._finish_lock = threading.Lock()
        context_base: dict[str, Any] = {
            "Execution": {
                "Id": self.execution_arn,
                "Input": input,
                "Name": self.name,
                "RoleArn": machine.role_arn,
                "StartTime": _iso(self.clock),
                "RedriveCount": 0,
            },
            "StateMachine": {"Id": machine.arn, "Name": machine.name},
        }
        context_overrides = options.get("context_overrides")
        if context_overrides:
            context_base = _merge(context_base, context_overrides)
        seed = options.get("seed")
        self._execution = Execution(
            clock=self.clock,
            handler=options.get("task_handler"),
            recorder=self._recorder,
            rng=random.Random(seed),
            context_base=context_base,
            region=machine.region,
            seed=seed,
            item_reader=options.get("item_reader"),
            result_writer=options.get("result_writer"),
            owner=machine,
            on_child_event=options.get("on_child_event"),
        )
        self._root = Frame(self._execution, previous_event_id=0)
        self._finished_event = self.clock.event()
        if child_of is None:
            self.clock.spawn(self._run, name=f"asl-exec-{self.name}")
        else:
            child_of.adopt(self._root)

    def run_here(self) -> ExecutionResult:
        """Run a ``child_of`` execution to its end in the calling thread."""
        self._run()
        assert self._result is not None
        return self._result

    # -- public -------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> ExecutionResult:
        """Block (in wall time) until the execution ends."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"execution {self.name} still running after {timeout}s")
        assert self._result is not None
        return self._result

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def history(self) -> list[HistoryEvent]:
        return list(self._recorder.events)

    @property
    def listener_error(self) -> BaseException | None:
        """The first exception raised by ``on_event`` (the run carries on regardless)."""
        return self._recorder.listener_error

    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        """Abort the execution (status ABORTED), like ``StopExecution``."""
        self._terminate(ABORTED, None, error, cause)

    def send_task_success(self, token: str, output: Any) -> None:
        self._execution.tokens.success(token, output)

    def send_task_failure(
        self, token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        self._execution.tokens.failure(token, error, cause)

    def send_task_heartbeat(self, token: str) -> None:
        self._execution.tokens.heartbeat(token)

    # -- internals --------------------------------------------------------------------------

    def _run(self) -> None:
        text = self._input_text
        try:
            self._recorder.add(
                "ExecutionStarted",
                0,
                {
                    "input": text,
                    "inputDetails": {"truncated": False},
                    "roleArn": self._machine.role_arn,
                },
            )
            timeout = self._machine.timeout_seconds
            if timeout is not None:
                self.clock.spawn(lambda: self._watchdog(timeout), name=f"asl-timeout-{self.name}")
            if payload_size_exceeded(text):
                raise StatesError(
                    DATA_LIMIT_EXCEEDED,
                    "The execution input exceeds the maximum number of bytes service limit.",
                )
            output = self._machine.machine.run(self._root, self._input)
        except StatesError as err:
            self._terminate(FAILED, None, err.error, err.cause)
        except ExecutionAborted:
            # Whoever cancelled the root frame already recorded the outcome; this is a
            # no-op then, and a safety net against ever leaving a caller waiting.
            self._terminate(FAILED, None, RUNTIME, "The execution was aborted unexpectedly")
        except Exception as exc:
            self._terminate(FAILED, None, RUNTIME, f"{type(exc).__name__}({exc})")
        else:
            self._terminate(SUCCEEDED, output, None, None)
        finally:
            self._finished_event.set()

    def _watchdog(self, timeout: float) -> None:
        if not self._finished_event.wait(timeout):
            self._terminate(TIMED_OUT, None, TIMEOUT, None)

    def _terminate(self, status: str, output: Any, error: str | None, cause: str | None) -> None:
        with self._finish_lock:
            if self._result is not None:
                return
            if not self._execution.terminate(status, error, cause):
                return
            if self._recorder.limit_exceeded:
                # The history quota's ExecutionFailed is already the last event.
                status, output, error, cause = FAILED, None, RUNTIME, HISTORY_LIMIT_CAUSE
            details: dict[str, Any]
            if status == SUCCEEDED:
                details = {"output": to_json(output), "outputDetails": {"truncated": False}}
            else:
                details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            event_type = {
                SUCCEEDED: "ExecutionSucceeded",
                FAILED: "ExecutionFailed",
                TIMED_OUT: "ExecutionTimedOut",
                ABORTED: "ExecutionAborted",
            }[status]
            self._recorder.add(event_type, self._root.previous_event_id, details, final=True)
            if self._recorder.limit_exceeded:
                status, output, error, cause = FAILED, None, RUNTIME, HISTORY_LIMIT_CAUSE
            self._result = ExecutionResult(
                status=status,
                output=output if status == SUCCEEDED else None,
                error=error,
                cause=cause,
                history=list(self._recorder.events),
                execution_arn=self.execution_arn,
                name=self.name,
            )
        # Unwind every other thread of the execution (branches, iterations, waits).
        self._root.cancel()
        self._done.set()


class StateMachine:
    """A validated ASL definition that can be executed locally."""

    def __init__(
        self,
        definition: dict[str, Any] | str,
        name: str = "StateMachine",
        *,
        role_arn: str = ROLE_ARN,
        region: str = REGION,
        account_id: str = ACCOUNT,
        state_machine_name: str | None = None,
        machine_type: str = STANDARD,
    ) -> None:
        """Validate and compile ``definition``.

        ``role_arn``/``region``/``account_id`` only shape the ARNs seen in the context
        object and history. ``state_machine_name`` is an alias of ``name``.
        ``machine_type`` (``STANDARD`` or ``EXPRESS``) picks the quotas: Standard
        executions fail at 25,000 history events, Express ones time out after 5 minutes.
        """
        if machine_type not in (STANDARD, EXPRESS):
            raise ValueError(
                f"machine_type must be {STANDARD!r} or {EXPRESS!r}, got {machine_type!r}"
            )
        definition, problems = load_definition(definition)
        if problems:
            raise AslDefinitionError(problems)
        assert isinstance(definition, dict)
        self.definition: dict[str, Any] = definition
        self.name = state_machine_name or name
        self.role_arn = role_arn
        self.region = region
        self.account_id = account_id
        self.arn = f"arn:aws:states:{region}:{account_id}:stateMachine:{self.name}"
        self.machine_type = machine_type
        self.timeout_seconds: int | None = definition.get("TimeoutSeconds")
        if machine_type == EXPRESS:
            self.timeout_seconds = min(
                self.timeout_seconds or EXPRESS_MAX_DURATION_SECONDS, EXPRESS_MAX_DURATION_SECONDS
            )
        self.machine = Machine(definition)

    def child_machine(self, machine: Machine, label: str, execution_type: str) -> StateMachine:
        """A Distributed Map's ItemProcessor as the state machine its child executions
        run: named ``<parent>/<label>`` as on AWS, Standard or Express quotas."""
        child = object.__new__(StateMachine)
        child.definition = {}
        child.name = f"{self.name}/{label}"
        child.role_arn = self.role_arn
        child.region = self.region
        child.account_id = self.account_id
        child.arn = f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{child.name}"
        child.machine_type = execution_type
        child.timeout_seconds = EXPRESS_MAX_DURATION_SECONDS if execution_type == EXPRESS else None
        child.machine = machine
        return child

    def start(self, input: Any = None, **options: Unpack[StartOptions]) -> ExecutionHandle:
        """Start an execution in the background and return its handle (the options:
        :class:`StartOptions`; a ``seed`` makes runs reproducible)."""
        return ExecutionHandle(self, {} if input is None else input, **options)

    def execute(self, input: Any = None, **options: Unpack[StartOptions]) -> ExecutionResult:
        """Run to completion: ``start(...).wait()``."""
        return self.start(input, **options).wait()


__all__ = ["ExecutionHandle", "ExecutionResult", "StartOptions", "StateMachine"]

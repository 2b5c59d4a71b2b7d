"""Error types and the reserved ``States.*`` error names of the Amazon States Language."""

from __future__ import annotations

import json
from typing import Any, Final

from stepdag.asl.diagnostics import aws_message, diagnostics

ALL: Final = "States.ALL"
TASK_FAILED: Final = "States.TaskFailed"
TIMEOUT: Final = "States.Timeout"
HEARTBEAT_TIMEOUT: Final = "States.HeartbeatTimeout"
RUNTIME: Final = "States.Runtime"
DATA_LIMIT_EXCEEDED: Final = "States.DataLimitExceeded"
BRANCH_FAILED: Final = "States.BranchFailed"
NO_CHOICE_MATCHED: Final = "States.NoChoiceMatched"
INTRINSIC_FAILURE: Final = "States.IntrinsicFailure"
RESULT_PATH_MATCH_FAILURE: Final = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE: Final = "States.ParameterPathFailure"
EXCEED_TOLERATED_FAILURE_THRESHOLD: Final = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED: Final = "States.ItemReaderFailed"
PERMISSIONS: Final = "States.Permissions"

KNOWN_STATES_ERRORS: Final = frozenset(
    {
        ALL,
        TASK_FAILED,
        TIMEOUT,
        HEARTBEAT_TIMEOUT,
        RUNTIME,
        DATA_LIMIT_EXCEEDED,
        BRANCH_FAILED,
        NO_CHOICE_MATCHED,
        INTRINSIC_FAILURE,
        RESULT_PATH_MATCH_FAILURE,
        PARAMETER_PATH_FAILURE,
        EXCEED_TOLERATED_FAILURE_THRESHOLD,
        ITEM_READER_FAILED,
        PERMISSIONS,
        "States.QueryEvaluationError",
        "States.Http.Socket",
    }
)

# AWS: "States.ALL ... can't catch the States.DataLimitExceeded terminal error and
# runtime error types"; States.Runtime "will always cause the execution to fail".
UNCATCHABLE: Final = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


def to_json(value: Any) -> str:
    """Serialize the way Step Functions prints payloads (compact, UTF-8 kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class AslDefinitionError(ValueError):
    """The definition is invalid, as ``CreateStateMachine`` would refuse it.

    ``diagnostics`` are what ``ValidateStateMachineDefinition`` returns (code, message,
    location); ``problems`` the same as one line each (``CODE: message at /States/X/F``);
    ``aws_message`` the ``InvalidDefinition`` text of ``CreateStateMachine``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.diagnostics = diagnostics(problems)
        self.problems = [str(d) for d in self.diagnostics]
        self.aws_message = aws_message(self.diagnostics)
        count = len(self.problems)
        header = f"Invalid State Machine Definition ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


class TaskFailure(Exception):
    """Raised by a task handler to fail the Task with an explicit error name and cause."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause is not None else error)
        self.error = error
        self.cause = cause


class StatesError(Exception):
    """An error reported by a state; it can be retried/caught unless it is terminal."""

    def __init__(self, error: str | None, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause

    @property
    def catchable(self) -> bool:
        return self.error not in UNCATCHABLE


class ExecutionAborted(Exception):
    """Unwinds every thread of an execution that was stopped, timed out or failed elsewhere."""

"""One exception hierarchy for the whole package.

Every error a user can cause is a ``StepdagError`` subclass with a message that says
what went wrong and where. The CLI prints these without a traceback; the REST API maps
them to problem documents in one place (``http_status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class StepdagError(Exception):
    """Base class: anything stepdag raises on purpose."""

    http_status = 500
    code = "stepdag_error"


@dataclass(frozen=True)
class Problem:
    """One validation finding, located precisely so a user can fix it."""

    check: str
    message: str
    workflow: str
    node: str | None = None
    parameter: str | None = None

    def where(self) -> str:
        parts = [f"workflow {self.workflow!r}"]
        if self.node is not None:
            parts.append(f"node {self.node!r}")
        if self.parameter is not None:
            parts.append(f"parameter {self.parameter!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"[{self.check}] {self.where()}: {self.message}"


class DagValidationError(StepdagError):
    """A workflow definition is invalid; carries every problem found, not just the first."""

    http_status = 422
    code = "invalid_workflow"

    def __init__(self, workflow: str, problems: Sequence[Problem]) -> None:
        self.workflow = workflow
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"workflow {workflow!r} is invalid ({count} {noun}):\n{lines}")


class WorkflowLoadError(StepdagError):
    """A WORKFLOW reference (``pkg.mod:attr`` or ``path.py:attr``) could not be loaded."""

    http_status = 404
    code = "workflow_not_found"


class CompileError(StepdagError):
    """The DAG is valid but breaks a Step Functions limit (state names, size, …)."""

    http_status = 422
    code = "compile_error"


class InputValidationError(StepdagError):
    """Execution input or a node's output does not match its declared type."""

    http_status = 400
    code = "invalid_input"


class RequestError(StepdagError):
    """A request the rules refuse: the caller's error (4xx), never the service's.

    ``field`` names the offending input: the API puts it in the problem document, the
    CLI in its message.  Raised below the API too (the execution lifecycle in
    ``runtime/executions.py``), so every entry point refuses the same requests alike.
    """

    http_status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequest(RequestError):
    """The request names something that does not fit (a node the workflow lacks, ...)."""


class Conflict(RequestError):
    """The request conflicts with the execution's state (already ended, running, ...)."""

    http_status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    """A start reuses a name (Idempotency-Key) with another input or tenant."""

    code = "idempotency_conflict"


class StepdagInvalidInput(InputValidationError):
    """Raised by the node runner; the class name is the Step Functions error name.

    Lambda reports ``type(exc).__name__`` as the error, so these names are part of the
    ASL contract (the compiler never retries them: retrying cannot fix bad data).
    """


class StepdagInvalidOutput(StepdagError):
    """A node returned a value that does not match its return annotation."""

    http_status = 500
    code = "invalid_output"


class StepdagUpstreamMissing(StepdagError):
    """A node ran before an upstream output existed: the state machine is out of date."""

    code = "upstream_missing"


class StoreError(StepdagError):
    """Base for persistence failures raised by an ExecutionStore backend."""

    code = "store_error"


class ExecutionNotFound(StoreError):
    http_status = 404
    code = "execution_not_found"


class ExecutionAlreadyExists(StoreError):
    http_status = 409
    code = "execution_already_exists"


class ConditionFailed(StoreError):
    """A conditional write lost a race (another writer got there first)."""

    http_status = 409
    code = "conflict"


# No exception type stands for "a node failed": a node's own exception leaves the runner
# as itself, so its class name stays the Step Functions error that Retry/Catch match (a
# stored failure is replayed under that name too: runtime.runner.error_class), and callers
# read failures from records (NodeRecord.error/cause, the execution's status).

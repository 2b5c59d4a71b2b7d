"""Status values. Records answer their own questions (``is_terminal``)."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Execution status, named exactly as Step Functions names it."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"

    @property
    def is_terminal(self) -> bool:
        return self not in (RunStatus.RUNNING, RunStatus.PENDING_REDRIVE)

    @property
    def can_resume(self) -> bool:
        """Redrive (resume) is allowed from any unsuccessful end, and from a crash."""
        return self is not RunStatus.SUCCEEDED


class NodeStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    # The attempt ran past its node's ``timeout``: its result, if it ever comes, is refused.
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in (
            NodeStatus.SUCCEEDED,
            NodeStatus.FAILED,
            NodeStatus.SKIPPED,
            NodeStatus.TIMED_OUT,
        )

    @property
    def has_output(self) -> bool:
        return self is NodeStatus.SUCCEEDED

    @property
    def is_failure(self) -> bool:
        """Ended without output by an error (its own, or its timeout)."""
        return self in (NodeStatus.FAILED, NodeStatus.TIMED_OUT)

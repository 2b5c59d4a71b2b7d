"""Store errors: all StoreError subclasses, so callers can catch one base.

They live apart from ``store.py`` (which re-exports them) to keep that module about the
persistence logic; HTTP statuses are mapped in one place through ``http_status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stepdag.core.errors import ConditionFailed, Conflict, ExecutionAlreadyExists, StoreError

if TYPE_CHECKING:
    from stepdag.runtime.records import ExecutionRecord, Lease, NodeRecord


class DuplicateExecution(ExecutionAlreadyExists):
    """The id, or the name within the workflow, is taken; ``existing`` is the record holding it.

    Callers use ``existing`` for idempotent starts (same name + same input -> same run).
    """

    def __init__(self, message: str, existing: ExecutionRecord) -> None:
        super().__init__(message)
        self.existing = existing


class NodeStateConflict(ConditionFailed):
    """A node transition was refused (claim lost, already completed, ...).

    ``current`` is the node's record at the time, output included.
    """

    def __init__(self, message: str, current: NodeRecord | None) -> None:
        super().__init__(message)
        self.current = current


class AttemptExpired(NodeStateConflict):
    """The attempt finished past its deadline (its node's timeout): it is fenced off, its
    result refused and the node recorded TIMED_OUT (``current``)."""


class LeaseHeld(Conflict):
    """Another process drives the execution (its lease, ``lease``, is live): a second
    run, resume or redrive of it at once is refused (409)."""

    def __init__(self, message: str, lease: Lease) -> None:
        super().__init__(message)
        self.lease = lease


class AmbiguousExecutionRef(StoreError):
    """An execution *name* matches executions of several workflows; pass ``workflow=``."""

    http_status = 409
    code = "ambiguous_execution_ref"


class InvalidPaginationToken(StoreError):
    http_status = 400
    code = "invalid_pagination_token"


class InvalidPayload(StoreError):
    """A value to store is not JSON (datetime, set, NaN, non-str keys, ...)."""

    http_status = 400
    code = "invalid_payload"


class MapItemsIncomplete(StoreError):
    """Some Map items have no stored output; ``missing`` lists their indexes."""

    http_status = 409
    code = "map_items_incomplete"

    def __init__(self, message: str, missing: Sequence[int]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class StoreUnavailable(StoreError):
    """The backend is busy, locked or unreachable; retrying later may succeed."""

    http_status = 503
    code = "store_unavailable"

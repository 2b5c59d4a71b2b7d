"""The execution lifecycle: start, cancel, redrive and rerun-from -- the rules, once.

Everything that changes an execution goes through :class:`Executions`: the REST API's
services (local and Step Functions) and the local engine's blocking ``run``/``resume``/
``rerun``.  What differs between engines sits behind the :class:`Launcher` port -- the id
a run gets, how it starts, restarts and stops.  Two launchers exist:
:class:`~stepdag.runtime.engine.LocalLauncher` (threads on the local engine) and
:class:`~stepdag.runtime.stepfunctions.StepFunctionsLauncher` (``StartExecution``,
``RedriveExecution``, ``StopExecution``).

The rules:

* **Start.** The name must be one Step Functions accepts and the input strict JSON within
  the size and depth limits (:mod:`stepdag.core.inputs`), both checked before anything is
  stored; the input must fit the workflow; the name is the caller's (or its
  Idempotency-Key), else a fresh uuid.  The record is stored *before* the launch, under
  the id the engine will give the run, so the node runner finds it instead of adopting
  an unknown execution.  A taken name is a *replay* when tenant and input are the same:
  the existing execution is the answer (``created`` False) and nothing starts twice; the
  launcher only launches a replayed record whose first launch never happened.  Another
  tenant or input is an :class:`IdempotencyConflict` (409).  A failed launch leaves the
  record RUNNING, so the caller's retry with the same name launches it.
* **Cancel.** An ended execution cannot be cancelled (409).  A live run is stopped; a
  record no run is behind (never launched, a crashed process) is marked ABORTED.
* **Redrive.** Neither a SUCCEEDED execution nor a live one (409: cancel it first).  The
  redrive count is bumped before the run restarts (the node runner numbers attempts
  from it), conditional on the status just read; if the launcher refuses, the record is
  restored.
* **Rerun from a node.** The node must be in the workflow -- a caller's error (400, field
  ``from``), on every path.  The new execution reuses every stored output not
  downstream of the node; the copies land before its run starts, so its first Task
  finds them.

This module imports neither the interpreter nor an AWS library: the API Lambda loads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from stepdag.core.errors import BadRequest, ConditionFailed, Conflict, IdempotencyConflict
from stepdag.core.graph import downstream
from stepdag.core.inputs import check_execution_name, validate_input
from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import ExecutionRecord
from stepdag.runtime.store import DuplicateExecution, ExecutionStore

CANCEL_ERROR: Final = "Cancelled"
CANCEL_CAUSE: Final = "cancelled through the stepdag API"
_NO_RUN_CAUSE: Final = f"{CANCEL_CAUSE} (no live run behind the record)"
_OPEN: Final = (RunStatus.RUNNING, RunStatus.PENDING_REDRIVE)


@dataclass(frozen=True)
class Stopped:
    """What a launcher's :meth:`Launcher.stop` did."""

    record: ExecutionRecord | None = None
    """The record after the run recorded its own end (the local engine writes ABORTED
    when its interpreter returns); None: the lifecycle records the abort."""
    at: datetime | None = None
    """When the engine stopped the run (``StopExecution``'s ``stopDate``)."""
    live: bool = True
    """False: no run was behind the record (never launched, or its process is gone)."""


class Launcher(Protocol):
    """Where runs happen.  The lifecycle decides whether and records what; a launcher
    only names, starts, restarts and stops runs."""

    def workflow(self, name: str) -> Dag:
        """The DAG runs of ``name`` execute; ``WorkflowLoadError`` (404) if unknown."""
        ...

    def execution_id(self, workflow: str, name: str) -> str:
        """The id the engine gives execution ``name`` of ``workflow``."""
        ...

    def definition_sha(self, workflow: str) -> str | None:
        """The digest of the definition runs execute, if this launcher knows it."""
        ...

    def launch(self, rec: ExecutionRecord) -> None:
        """Start the run of a stored record.  Raising leaves the record RUNNING."""
        ...

    def ensure_launched(self, rec: ExecutionRecord) -> None:
        """A replayed start: launch ``rec`` if its first launch never happened."""
        ...

    def is_live(self, rec: ExecutionRecord) -> bool:
        """Whether a run of ``rec`` is going on (a redrive would run it twice)."""
        ...

    def hold(self, rec: ExecutionRecord) -> None:
        """Take the recovery lease of ``rec`` (one driver at a time, across processes);
        ``Conflict`` (409) while another holds it.  A launched run keeps it."""
        ...

    def release(self, rec: ExecutionRecord) -> None:
        """Give up the lease :meth:`hold` took, when no run was launched after all."""
        ...

    def relaunch(self, rec: ExecutionRecord) -> None:
        """Redrive ``rec`` (its count already bumped); raise to refuse (``Conflict``)."""
        ...

    def stop(self, rec: ExecutionRecord, *, error: str, cause: str) -> Stopped:
        """Stop the run of ``rec``, if there is one."""
        ...


def reusable_nodes(store: ExecutionStore, dag: Dag, execution_id: str, from_node: str) -> list[str]:
    """Nodes whose stored outputs a rerun from ``from_node`` reuses: every succeeded node
    that is neither ``from_node`` nor downstream of it."""
    again = downstream(dag.preds, from_node)
    return [
        r.node
        for r in store.list_nodes(execution_id)
        if r.node not in again and r.status is NodeStatus.SUCCEEDED
    ]


def different_input(name: str | None, workflow: str) -> IdempotencyConflict:
    """The replay rule's refusal: the name is taken by a run with another input."""
    return IdempotencyConflict(
        f"execution {name!r} of workflow {workflow!r} already exists with a different "
        "input; use a new Idempotency-Key (or name) for a new run",
        field="input",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _same(rec: ExecutionRecord) -> ExecutionRecord:
    return rec


class Executions:
    """The lifecycle over one store and one launcher.

    ``refresh`` brings a stored record up to date before a rule reads it (on AWS: the
    status Step Functions reports for a run whose status-change event has not arrived);
    ``clock`` stamps ``started_at`` and the end of a cancel the lifecycle records.
    """

    def __init__(
        self,
        store: ExecutionStore,
        launcher: Launcher,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh: Callable[[ExecutionRecord], ExecutionRecord] | None = None,
    ) -> None:
        self.store = store
        self.launcher = launcher
        self._clock = clock or _now
        self._refresh = refresh or _same

    def get(self, ref: str, *, tenant: str | None = None) -> ExecutionRecord:
        return self._refresh(self.store.get_execution(ref, tenant=tenant))

    def create(
        self,
        dag: Dag,
        input: Any,
        *,
        name: str | None = None,
        tenant: str | None = None,
        rerun_of: str | None = None,
        rerun_from: str | None = None,
    ) -> ExecutionRecord:
        """Check the name and the input and store a new RUNNING record without launching
        it; ``DuplicateExecution`` if the name is taken."""
        if name is not None:
            check_execution_name(name)
        validate_input(dag, input)
        name = name or uuid.uuid4().hex
        rec = ExecutionRecord(
            execution_id=self.launcher.execution_id(dag.workflow, name),
            name=name,
            workflow=dag.workflow,
            started_at=self._clock(),
            input=input,
            tenant=tenant,
            definition_sha=self.launcher.definition_sha(dag.workflow),
            rerun_of=rerun_of,
            rerun_from=rerun_from,
        )
        return self.store.create_execution(rec)

    def start(
        self, workflow: str, input: Any, *, name: str | None = None, tenant: str | None = None
    ) -> tuple[ExecutionRecord, bool]:
        """(record, created): a replay of the same name, input and tenant is (existing, False)."""
        dag = self.launcher.workflow(workflow)
        try:
            rec = self.create(dag, input, name=name, tenant=tenant)
        except DuplicateExecution as dup:
            old = dup.existing
            if old.tenant != tenant:
                raise IdempotencyConflict(
                    f"execution name {name!r} is taken in workflow {workflow!r}", field="name"
                ) from None
            if old.input != input:
                raise different_input(name, workflow) from None
            self.launcher.ensure_launched(old)
            return self._refresh(old), False
        self.launcher.launch(rec)
        return rec, True

    def cancel(self, ref: str, *, tenant: str | None = None) -> ExecutionRecord:
        rec = self.get(ref, tenant=tenant)
        if rec.is_terminal:
            raise Conflict(f"execution {rec.name!r} already ended {rec.status.value}")
        stopped = self.launcher.stop(rec, error=CANCEL_ERROR, cause=CANCEL_CAUSE)
        if stopped.record is not None:
            return stopped.record
        ended = stopped.at or self._clock()
        try:
            return self.store.update_execution(
                rec.execution_id,
                status=RunStatus.ABORTED,
                expected=list(_OPEN),
                error=CANCEL_ERROR,
                cause=CANCEL_CAUSE if stopped.live else _NO_RUN_CAUSE,
                ended_at=ended if ended.tzinfo else ended.replace(tzinfo=UTC),
            )
        except ConditionFailed:  # the run (or another request) recorded its end first
            return self.store.get_execution(rec.execution_id)

    def redrive(self, ref: str, *, tenant: str | None = None) -> ExecutionRecord:
        """Continue a failed, aborted or interrupted execution; completed nodes are
        answered from the store, not run again."""
        rec = self.get(ref, tenant=tenant)
        self.launcher.workflow(rec.workflow)
        self.launcher.hold(rec)
        try:
            return self._redrive(self.get(rec.execution_id))  # re-read under the lease
        except BaseException:
            self.launcher.release(rec)
            raise

    def _redrive(self, rec: ExecutionRecord) -> ExecutionRecord:
        if rec.status is RunStatus.SUCCEEDED:
            raise Conflict(f"execution {rec.name!r} already SUCCEEDED; nothing to redrive")
        if self.launcher.is_live(rec):
            raise Conflict(f"execution {rec.name!r} is running; cancel it first")
        try:
            bumped = self.store.update_execution(
                rec.execution_id,
                status=RunStatus.RUNNING,
                expected=[rec.status],
                redrive_count=rec.redrive_count + 1,
                expected_redrive_count=rec.redrive_count,
                error=None,
                cause=None,
                ended_at=None,
            )
        except ConditionFailed:  # another redrive of the same state got there first
            raise Conflict(f"execution {rec.name!r} is being redriven already") from None
        try:
            self.launcher.relaunch(bumped)
        except BaseException:
            self.store.update_execution(
                rec.execution_id,
                status=rec.status,
                expected=[RunStatus.RUNNING],
                redrive_count=rec.redrive_count,
                error=rec.error,
                cause=rec.cause,
                ended_at=rec.ended_at,
            )
            raise
        return bumped

    def rerun(
        self,
        ref: str,
        from_node: str,
        *,
        name: str | None = None,
        tenant: str | None = None,
    ) -> ExecutionRecord:
        """A new execution that reuses every stored output not downstream of ``from_node``."""
        old = self.get(ref, tenant=tenant)
        dag = self.launcher.workflow(old.workflow)
        if from_node not in dag.nodes:
            raise BadRequest(
                f"workflow {dag.workflow!r} has no node {from_node!r}; "
                f"nodes: {', '.join(dag.nodes)}",
                field="from",
            )
        reuse = reusable_nodes(self.store, dag, old.execution_id, from_node)
        try:
            rec = self.create(
                dag,
                old.input,
                name=name,
                tenant=old.tenant,
                rerun_of=old.execution_id,
                rerun_from=from_node,
            )
        except DuplicateExecution:
            raise Conflict(f"execution name {name!r} is taken", field="name") from None
        self.store.copy_nodes(old.execution_id, rec.execution_id, reuse)
        self.launcher.launch(rec)
        return rec


__all__ = [
    "CANCEL_CAUSE",
    "CANCEL_ERROR",
    "Executions",
    "Launcher",
    "Stopped",
    "different_input",
    "reusable_nodes",
]

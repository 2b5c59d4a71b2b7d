"""What the routes call: the :class:`ExecutionService` protocol and its local implementation.

The routes know nothing about engines or stores, so the same API can front the local
engine (``stepdag serve``) or, later, Step Functions (``StartExecution`` via boto3; not
implemented yet).  Every method takes the caller's ``tenant``: ``None`` is unscoped, a
value restricts reads and writes to that tenant's executions, and another tenant's
execution is reported as *not found* (never "forbidden": that would confirm it exists).

Cancel (local): executions run on stepdag's interpreter in a background thread; the engine
used here records each run's interpreter handle, so cancel calls the real ``stop()`` --
the run ends ABORTED with an ``ExecutionAborted`` history event, exactly like
``StopExecution``.  A RUNNING execution that no thread of this process is running (a
crashed process, another server) is marked ABORTED in the store instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from stepdag.api.errors import (
    BadRequest,
    Conflict,
    IdempotencyConflict,
    NodeNotFound,
    NoOutput,
)
from stepdag.asl import Clock, HistoryEvent, StateMachine, TaskHandler
from stepdag.asl.interpreter import ExecutionHandle, ExecutionResult
from stepdag.core.errors import WorkflowLoadError
from stepdag.core.model import Dag, Workflow
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.engine import LocalEngine, reusable_nodes
from stepdag.runtime.records import ExecutionRecord, NodeKey, NodeRecord, Page
from stepdag.runtime.store import DuplicateExecution, ExecutionStore

logger = logging.getLogger("stepdag.api")


class ExecutionService(Protocol):
    def workflows(self) -> list[Dag]: ...

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        """The DAG and its compiled definition; WorkflowLoadError (404) if unknown."""
        ...

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        """(record, created): a replay of the same name and input is (existing, False)."""
        ...

    def get(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def list_executions(
        self,
        *,
        workflow: str | None,
        status: RunStatus | None,
        tenant: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[ExecutionRecord]: ...

    def nodes(
        self, ref: str, *, tenant: str | None
    ) -> tuple[ExecutionRecord, list[NodeRecord]]: ...

    def node_output(self, ref: str, node: str, *, tenant: str | None) -> tuple[str, Any]: ...

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord: ...

    def health(self) -> dict[str, Any]: ...


class _TrackedMachine(StateMachine):
    """A StateMachine whose synchronous ``execute`` exposes the running handle, so the
    service can ``stop()`` it (LocalEngine itself only ever sees the final result)."""

    def __init__(
        self,
        definition: dict[str, Any],
        name: str,
        *,
        on_start: Callable[[ExecutionHandle], None],
    ) -> None:
        super().__init__(definition, name=name)
        self._on_start = on_start

    def execute(
        self,
        input: Any = None,
        *,
        task_handler: TaskHandler | None = None,
        name: str | None = None,
        execution_id: str | None = None,
        clock: Clock | None = None,
        on_event: Callable[[HistoryEvent], None] | None = None,
        context_overrides: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> ExecutionResult:
        handle = self.start(
            input,
            task_handler=task_handler,
            name=name,
            execution_id=execution_id,
            clock=clock,
            on_event=on_event,
            context_overrides=context_overrides,
            seed=seed,
        )
        self._on_start(handle)
        return handle.wait()


class _TrackingEngine(LocalEngine):
    """LocalEngine whose machines report their running handles to ``on_start``."""

    def __init__(self, store: ExecutionStore, on_start: Callable[[ExecutionHandle], None]) -> None:
        self._on_start = on_start
        self._tracked: dict[str, _TrackedMachine] = {}
        self._tracked_lock = threading.Lock()
        super().__init__(store)

    def machine(self, workflow: str) -> StateMachine:
        with self._tracked_lock:
            sm = self._tracked.get(workflow)
        if sm is None:
            sm = _TrackedMachine(self.definition(workflow), workflow, on_start=self._on_start)
            with self._tracked_lock:
                self._tracked[workflow] = sm
        return sm


class StoreReads:
    """Reads every service answers from the ExecutionStore, tenant-scoped.

    Local and AWS services differ only in how a record is brought up to date
    (``_fresh``): locally the engine writes final statuses itself; on AWS a run that is
    not finished yet is refreshed from Step Functions when read.
    """

    store: ExecutionStore
    _dags: dict[str, Dag]

    def _fresh(self, rec: ExecutionRecord) -> ExecutionRecord:
        return rec

    def get(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self._fresh(self.store.get_execution(ref, tenant=tenant))

    def list_executions(
        self,
        *,
        workflow: str | None,
        status: RunStatus | None,
        tenant: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[ExecutionRecord]:
        return self.store.list_executions(
            workflow=workflow, status=status, tenant=tenant, limit=limit, next_token=next_token
        )

    def nodes(self, ref: str, *, tenant: str | None) -> tuple[ExecutionRecord, list[NodeRecord]]:
        rec = self.get(ref, tenant=tenant)
        return rec, self.store.list_nodes(rec.execution_id, include_items=True)

    def node_output(self, ref: str, node: str, *, tenant: str | None) -> tuple[str, Any]:
        rec = self.get(ref, tenant=tenant)
        found = self.store.get_node(NodeKey(rec.execution_id, node))
        if found is None:
            dag = self._dags.get(rec.workflow)
            if dag is not None and node not in dag.nodes:
                raise NodeNotFound(f"workflow {rec.workflow!r} has no node {node!r}", field="node")
            raise NoOutput(f"node {node!r} of {rec.name!r} has not run", field="node")
        if found.status is not NodeStatus.SUCCEEDED:
            raise NoOutput(f"node {node!r} of {rec.name!r} is {found.status.value}; no output")
        return rec.execution_id, found.output


class LocalExecutionService(StoreReads):
    """ExecutionService on a LocalEngine; executions run in background threads."""

    def __init__(self, store: ExecutionStore, workflows: Iterable[Workflow | Dag] = ()) -> None:
        self.store = store
        self.engine = _TrackingEngine(store, self._started)
        self._dags: dict[str, Dag] = {}
        for wf in workflows:
            dag = self.engine.register(wf)
            self._dags[dag.workflow] = dag
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._handles: dict[str, ExecutionHandle] = {}
        self._stop_requested: set[str] = set()

    # -------------------------------------------------------------- workflows

    def workflows(self) -> list[Dag]:
        return [self._dags[k] for k in sorted(self._dags)]

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        dag = self._dag(name)
        return dag, self.engine.definition(dag.workflow)

    def _dag(self, name: str) -> Dag:
        dag = self._dags.get(name)
        if dag is None:
            raise WorkflowLoadError(f"no workflow named {name!r} is loaded")
        return dag

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "workflows": len(self._dags), "store": type(self.store).__name__}

    # -------------------------------------------------------------- writes

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        dag = self._dag(workflow)
        try:
            rec = self.engine.create(dag, input, name=name, tenant=tenant)
        except DuplicateExecution as dup:
            old = dup.existing
            # StartExecution's rule: same name and input is the same request, replayed.
            if old.tenant != tenant:
                raise IdempotencyConflict(
                    f"execution name {name!r} is taken in workflow {workflow!r}", field="name"
                ) from None
            if old.input != input:
                raise IdempotencyConflict(
                    f"execution {name!r} of workflow {workflow!r} already exists with a "
                    "different input; use a new Idempotency-Key (or name) for a new run",
                    field="input",
                ) from None
            return old, False
        self._spawn(rec)
        return rec, True

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        rec = self.get(ref, tenant=tenant)
        if rec.is_terminal:
            raise Conflict(f"execution {rec.name!r} already ended {rec.status.value}")
        with self._lock:
            thread = self._threads.get(rec.execution_id)
            if thread is not None:
                self._stop_requested.add(rec.execution_id)
                handle = self._handles.get(rec.execution_id)
                if handle is not None:
                    handle.stop("Cancelled", "cancelled through the stepdag API")
        if thread is not None:
            # The engine writes ABORTED when the interpreter returns; that is quick.
            thread.join(timeout=10)
            return self.store.get_execution(rec.execution_id)
        return self.store.update_execution(
            rec.execution_id,
            status=RunStatus.ABORTED,
            expected=[RunStatus.RUNNING, RunStatus.PENDING_REDRIVE],
            error="Cancelled",
            cause="cancelled through the stepdag API (no live run in this process)",
            ended_at=datetime.now(UTC),
        )

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        rec = self.get(ref, tenant=tenant)
        self._dag(rec.workflow)
        if rec.status is RunStatus.SUCCEEDED:
            raise Conflict(f"execution {rec.name!r} already SUCCEEDED; nothing to redrive")
        with self._lock:
            if rec.execution_id in self._threads:
                raise Conflict(f"execution {rec.name!r} is running; cancel it first")
        # LocalEngine.resume, split: the status change happens now, the run in background.
        rec = self.store.update_execution(
            rec.execution_id,
            status=RunStatus.RUNNING,
            expected=[s for s in RunStatus if s is not RunStatus.SUCCEEDED],
            redrive_count=rec.redrive_count + 1,
            error=None,
            cause=None,
            ended_at=None,
        )
        self._spawn(rec)
        return rec

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord:
        old = self.get(ref, tenant=tenant)
        dag = self._dag(old.workflow)
        if from_node not in dag.nodes:
            raise BadRequest(
                f"workflow {dag.workflow!r} has no node {from_node!r}; "
                f"nodes: {', '.join(dag.nodes)}",
                field="from",
            )
        # LocalEngine.rerun, split so the new execution runs in the background.
        reuse = reusable_nodes(self.store, dag, old.execution_id, from_node)
        try:
            rec = self.engine.create(
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
        self._spawn(rec)
        return rec

    # -------------------------------------------------------------- background runs

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Join every background run (tests; graceful shutdown)."""
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)

    def _spawn(self, rec: ExecutionRecord) -> None:
        thread = threading.Thread(
            target=self._run, args=(rec,), name=f"stepdag-run-{rec.name}", daemon=True
        )
        with self._lock:
            self._threads[rec.execution_id] = thread
        thread.start()

    def _started(self, handle: ExecutionHandle) -> None:
        with self._lock:
            self._handles[handle.execution_arn] = handle
            stop = handle.execution_arn in self._stop_requested
        if stop:  # cancelled between the thread's start and the interpreter's
            handle.stop("Cancelled", "cancelled through the stepdag API")

    def _run(self, rec: ExecutionRecord) -> None:
        try:
            self.engine.execute(rec)
        except Exception as exc:  # a background run has no caller to raise to
            logger.exception("execution %s failed outside the interpreter", rec.execution_id)
            try:
                self.store.update_execution(
                    rec.execution_id,
                    status=RunStatus.FAILED,
                    expected=[RunStatus.RUNNING],
                    error=type(exc).__name__,
                    cause=str(exc),
                    ended_at=datetime.now(UTC),
                )
            except Exception:
                logger.exception("could not record the failure of %s", rec.execution_id)
        finally:
            with self._lock:
                self._threads.pop(rec.execution_id, None)
                self._handles.pop(rec.execution_id, None)
                self._stop_requested.discard(rec.execution_id)


def service_for(
    store: ExecutionStore, workflows: Mapping[str, Workflow | Dag] | Iterable[Workflow | Dag]
) -> LocalExecutionService:
    values = workflows.values() if isinstance(workflows, Mapping) else workflows
    return LocalExecutionService(store, values)


__all__ = ["ExecutionService", "LocalExecutionService", "service_for"]

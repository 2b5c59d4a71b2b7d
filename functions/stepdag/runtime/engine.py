"""The local engine: the compiled ASL, run by stepdag's interpreter, nodes in-process.

It runs exactly the definition that deploys to Step Functions (the Task resource is
substituted with a local ARN, as CDK substitutes the real one), so a workflow that
runs here runs on AWS. State lives in an ExecutionStore (SQLite by default).

Resume is Step Functions' redrive done locally: the same execution id is executed again
with its redrive count bumped; the node runner answers completed nodes from the store
without calling them, so only unfinished work runs.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stepdag.asl import Clock, HistoryEvent, StateMachine, TaskContext, TaskFailure
from stepdag.core.compile import Targets, compile_dag, to_json
from stepdag.core.errors import InputValidationError, StepdagError
from stepdag.core.graph import ancestor_sets
from stepdag.core.model import PARAMS, Dag, Workflow
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.logs import FileLogSink, LogCapture, LogSink
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.store import ExecutionStore

logger = logging.getLogger("stepdag.engine")

LOCAL_FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:stepdag-node-runner"
DEFAULT_HOME = Path(".stepdag")


def execution_arn(workflow: str, name: str) -> str:
    return f"arn:aws:states:local:000000000000:execution:{workflow}:{name}"


def state_machine_arn(workflow: str) -> str:
    return f"arn:aws:states:local:000000000000:stateMachine:{workflow}"


def lambda_cause(exc: BaseException) -> str:
    """The Cause Step Functions records for a failed Lambda task (its error JSON)."""
    # Compact separators, key order of the AWS Python runtime: the exact Cause text.
    return json.dumps(
        {"errorMessage": str(exc), "errorType": type(exc).__name__}, separators=(",", ":")
    )


def default_store(home: Path | str = DEFAULT_HOME) -> ExecutionStore:
    from stepdag.runtime.sqlite import SqliteStore

    Path(home).mkdir(parents=True, exist_ok=True)
    return SqliteStore(Path(home) / "stepdag.db")


def default_log_sink(store: ExecutionStore) -> LogSink | None:
    """Node logs of a file-backed store live beside it (``<home>/logs/``), so every local
    entry point -- ``stepdag run``, ``stepdag serve``, a test's engine -- captures them
    where ``stepdag logs`` reads; a store without a path captures nothing."""
    path = getattr(store, "path", None)
    return FileLogSink(Path(path).parent / "logs") if isinstance(path, Path) else None


class ResumeNotAllowed(StepdagError):
    http_status = 409
    code = "resume_not_allowed"


class _HistoryWriter:
    """Writes history events to the store from one background thread, in batches.

    The interpreter hands events over while holding its history lock (that keeps their
    order), so the hand-over is a list append. The writer wakes every ``interval`` seconds
    or when someone flushes, never per event: a thread woken per event would compete for
    the GIL with the workers running nodes. History is for inspection; node outputs,
    which must survive a crash, are committed by the runner itself.
    """

    def __init__(self, store: ExecutionStore, interval: float = 0.2) -> None:
        self.store = store
        self.interval = interval
        self._buf: list[tuple[str, int, HistoryEvent] | threading.Event] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, execution_id: str, offset: int, event: HistoryEvent) -> None:
        with self._cond:
            self._buf.append((execution_id, offset, event))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="stepdag-history", daemon=True
                )
                self._thread.start()

    def flush(self) -> None:
        """Block until every event put before this call is in the store."""
        done = threading.Event()
        with self._cond:
            if self._thread is None:
                return
            self._buf.append(done)
            self._cond.notify()
        done.wait()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._buf:
                    self._cond.wait(self.interval)
                items, self._buf = self._buf, []
            if items:
                self._write(items)

    def _write(self, items: list[tuple[str, int, HistoryEvent] | threading.Event]) -> None:
        batches: dict[str, list[dict[str, Any]]] = {}
        barriers = []
        for item in items:
            if isinstance(item, threading.Event):
                barriers.append(item)
                continue
            execution_id, offset, event = item
            data = event.to_dict()
            if offset:  # a redrive continues the stored history's numbering
                data["id"] += offset
                if data.get("previousEventId"):
                    data["previousEventId"] += offset
            batches.setdefault(execution_id, []).append(data)
        for execution_id, events in batches.items():
            try:
                self.store.append_events(execution_id, events)
            except Exception:  # history must never take a run down; keep going
                logger.exception("could not store %d history events", len(events))
        for barrier in barriers:
            barrier.set()


class LocalEngine:
    def __init__(
        self,
        store: ExecutionStore | None = None,
        *,
        clock: Clock | None = None,
        workflows: Mapping[str, Workflow | Dag] | None = None,
        max_active: int | None = None,
        logs: LogSink | None = None,
    ) -> None:
        """``logs``: where node logs are captured (default: ``logs/`` beside a file
        store's database, see :func:`default_log_sink`).

        ``max_active`` bounds how many executions run at once in this engine (others
        wait their turn, in order). Unbounded by default: nodes that wait on I/O want
        every execution running; CPU-bound nodes in one process get more throughput
        from a small bound (GIL and SQLite's single writer)."""
        self._store = store
        self._admission = threading.BoundedSemaphore(max_active) if max_active else None
        self.clock = clock
        self._dags: dict[str, Dag] = {}
        self._machines: dict[str, StateMachine] = {}
        self._definitions: dict[str, tuple[dict[str, Any], str]] = {}
        self._lock = threading.Lock()
        for wf in (workflows or {}).values():
            self.register(wf)
        self.logs = logs if logs is not None else default_log_sink(self.store)
        capture = LogCapture(self.logs) if self.logs is not None else None
        self.runner = NodeRunner(self._dags, self.store, log_capture=capture)
        self.history = _HistoryWriter(self.store)

    @property
    def store(self) -> ExecutionStore:
        if self._store is None:  # lazily: importing/constructing the engine touches no disk
            self._store = default_store()
        return self._store

    # ------------------------------------------------------------------ registry

    def register(self, workflow: Workflow | Dag) -> Dag:
        dag = workflow.build() if isinstance(workflow, Workflow) else workflow
        with self._lock:
            if self._dags.get(dag.workflow) is not dag:
                self._dags[dag.workflow] = dag
                self._machines.pop(dag.workflow, None)
                self._definitions.pop(dag.workflow, None)
        return dag

    def definition(self, workflow: str) -> dict[str, Any]:
        return self._compiled(workflow)[0]

    def _compiled(self, workflow: str) -> tuple[dict[str, Any], str]:
        """The definition and its digest, compiled once per registered DAG."""
        with self._lock:
            hit = self._definitions.get(workflow)
        if hit is None:
            targets = Targets(resource=lambda _n: LOCAL_FUNCTION_ARN)
            definition = compile_dag(self._dags[workflow], targets).definition
            hit = (definition, _sha(definition))
            with self._lock:
                self._definitions[workflow] = hit
        return hit

    def machine(self, workflow: str) -> StateMachine:
        with self._lock:
            sm = self._machines.get(workflow)
        if sm is None:
            sm = StateMachine(self.definition(workflow), name=workflow)
            with self._lock:
                self._machines[workflow] = sm
        return sm

    # ------------------------------------------------------------------ runs

    def run(
        self,
        workflow: Workflow | Dag | str,
        input: Any = None,
        *,
        name: str | None = None,
        on_event: Callable[[HistoryEvent], None] | None = None,
        tenant: str | None = None,
    ) -> ExecutionRecord:
        """Start an execution and run it to the end; returns the final record."""
        rec = self.create(workflow, input, name=name, tenant=tenant)
        return self.execute(rec, on_event=on_event)

    def create(
        self,
        workflow: Workflow | Dag | str,
        input: Any = None,
        *,
        name: str | None = None,
        tenant: str | None = None,
        rerun_of: str | None = None,
        rerun_from: str | None = None,
    ) -> ExecutionRecord:
        """Validate the input and record a new execution (RUNNING) without running it."""
        dag = self._dags[workflow] if isinstance(workflow, str) else self.register(workflow)
        validate_input(dag, input)
        name = name or uuid.uuid4().hex
        rec = ExecutionRecord(
            execution_id=execution_arn(dag.workflow, name),
            name=name,
            workflow=dag.workflow,
            started_at=datetime.now(UTC),
            input=input,
            tenant=tenant,
            definition_sha=self._compiled(dag.workflow)[1],
            rerun_of=rerun_of,
            rerun_from=rerun_from,
        )
        return self.store.create_execution(rec)

    def resume(
        self, ref: str, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> ExecutionRecord:
        """Redrive a failed or interrupted execution; completed nodes are not run again."""
        rec = self.store.get_execution(ref)
        if rec.status is RunStatus.SUCCEEDED:
            raise ResumeNotAllowed(f"execution {rec.name!r} already SUCCEEDED; nothing to resume")
        self._require_workflow(rec.workflow)
        rec = self.store.update_execution(
            rec.execution_id,
            status=RunStatus.RUNNING,
            expected=[s for s in RunStatus if s is not RunStatus.SUCCEEDED],
            redrive_count=rec.redrive_count + 1,
            error=None,
            cause=None,
            ended_at=None,
        )
        return self.execute(rec, on_event=on_event)

    def rerun(
        self,
        ref: str,
        from_node: str,
        *,
        name: str | None = None,
        on_event: Callable[[HistoryEvent], None] | None = None,
    ) -> ExecutionRecord:
        """New execution that reuses every stored output not downstream of ``from_node``."""
        old = self.store.get_execution(ref)
        dag = self._require_workflow(old.workflow)
        if from_node not in dag.nodes:
            raise StepdagError(
                f"workflow {dag.workflow!r} has no node {from_node!r}; "
                f"nodes: {', '.join(dag.nodes)}"
            )
        reuse = reusable_nodes(self.store, dag, old.execution_id, from_node)
        rec = self.create(
            dag,
            old.input,
            name=name,
            tenant=old.tenant,
            rerun_of=old.execution_id,
            rerun_from=from_node,
        )
        self.store.copy_nodes(old.execution_id, rec.execution_id, reuse)
        return self.execute(rec, on_event=on_event)

    # ------------------------------------------------------------------ internals

    def _require_workflow(self, workflow: str) -> Dag:
        dag = self._dags.get(workflow)
        if dag is None:
            raise StepdagError(
                f"workflow {workflow!r} is not loaded; pass --workflow or run from the project "
                "directory so statemachines/ can be discovered"
            )
        return dag

    def execute(
        self, rec: ExecutionRecord, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> ExecutionRecord:
        """Run a created (or redriven) execution to its end and record the outcome."""
        if self._admission is None:
            return self._execute(rec, on_event)
        with self._admission:
            return self._execute(rec, on_event)

    def _execute(
        self, rec: ExecutionRecord, on_event: Callable[[HistoryEvent], None] | None
    ) -> ExecutionRecord:
        sm = self.machine(rec.workflow)
        offset = len(self.store.get_events(rec.execution_id)) if rec.redrive_count else 0
        history = self.history

        def sink(event: HistoryEvent) -> None:
            if on_event is not None:
                on_event(event)
            history.put(rec.execution_id, offset, event)

        try:
            redrive = rec.redrive_count

            def handler(resource: str, parameters: Any, ctx: TaskContext) -> Any:
                return self._task_handler(resource, {**parameters, "redrive": redrive}, ctx)

            result = sm.execute(
                rec.input,
                task_handler=handler,
                name=rec.name,
                execution_id=rec.execution_id,
                clock=self.clock,
                on_event=sink,
                context_overrides={"Execution": {"RedriveCount": rec.redrive_count}},
            )
        finally:
            history.flush()
        status = RunStatus(result.status)
        output = (
            self.workflow_output(rec.execution_id, rec.workflow)
            if result.status == "SUCCEEDED"
            else None
        )
        return self.store.update_execution(
            rec.execution_id,
            status=status,
            expected=[RunStatus.RUNNING],
            output=output,
            error=result.error,
            cause=result.cause,
            ended_at=datetime.now(UTC),
        )

    def _task_handler(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        try:
            return self.runner.handle(parameters)
        except Exception as exc:
            # Lambda's contract: error name = exception class, cause = its error JSON.
            raise TaskFailure(type(exc).__name__, lambda_cause(exc)) from exc

    def workflow_output(self, execution_id: str, workflow: str) -> Any:
        """The workflow's result: its sink node's output, or {sink: output} for several."""
        dag = self._dags[workflow]
        outputs = {}
        for sink in dag.sinks:
            r = self.store.get_node(NodeKey(execution_id, sink))
            outputs[sink] = r.output if r is not None and r.status is NodeStatus.SUCCEEDED else None
        return outputs[dag.sinks[0]] if len(dag.sinks) == 1 else outputs


def reusable_nodes(store: ExecutionStore, dag: Dag, execution_id: str, from_node: str) -> list[str]:
    """Nodes whose stored outputs a rerun from ``from_node`` reuses: every succeeded node
    that is neither ``from_node`` nor downstream of it."""
    anc = ancestor_sets(dag.preds)
    downstream = {n for n in dag.nodes if from_node in anc[n]} | {from_node}
    return [
        r.node
        for r in store.list_nodes(execution_id)
        if r.node not in downstream and r.status is NodeStatus.SUCCEEDED
    ]


def validate_input(dag: Dag, input: Any) -> None:
    """Fail fast, before anything runs, when the input does not fit any ``params`` type."""
    try:
        json.dumps(input, allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN/Infinity, sets, objects: not storable JSON
        raise InputValidationError(
            f"workflow {dag.workflow!r}: execution input is not JSON ({exc})"
        ) from None
    for node in dag.nodes.values():
        param = node.param(PARAMS)
        if param is None:
            continue
        try:
            TypeAdapter(param.annotation).validate_python(input)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or '(input)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InputValidationError(
                f"workflow {dag.workflow!r}: execution input rejected by node {node.name!r} "
                f"(parameter {PARAMS!r}): {details}"
            ) from None


def _sha(definition: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(to_json(definition).encode()).hexdigest()


__all__ = ["LOCAL_FUNCTION_ARN", "LocalEngine", "ResumeNotAllowed", "execution_arn"]

"""The local engine: the compiled ASL, run by stepdag's interpreter, nodes in-process.

It runs exactly the definition that deploys to Step Functions (the Task resource is
substituted with a local ARN, as CDK substitutes the real one), so a workflow that
runs here runs on AWS. State lives in an ExecutionStore (SQLite by default).

Resume is Step Functions' redrive done locally: the same execution id is executed again
with its redrive count bumped; the node runner answers completed nodes from the store
without calling them, so only unfinished work runs.

Runs are started with :meth:`LocalEngine.start` (non-blocking: a :class:`LocalRun` to
wait for or stop) or :meth:`LocalEngine.execute` (blocking); :meth:`LocalEngine.cancel`
stops one.  What may start, stop or redrive a run is the lifecycle's
(:mod:`stepdag.runtime.executions`), here behind :class:`LocalLauncher`; callers that want
to see a run from the inside pass :class:`EngineHooks`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepdag.asl import (
    Clock,
    ExecutionResult,
    HistoryEvent,
    StateMachine,
    TaskContext,
    TaskFailure,
)
from stepdag.core.compile import Targets, compile_dag, to_json
from stepdag.core.errors import Conflict, WorkflowLoadError
from stepdag.core.model import Dag, Workflow
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.executions import CANCEL_CAUSE, CANCEL_ERROR, Executions, Stopped
from stepdag.runtime.fencing import (
    LeaseKeeper,
    abandon_in_flight,
    hold,
    lease_owner,
    timeout_cause,
)
from stepdag.runtime.history import HistoryWriter
from stepdag.runtime.logs import FileLogSink, LogCapture, LogSink
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.runs import EngineHooks, LocalRun, Payload
from stepdag.runtime.store import TIMEOUT_ERROR, ExecutionStore

logger = logging.getLogger("stepdag.engine")

LOCAL_FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:stepdag-node-runner"
DEFAULT_HOME = Path(".stepdag")
# How long a cancel waits for the stopped run to record ABORTED (it is quick: the
# interpreter unwinds at once; only a node function still running holds its thread).
STOP_WAIT_S = 10.0


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
    from stepdag.runtime.pagination import home_key
    from stepdag.runtime.sqlite import SqliteStore

    Path(home).mkdir(parents=True, exist_ok=True)
    # The home's key: `stepdag executions list --next-token` reads a token another
    # process (the previous invocation, or `stepdag serve`) signed.
    return SqliteStore(Path(home) / "stepdag.db", pagination_key=home_key(home))


def default_log_sink(store: ExecutionStore) -> LogSink | None:
    """Node logs of a file-backed store live beside it (``<home>/logs/``), so every local
    entry point -- ``stepdag run``, ``stepdag serve``, a test's engine -- captures them
    where ``stepdag logs`` reads; a store without a path captures nothing."""
    path = getattr(store, "path", None)
    return FileLogSink(Path(path).parent / "logs") if isinstance(path, Path) else None


class LocalEngine:
    def __init__(
        self,
        store: ExecutionStore | None = None,
        *,
        clock: Clock | None = None,
        workflows: Mapping[str, Workflow | Dag] | None = None,
        max_active: int | None = None,
        logs: LogSink | None = None,
        hooks: Sequence[EngineHooks] = (),
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
        self.hooks = tuple(hooks)
        self._dags: dict[str, Dag] = {}
        self._machines: dict[str, StateMachine] = {}
        self._definitions: dict[str, tuple[dict[str, Any], str]] = {}
        self._runs: dict[str, LocalRun] = {}
        self._lock = threading.Lock()
        for wf in (workflows or {}).values():
            self.register(wf)
        self.logs = logs if logs is not None else default_log_sink(self.store)
        capture = LogCapture(self.logs) if self.logs is not None else None
        self.runner = NodeRunner(self._dags, self.store, log_capture=capture)
        self.history = HistoryWriter(self.store)
        self.lease_owner = lease_owner()
        self._leases = LeaseKeeper(self.store, self.lease_owner, self._live_ids)

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

    @property
    def workflows(self) -> Mapping[str, Dag]:
        """The registered DAGs by workflow name (a live view)."""
        return self._dags

    def dag(self, workflow: str) -> Dag:
        dag = self._dags.get(workflow)
        if dag is None:
            raise WorkflowLoadError(
                f"no workflow named {workflow!r} is loaded (pass --workflow, or run from the "
                "project directory so statemachines/ is discovered)"
            )
        return dag

    def definition(self, workflow: str) -> dict[str, Any]:
        return self._compiled(workflow)[0]

    def definition_sha(self, workflow: str) -> str:
        return self._compiled(workflow)[1]

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

    # ------------------------------------------------------------------ runs, blocking

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
    ) -> ExecutionRecord:
        """Validate the input and record a new execution (RUNNING) without running it."""
        dag = self.dag(workflow) if isinstance(workflow, str) else self.register(workflow)
        return self._executions().create(dag, input, name=name, tenant=tenant)

    def resume(
        self, ref: str, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> ExecutionRecord:
        """Redrive a failed or interrupted execution; completed nodes are not run again."""
        launcher = LocalLauncher(self, on_event=on_event)
        self._executions(launcher).redrive(ref)
        return launcher.wait()

    def rerun(
        self,
        ref: str,
        from_node: str,
        *,
        name: str | None = None,
        on_event: Callable[[HistoryEvent], None] | None = None,
    ) -> ExecutionRecord:
        """New execution that reuses every stored output not downstream of ``from_node``."""
        launcher = LocalLauncher(self, on_event=on_event)
        self._executions(launcher).rerun(ref, from_node, name=name)
        return launcher.wait()

    def execute(
        self, rec: ExecutionRecord, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> ExecutionRecord:
        """Run a created (or redriven) execution to its end, in this thread."""
        run = self._begin(rec, on_event)
        self._run(run)
        return run.wait()

    def _executions(self, launcher: LocalLauncher | None = None) -> Executions:
        return Executions(self.store, launcher or LocalLauncher(self))

    # ------------------------------------------------------------------ runs, non-blocking

    def start(
        self, rec: ExecutionRecord, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> LocalRun:
        """Run a created (or redriven) execution in a background thread."""
        run = self._begin(rec, on_event)
        thread = threading.Thread(
            target=self._run, args=(run,), name=f"stepdag-run-{rec.name}", daemon=True
        )
        thread.start()
        return run

    def cancel(
        self, execution_id: str, *, error: str = CANCEL_ERROR, cause: str = CANCEL_CAUSE
    ) -> LocalRun | None:
        """Stop the engine's run of ``execution_id`` (non-blocking; ``join`` the run to
        wait for its ABORTED record); None if this engine runs no such execution."""
        run = self.running(execution_id)
        if run is not None:
            run.stop(error, cause)
        return run

    def running(self, execution_id: str) -> LocalRun | None:
        with self._lock:
            return self._runs.get(execution_id)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for every run going on now to end (tests; graceful shutdown)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.join(timeout)

    # ------------------------------------------------------------------ internals

    def _begin(
        self, rec: ExecutionRecord, on_event: Callable[[HistoryEvent], None] | None
    ) -> LocalRun:
        self.dag(rec.workflow)
        run = LocalRun(rec, on_event)
        if self.running(rec.execution_id) is None:  # else: refused just below
            self.hold(rec)  # outside the lock: store I/O; renewing our own lease is safe
        with self._lock:
            if rec.execution_id in self._runs:
                raise Conflict(f"execution {rec.name!r} is running in this engine")
            self._runs[rec.execution_id] = run
        self._leases.ensure_running()
        return run

    def hold(self, rec: ExecutionRecord) -> None:
        """Take ``rec``'s lease (one driver per execution, across processes): a
        :class:`Conflict` while a live process elsewhere runs it."""
        hold(self.store, rec, self.lease_owner)

    def release(self, rec: ExecutionRecord) -> None:
        """Give ``rec``'s lease up, unless a run of this engine still drives it."""
        if self.running(rec.execution_id) is None:
            try:
                self.store.release_lease(rec.execution_id, owner=self.lease_owner)
            except Exception:  # it expires on its own
                logger.exception("could not release the lease of %s", rec.execution_id)

    def _live_ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def _run(self, run: LocalRun) -> None:
        """Run to the end and record the outcome; never raises (``run.wait`` does)."""
        try:
            if self._admission is None:
                run.final = self._execute(run)
            else:
                with self._admission:
                    run.final = self._execute(run)
        except BaseException as exc:
            run.error = exc
            # Ctrl-C (not an Exception) leaves the record RUNNING: a redrive continues it.
            if isinstance(exc, Exception):
                logger.exception("execution %s failed outside the interpreter", run.execution_id)
                self._record_failure(run.record, exc)
        finally:
            with self._lock:
                if self._runs.get(run.execution_id) is run:
                    del self._runs[run.execution_id]
            self.release(run.record)
            self._notify("on_finish", run)
            run._done.set()

    def _execute(self, run: LocalRun) -> ExecutionRecord:
        rec = run.record
        sm = self.machine(rec.workflow)
        offset = len(self.store.get_events(rec.execution_id)) if rec.redrive_count else 0
        history = self.history
        on_event = run.on_event

        def sink(event: HistoryEvent) -> None:
            if on_event is not None:
                on_event(event)
            history.put(rec.execution_id, offset, event)

        invoke = self._invoker(run)
        redrive = rec.redrive_count

        def handler(resource: str, parameters: Any, ctx: TaskContext) -> Any:
            if not run._task_allowed():  # the execution is ABORTED: this result is dropped
                raise TaskFailure(CANCEL_ERROR, "the execution was stopped")
            payload = {**parameters, "redrive": redrive}
            try:
                with run._tracking(payload, ctx):
                    return invoke(payload, ctx)
            except Exception as exc:
                # Lambda's contract: error name = exception class, cause = its error JSON.
                raise TaskFailure(type(exc).__name__, lambda_cause(exc)) from exc

        try:
            handle = sm.start(
                rec.input,
                task_handler=handler,
                name=rec.name,
                execution_id=rec.execution_id,
                clock=self.clock,
                on_event=sink,
                context_overrides={"Execution": {"RedriveCount": rec.redrive_count}},
            )
            run._attach(handle)
            self._notify("on_start", run)
            result = handle.wait()
        finally:
            history.flush()
        abandon_in_flight(self.store, self._dags[rec.workflow], run, result.status)
        return self._record_result(rec, result)

    def _invoker(self, run: LocalRun) -> Callable[[Payload, TaskContext], Any]:
        """The node runner, wrapped by each hook's ``invoke`` (the first hook outermost)."""

        call: Callable[[Payload, TaskContext], Any] = self._run_node
        for hook in reversed(self.hooks):
            call = _wrap(hook, run, call)
        return call

    def _run_node(self, payload: Payload, ctx: TaskContext) -> Any:
        return self.runner.handle(payload)

    def _notify(self, point: str, run: LocalRun) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, point)(run)
            except Exception:  # an observer must not take the run down
                logger.exception("hook %s.%s failed", type(hook).__name__, point)

    def _record_result(self, rec: ExecutionRecord, result: ExecutionResult) -> ExecutionRecord:
        output = (
            self.workflow_output(rec.execution_id, rec.workflow)
            if result.status == "SUCCEEDED"
            else None
        )
        cause = result.cause
        if result.error == TIMEOUT_ERROR and not cause:  # Step Functions says no more
            cause = timeout_cause(self.store, rec.execution_id)
        return self.store.update_execution(
            rec.execution_id,
            status=RunStatus(result.status),
            expected=[RunStatus.RUNNING],
            output=output,
            error=result.error,
            cause=cause,
            ended_at=datetime.now(UTC),
        )

    def _record_failure(self, rec: ExecutionRecord, exc: Exception) -> None:
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

    def workflow_output(self, execution_id: str, workflow: str) -> Any:
        """The workflow's result: its sink node's output, or {sink: output} for several."""
        dag = self._dags[workflow]
        outputs = {}
        for sink in dag.sinks:
            r = self.store.get_node(NodeKey(execution_id, sink))
            outputs[sink] = r.output if r is not None and r.status is NodeStatus.SUCCEEDED else None
        return outputs[dag.sinks[0]] if len(dag.sinks) == 1 else outputs


def _wrap(
    hook: EngineHooks, run: LocalRun, inner: Callable[[Payload, TaskContext], Any]
) -> Callable[[Payload, TaskContext], Any]:
    def call(payload: Payload, ctx: TaskContext) -> Any:
        return hook.invoke(run, payload, ctx, lambda p: inner(p, ctx))

    return call


class LocalLauncher:
    """The lifecycle's launcher on a :class:`LocalEngine`: runs are threads of this
    process, so a RUNNING record no thread here runs (a crashed process) is not live.

    ``run`` is the last run this launcher launched: the engine's blocking methods use
    a launcher of their own per call and wait for it.
    """

    def __init__(
        self, engine: LocalEngine, *, on_event: Callable[[HistoryEvent], None] | None = None
    ) -> None:
        self.engine = engine
        self.on_event = on_event
        self.run: LocalRun | None = None

    def workflow(self, name: str) -> Dag:
        return self.engine.dag(name)

    def execution_id(self, workflow: str, name: str) -> str:
        return execution_arn(workflow, name)

    def definition_sha(self, workflow: str) -> str:
        return self.engine.definition_sha(workflow)

    def launch(self, rec: ExecutionRecord) -> None:
        self.run = self.engine.start(rec, on_event=self.on_event)

    def ensure_launched(self, rec: ExecutionRecord) -> None:
        """Nothing: a replayed start never launches twice here; a RUNNING record whose
        process is gone is continued by a redrive."""

    def is_live(self, rec: ExecutionRecord) -> bool:
        return self.engine.running(rec.execution_id) is not None

    def hold(self, rec: ExecutionRecord) -> None:
        self.engine.hold(rec)

    def release(self, rec: ExecutionRecord) -> None:
        self.engine.release(rec)

    def relaunch(self, rec: ExecutionRecord) -> None:
        self.launch(rec)

    def stop(self, rec: ExecutionRecord, *, error: str, cause: str) -> Stopped:
        run = self.engine.cancel(rec.execution_id, error=error, cause=cause)
        if run is None:
            return Stopped(live=False)
        run.join(STOP_WAIT_S)
        return Stopped(record=self.engine.store.get_execution(rec.execution_id))

    def wait(self) -> ExecutionRecord:
        """The final record of the run launched last."""
        assert self.run is not None, "nothing was launched"
        return self.run.wait()


def _sha(definition: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(to_json(definition).encode()).hexdigest()


__all__ = [
    "LOCAL_FUNCTION_ARN",
    "EngineHooks",
    "LocalEngine",
    "LocalLauncher",
    "LocalRun",
    "execution_arn",
]

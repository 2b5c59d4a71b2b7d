"""The :class:`ExecutionService` on AWS: Step Functions runs, the DynamoDB store records.

Starts go to ``states:StartExecution`` on each workflow's deployed ARN (the ``live``
alias, or a state machine), reads come from the execution store the node runner writes.

* **Record first.** ``start`` creates the execution record (tenant, input, name) in the
  store *before* ``StartExecution``, under the ARN Step Functions will give the execution
  (``arn:…:execution:<state machine>:<name>``), so the node runner finds it instead of
  adopting an unknown execution, and listing/tenant scoping work from the store alone.
* **Idempotency.** The execution name is the Idempotency-Key (or requested name).  The
  store's unique (workflow, name) is the first line: a replay with the same input returns
  the existing execution without a second ``StartExecution``; another input (or tenant) is
  409.  Step Functions' own ``ExecutionAlreadyExists`` (names are unique for 90 days) maps
  to the same rule after comparing the input it reports.  A start whose
  ``StartExecution`` failed (throttling, a timeout) leaves the record RUNNING; the client's
  retry with the same key finds no execution behind it and starts it then.
* **Status.** Final statuses are recorded by the status-recorder Lambda from Step
  Functions' EventBridge status-change events (``stepdag.api.status``,
  docs/status-events.md), so ``list_executions`` -- which reads the store only -- shows
  finished runs as finished, typically within seconds.  Events can be late (or, after
  failed retries, sit in the dead-letter queue), so ``get`` (and the reads built on it)
  still asks ``DescribeExecution`` while the record is not terminal and applies the
  answer by the same rules (:class:`~stepdag.api.status.StatusRecorder`: forward only, a
  report of an older redrive is stale).  Until the event or a read arrives, a listing
  may still show a finished run as RUNNING.
* **Redrive** bumps the record's ``redrive_count`` *before* ``RedriveExecution`` (the node
  runner numbers attempts from it), and restores it if Step Functions refuses.
* **Rerun** copies the reused outputs to a new record, then starts a new execution.

STANDARD workflows only: EXPRESS executions have no ``DescribeExecution``/redrive.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from stepdag.api.errors import BadRequest, Conflict, IdempotencyConflict
from stepdag.api.service import StoreReads
from stepdag.api.status import InvalidStatusEvent, StatusRecorder, observation, state_machine_name
from stepdag.core.compile import compile_dag
from stepdag.core.errors import ConditionFailed, WorkflowLoadError
from stepdag.core.model import Dag
from stepdag.core.status import RunStatus
from stepdag.runtime.engine import reusable_nodes, validate_input
from stepdag.runtime.records import ExecutionRecord
from stepdag.runtime.aws import LazyClient, error_code
from stepdag.runtime.store import DuplicateExecution, ExecutionStore

logger = logging.getLogger("stepdag.api.aws")

CANCEL_ERROR = "Cancelled"
CANCEL_CAUSE = "cancelled through the stepdag API"
_OPEN = (RunStatus.RUNNING, RunStatus.PENDING_REDRIVE)


def execution_arn(target_arn: str, name: str) -> str:
    """The ARN Step Functions gives execution ``name`` of a state machine/version/alias.

    ``arn:aws:states:eu-west-1:123:stateMachine:etl:live`` + ``run1`` ->
    ``arn:aws:states:eu-west-1:123:execution:etl:run1`` (the qualifier is not part of it).
    """
    parts = target_arn.split(":")
    if len(parts) not in (7, 8) or parts[2] != "states" or parts[5] != "stateMachine":
        raise ValueError(f"not a Step Functions state machine or alias ARN: {target_arn!r}")
    return ":".join([*parts[:5], "execution", parts[6], name])


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class StepFunctionsExecutionService(StoreReads):
    """ExecutionService on Step Functions (runs) and an :class:`ExecutionStore` (records).

    ``targets`` maps each workflow to the ARN runs start on (its alias, normally).
    ``client``: a boto3 ``stepfunctions`` client; by default one is created on first use
    (never at import or construction) from ``boto3_session``/``boto_config``.
    """

    def __init__(
        self,
        store: ExecutionStore,
        workflows: Mapping[str, Dag],
        targets: Mapping[str, str],
        *,
        client: Any = None,
        boto3_session: Any = None,
        boto_config: Any = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        missing = sorted(set(workflows) - set(targets))
        if missing:
            raise WorkflowLoadError(f"no state machine ARN configured for {', '.join(missing)}")
        for arn in targets.values():
            execution_arn(arn, "probe")  # fail at construction on a malformed ARN
        self.store = store
        self._dags = dict(workflows)
        self._targets = dict(targets)
        self._sfn = LazyClient("stepfunctions", client, session=boto3_session, config=boto_config)
        self._clock = clock or (lambda: datetime.now(UTC))
        machines = {state_machine_name(arn): wf for wf, arn in self._targets.items()}
        self._recorder = StatusRecorder(store, machines, sfn=self._sfn, clock=self._clock)
        self._definitions: dict[str, dict[str, Any]] = {}

    # -------------------------------------------------------------- workflows

    def workflows(self) -> list[Dag]:
        return [self._dags[k] for k in sorted(self._dags)]

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        dag = self._dag(name)
        if name not in self._definitions:
            # The deployed definition, placeholders unsubstituted (as in the repo's ASL).
            self._definitions[name] = dict(compile_dag(dag).definition)
        return dag, self._definitions[name]

    def _dag(self, name: str) -> Dag:
        dag = self._dags.get(name)
        if dag is None:
            raise WorkflowLoadError(f"no workflow named {name!r} is deployed")
        return dag

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "workflows": len(self._dags), "store": type(self.store).__name__}

    # -------------------------------------------------------------- writes

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        dag = self._dag(workflow)
        validate_input(dag, input)
        rec = self._record(dag, input, name=name or uuid.uuid4().hex, tenant=tenant)
        try:
            rec = self.store.create_execution(rec)
        except DuplicateExecution as dup:
            old = dup.existing
            if old.tenant != tenant:
                raise IdempotencyConflict(
                    f"execution name {name!r} is taken in workflow {workflow!r}", field="name"
                ) from None
            if old.input != input:
                raise self._different_input(name, workflow) from None
            self._ensure_started(old)
            return self._fresh(old), False
        self._start(rec)
        return rec, True

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        rec = self.get(ref, tenant=tenant)
        if rec.is_terminal:
            raise Conflict(f"execution {rec.name!r} already ended {rec.status.value}")
        stopped = self._clock()
        try:
            out = self._sfn.get().stop_execution(
                executionArn=rec.execution_id, error=CANCEL_ERROR, cause=CANCEL_CAUSE
            )
            stopped = out.get("stopDate") or stopped
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":  # never started: just record it
                raise
        return self._finish(
            rec, RunStatus.ABORTED, error=CANCEL_ERROR, cause=CANCEL_CAUSE, ended_at=stopped
        )

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        rec = self.get(ref, tenant=tenant)
        if rec.status is RunStatus.SUCCEEDED:
            raise Conflict(f"execution {rec.name!r} already SUCCEEDED; nothing to redrive")
        if rec.status is RunStatus.RUNNING:
            raise Conflict(f"execution {rec.name!r} is running; cancel it first")
        # First the count (the node runner numbers the redriven attempts from it) ...
        bumped = self.store.update_execution(
            rec.execution_id,
            status=RunStatus.RUNNING,
            expected=[rec.status],
            redrive_count=rec.redrive_count + 1,
            error=None,
            cause=None,
            ended_at=None,
        )
        try:  # ... then the run.
            self._sfn.get().redrive_execution(
                executionArn=rec.execution_id, clientToken=f"redrive-{bumped.redrive_count}"
            )
        except Exception as exc:
            self.store.update_execution(
                rec.execution_id,
                status=rec.status,
                expected=[RunStatus.RUNNING],
                redrive_count=rec.redrive_count,
                error=rec.error,
                cause=rec.cause,
                ended_at=rec.ended_at,
            )
            if error_code(exc) in ("ExecutionNotRedrivable", "ExecutionLimitExceeded"):
                raise Conflict(f"execution {rec.name!r} cannot be redriven: {exc}") from exc
            raise
        return bumped

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
        reuse = reusable_nodes(self.store, dag, old.execution_id, from_node)
        rec = self._record(dag, old.input, name=name or uuid.uuid4().hex, tenant=old.tenant)
        rec = replace(rec, rerun_of=old.execution_id, rerun_from=from_node)
        try:
            rec = self.store.create_execution(rec)
        except DuplicateExecution:
            raise Conflict(f"execution name {name!r} is taken", field="name") from None
        # The copies land before the run starts, so its first Task finds them.
        self.store.copy_nodes(old.execution_id, rec.execution_id, reuse)
        self._start(rec)
        return rec

    # -------------------------------------------------------------- Step Functions

    def _record(self, dag: Dag, input: Any, *, name: str, tenant: str | None) -> ExecutionRecord:
        return ExecutionRecord(
            execution_id=execution_arn(self._targets[dag.workflow], name),
            name=name,
            workflow=dag.workflow,
            started_at=self._clock(),
            input=input,
            tenant=tenant,
        )

    def _start(self, rec: ExecutionRecord) -> None:
        """``StartExecution`` for a stored record; Step Functions' duplicate-name rule
        (90 days, beyond the store's retention) is checked like the store's."""
        try:
            out = self._sfn.get().start_execution(
                stateMachineArn=self._targets[rec.workflow],
                name=rec.name,
                input=json.dumps(rec.input),
            )
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                # The record stays RUNNING: a retry with the same name starts it.
                raise
            desc = self._sfn.get().describe_execution(executionArn=rec.execution_id)
            if _json(desc.get("input")) != rec.input:
                raise self._different_input(rec.name, rec.workflow) from None
            return
        if out["executionArn"] != rec.execution_id:  # pragma: no cover - an AWS change
            logger.error(
                "Step Functions named execution %s, the store expects %s",
                out["executionArn"],
                rec.execution_id,
            )

    def _ensure_started(self, rec: ExecutionRecord) -> None:
        """A replayed start whose first ``StartExecution`` never happened: do it now."""
        if rec.is_terminal:
            return
        try:
            self._sfn.get().describe_execution(executionArn=rec.execution_id)
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise
            self._start(rec)

    def _fresh(self, rec: ExecutionRecord) -> ExecutionRecord:
        """Store the final status Step Functions reports for a record still open here
        (the fallback for a status-change event that has not arrived yet)."""
        if rec.is_terminal:
            return rec
        try:
            desc = self._sfn.get().describe_execution(executionArn=rec.execution_id)
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                # A read must not fail because the status check did: serve the record.
                logger.warning("DescribeExecution %s failed: %s", rec.execution_id, exc)
            return rec
        try:
            seen = observation(desc)
        except InvalidStatusEvent as exc:
            logger.warning("DescribeExecution %s: unreadable answer: %s", rec.execution_id, exc)
            return rec
        if not seen.status.is_terminal:
            return rec
        # The event's rules: a stale answer (e.g. the FAILED of the run the API just
        # redrove) is ignored; a conflicting writer is re-read, not overwritten.
        try:
            return self._recorder.record(seen).record or rec
        except Exception as exc:  # lost CAS races, a failed output fetch, the store
            # Same rule as above: the status-change event (or the next read) records it.
            logger.warning("recording %s's final status failed: %s", rec.execution_id, exc)
            return rec

    def _finish(
        self,
        rec: ExecutionRecord,
        status: RunStatus,
        *,
        output: Any = None,
        error: str | None,
        cause: str | None,
        ended_at: datetime | None,
    ) -> ExecutionRecord:
        if ended_at is not None and ended_at.tzinfo is None:
            ended_at = ended_at.replace(tzinfo=UTC)
        try:
            return self.store.update_execution(
                rec.execution_id,
                status=status,
                expected=list(_OPEN),
                output=output,
                error=error,
                cause=cause,
                ended_at=ended_at or self._clock(),
            )
        except ConditionFailed:  # another request recorded the end first
            return self.store.get_execution(rec.execution_id)

    @staticmethod
    def _different_input(name: str | None, workflow: str) -> IdempotencyConflict:
        return IdempotencyConflict(
            f"execution {name!r} of workflow {workflow!r} already exists with a different "
            "input; use a new Idempotency-Key (or name) for a new run",
            field="input",
        )


__all__ = ["StepFunctionsExecutionService", "execution_arn"]

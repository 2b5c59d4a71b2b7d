"""The :class:`ExecutionService` on AWS: Step Functions runs, the DynamoDB store records.

A thin adapter: starts, cancels, redrives and reruns follow the lifecycle's rules
(:mod:`stepdag.runtime.executions`) on the Step Functions launcher
(:mod:`stepdag.runtime.stepfunctions`: ``StartExecution`` on each workflow's deployed
ARN -- the ``live`` alias, or a state machine -- ``RedriveExecution``,
``StopExecution``); reads come from the execution store the node runner writes.

* **Record first.** The execution record (tenant, input, name) is stored *before*
  ``StartExecution``, under the ARN Step Functions will give the execution, so the node
  runner finds it instead of adopting an unknown execution, and listing and tenant
  scoping work from the store alone.
* **Idempotency.** The execution name is the Idempotency-Key (or requested name): a replay
  with the same input returns the existing execution without a second
  ``StartExecution``; another input (or tenant) is 409.  A start whose
  ``StartExecution`` failed (throttling, a timeout) leaves the record RUNNING; the
  client's retry with the same key finds no execution behind it and starts it then.
* **Status.** Final statuses are recorded by the status-recorder Lambda from Step
  Functions' EventBridge status-change events (``stepdag.api.status``,
  docs/status-events.md), so ``list_executions`` -- which reads the store only -- shows
  finished runs as finished, typically within seconds.  Events can be late (or, after
  failed retries, sit in the dead-letter queue), so ``get`` (and the reads and writes
  built on it) still asks ``DescribeExecution`` while the record is not terminal and
  applies the answer by the same rules (:class:`~stepdag.api.status.StatusRecorder`:
  forward only, a report of an older redrive is stale).  Until the event or a read
  arrives, a listing may still show a finished run as RUNNING.

STANDARD workflows only: EXPRESS executions have no ``DescribeExecution``/redrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from stepdag.api.health import Check
from stepdag.api.port import StoreReads
from stepdag.api.status import InvalidStatusEvent, StatusRecorder, observation, state_machine_name
from stepdag.core.compile import compile_dag
from stepdag.core.model import Dag
from stepdag.runtime.aws import LazyClient, error_code
from stepdag.runtime.executions import Executions
from stepdag.runtime.records import ExecutionRecord
from stepdag.runtime.stepfunctions import StepFunctionsLauncher, execution_arn
from stepdag.runtime.store import ExecutionStore

logger = logging.getLogger("stepdag.api.aws")

HEALTH_PROBE = "stepdag-health-probe"
"""The execution name readiness asks Step Functions about (it need not exist)."""


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
        self.store = store
        self._dags = dict(workflows)
        self._targets = dict(targets)
        self._sfn = LazyClient("stepfunctions", client, session=boto3_session, config=boto_config)
        self._launcher = StepFunctionsLauncher(self._dags, self._targets, self._sfn)
        self._clock = clock or (lambda: datetime.now(UTC))
        machines = {state_machine_name(arn): wf for wf, arn in self._targets.items()}
        self._recorder = StatusRecorder(store, machines, sfn=self._sfn, clock=self._clock)
        self._definitions: dict[str, dict[str, Any]] = {}
        self.executions = Executions(store, self._launcher, clock=self._clock, refresh=self._fresh)

    # -------------------------------------------------------------- workflows

    def workflows(self) -> list[Dag]:
        return [self._dags[k] for k in sorted(self._dags)]

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        dag = self._launcher.workflow(name)
        if name not in self._definitions:
            # The deployed definition, placeholders unsubstituted (as in the repo's ASL).
            self._definitions[name] = dict(compile_dag(dag).definition)
        return dag, self._definitions[name]

    # -------------------------------------------------------------- writes

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        return self.executions.start(workflow, input, name=name, tenant=tenant)

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self.executions.cancel(ref, tenant=tenant)

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self.executions.redrive(ref, tenant=tenant)

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord:
        return self.executions.rerun(ref, from_node, name=name, tenant=tenant)

    # -------------------------------------------------------------- health

    def health_checks(self) -> dict[str, Check]:
        checks = super().health_checks()
        return {"store": checks["store"], "stepfunctions": self._check_stepfunctions, **checks}

    def _check_stepfunctions(self) -> str:
        """One ``DescribeExecution`` of a name no run has: "does not exist" proves Step
        Functions answers and this role may read executions, with nothing to clean up."""
        if not self._targets:
            raise LookupError("no state machine is configured")
        workflow, target = min(self._targets.items())
        try:
            self._sfn.get().describe_execution(executionArn=execution_arn(target, HEALTH_PROBE))
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise
        return f"DescribeExecution answered on {workflow!r}'s state machine"

    def _check_settings(self) -> str:
        loaded = super()._check_settings()
        orphans = sorted(set(self._targets) - set(self._dags))
        if orphans:  # a deployed state machine whose workflow this API cannot load
            raise LookupError(f"state machines of workflows not loaded: {', '.join(orphans)}")
        return f"{loaded}; each with its state machine"

    # -------------------------------------------------------------- freshness

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


__all__ = ["StepFunctionsExecutionService", "execution_arn"]

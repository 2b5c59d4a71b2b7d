"""The lifecycle's launcher on AWS Step Functions: ``StartExecution``,
``RedriveExecution``, ``StopExecution`` on each workflow's deployed ARN.

The client is a boto3 ``stepfunctions`` client (or anything answering the same calls),
held by a :class:`~stepdag.runtime.aws.LazyClient`: nothing here imports boto3, and no
client exists before the first call.

* **Names.** Step Functions names an execution ``arn:…:execution:<state machine>:<name>``
  whether it was started on the state machine, a version or an alias; the record is
  stored under that ARN before ``StartExecution`` (see :mod:`stepdag.runtime.executions`).
* **Duplicates beyond the store.** Step Functions keeps names unique for 90 days, longer
  than the store may keep records: its ``ExecutionAlreadyExists`` follows the same replay
  rule, after comparing the input it reports.
* **Redrive** sends a client token per redrive count, so a retried request redrives once.

STANDARD workflows only: EXPRESS executions have no ``DescribeExecution``/redrive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from stepdag.core.errors import Conflict, WorkflowLoadError
from stepdag.core.inputs import input_json
from stepdag.core.model import Dag
from stepdag.core.status import RunStatus
from stepdag.runtime.aws import LazyClient, error_code
from stepdag.runtime.executions import Stopped, different_input
from stepdag.runtime.records import ExecutionRecord

logger = logging.getLogger("stepdag.stepfunctions")

# RedriveExecution's refusals: the execution's state, not a failure of the request.
_NOT_REDRIVABLE = ("ExecutionNotRedrivable", "ExecutionLimitExceeded")


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


class StepFunctionsLauncher:
    """Runs on Step Functions: ``targets`` maps each workflow to the ARN runs start on
    (its ``live`` alias, normally); ``sfn`` holds the client."""

    def __init__(
        self, workflows: Mapping[str, Dag], targets: Mapping[str, str], sfn: LazyClient
    ) -> None:
        missing = sorted(set(workflows) - set(targets))
        if missing:
            raise WorkflowLoadError(f"no state machine ARN configured for {', '.join(missing)}")
        for arn in targets.values():
            execution_arn(arn, "probe")  # fail at construction on a malformed ARN
        self.workflows = workflows
        self.targets = targets
        self.sfn = sfn

    def workflow(self, name: str) -> Dag:
        dag = self.workflows.get(name)
        if dag is None:
            raise WorkflowLoadError(f"no workflow named {name!r} is deployed")
        return dag

    def execution_id(self, workflow: str, name: str) -> str:
        return execution_arn(self.targets[workflow], name)

    def definition_sha(self, workflow: str) -> str | None:
        return None  # the deployed definition is the stack's; the record does not pin it

    def launch(self, rec: ExecutionRecord) -> None:
        """``StartExecution`` for a stored record."""
        try:
            out = self.sfn.get().start_execution(
                stateMachineArn=self.targets[rec.workflow],
                name=rec.name,
                # The text the size rule measured (stepdag.core.inputs): what AWS measures.
                input=input_json(rec.input),
            )
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise  # the record stays RUNNING: a retry with the same name starts it
            desc = self.sfn.get().describe_execution(executionArn=rec.execution_id)
            if _json(desc.get("input")) != rec.input:
                raise different_input(rec.name, rec.workflow) from None
            return
        if out["executionArn"] != rec.execution_id:  # pragma: no cover - an AWS change
            logger.error(
                "Step Functions named execution %s, the store expects %s",
                out["executionArn"],
                rec.execution_id,
            )

    def ensure_launched(self, rec: ExecutionRecord) -> None:
        if rec.is_terminal:
            return
        try:
            self.sfn.get().describe_execution(executionArn=rec.execution_id)
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise
            self.launch(rec)

    def is_live(self, rec: ExecutionRecord) -> bool:
        # The record was just refreshed from DescribeExecution: RUNNING is Step Functions'.
        return rec.status is RunStatus.RUNNING

    def hold(self, rec: ExecutionRecord) -> None:
        """Nothing: Step Functions is the one driver (it redrives only an ended run, and
        the lifecycle's compare-and-swap on the redrive count lets one request in)."""

    def release(self, rec: ExecutionRecord) -> None:
        """Nothing to release (see :meth:`hold`)."""

    def relaunch(self, rec: ExecutionRecord) -> None:
        try:
            self.sfn.get().redrive_execution(
                executionArn=rec.execution_id, clientToken=f"redrive-{rec.redrive_count}"
            )
        except Exception as exc:
            if error_code(exc) in _NOT_REDRIVABLE:
                raise Conflict(f"execution {rec.name!r} cannot be redriven: {exc}") from exc
            raise

    def stop(self, rec: ExecutionRecord, *, error: str, cause: str) -> Stopped:
        try:
            out = self.sfn.get().stop_execution(
                executionArn=rec.execution_id, error=error, cause=cause
            )
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise
            return Stopped(live=False)  # never started: the lifecycle records the abort
        return Stopped(at=out.get("stopDate"))


__all__ = ["StepFunctionsLauncher", "execution_arn"]

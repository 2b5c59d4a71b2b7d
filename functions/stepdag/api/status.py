"""Execution statuses as Step Functions reports them, recorded in the ExecutionStore.

On AWS nothing inside a run writes its final status (the last Task is not the end: a
Catch, a Fail state, a timeout or a StopExecution end runs too).  Step Functions reports
every status change of a STANDARD execution to EventBridge ("Step Functions Execution
Status Change", source ``aws.states``); the status Lambda
(``stepdag.handlers.status``) feeds those events to :class:`StatusRecorder`, and the API
feeds it ``DescribeExecution`` answers (the fallback when an event is late).  Both have
the same fields (``executionArn``, ``status``, ``startDate``, ``stopDate``, ``input``,
``inputDetails``, ``output``, ``outputDetails``, ``error``, ``cause``, ``redriveCount``),
so one parser and one set of rules serve both.  docs/status-events.md has the rules:

* A record is only moved forward.  Order is (redrive count, open < terminal): an
  observation of an older redrive is stale; for the same redrive, the first terminal
  status wins (EventBridge delivers at least once, in no guaranteed order), and an open
  status never replaces a terminal one.  A newer redrive moves the record to the
  observed status and count (a redrive started outside the API).  Every write is a
  compare-and-swap on the (status, redrive count) that was read, retried on conflict.
* Unknown executions (started by a rule, a schedule, the console) are adopted: the
  record is created from the observation, workflow from the state machine name.
* Payloads: EventBridge drops ``input``/``output`` over its 256 KB event limit
  (``inputDetails``/``outputDetails.included`` false).  A missing or unparseable payload
  is fetched from ``DescribeExecution`` only when it would be written: the output of a
  SUCCEEDED run (a failed fetch raises, so the event is retried), the input of an
  adopted run (best effort: None if the fetch fails).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Literal

from stepdag.constants import STATUS_EVENT_DETAIL_TYPE, STATUS_EVENT_SOURCE
from stepdag.core.errors import ConditionFailed, ExecutionNotFound, InputValidationError
from stepdag.core.status import RunStatus
from stepdag.runtime.abandoned import end_running_nodes
from stepdag.runtime.aws import LazyClient
from stepdag.runtime.records import ExecutionRecord
from stepdag.runtime.store import DuplicateExecution, ExecutionStore

logger = logging.getLogger("stepdag.api.status")

# One definition, shared with the CDK rule that routes these events here.
SOURCE: Final = STATUS_EVENT_SOURCE
DETAIL_TYPE: Final = STATUS_EVENT_DETAIL_TYPE
_STATUSES = {s.value: s for s in RunStatus}


class InvalidStatusEvent(InputValidationError):
    """Not a Step Functions execution status change this recorder can read."""

    code = "invalid_status_event"


class StatusConflict(ConditionFailed):
    """Every compare-and-swap attempt lost to another writer; the caller should retry."""


class _Absent(Enum):
    ABSENT = "ABSENT"


ABSENT: Final = _Absent.ABSENT
"""A payload the observation does not carry (excluded by EventBridge, or truncated)."""


def record_id(execution_arn: str) -> str:
    """The store's key for an execution ARN: the ARN without a version/alias qualifier.

    ``arn:aws:states:r:123:execution:etl:run1`` stays as it is;
    ``arn:aws:states:r:123:execution:etl:live:run1`` -> ``...:execution:etl:run1`` (the
    form ``stepdag.api.aws.execution_arn`` gives the records the API creates).
    """
    parts = execution_arn.split(":")
    if len(parts) not in (8, 9) or parts[2] != "states" or parts[5] != "execution":
        raise InvalidStatusEvent(f"not a Step Functions execution ARN: {execution_arn!r}")
    if not all(parts[6:]):
        raise InvalidStatusEvent(f"not a Step Functions execution ARN: {execution_arn!r}")
    if len(parts) == 9:
        del parts[7]
    return ":".join(parts)


def state_machine_name(arn: str) -> str:
    """The state machine's name in a state machine, version, alias or execution ARN."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "states":
        raise ValueError(f"not a Step Functions ARN: {arn!r}")
    return parts[6]


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One report of an execution's state (a status-change event or DescribeExecution)."""

    execution_id: str
    """The execution ARN without a qualifier: the store's key."""
    state_machine: str
    name: str
    status: RunStatus
    redrive_count: int | None
    """None when the report does not say (then the record's own count is assumed)."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    input: Any = ABSENT
    output: Any = ABSENT
    error: str | None = None
    cause: str | None = None


def observation(detail: Mapping[str, Any]) -> Observation:
    """Parse a status-change event's ``detail`` or a ``DescribeExecution`` response."""
    if not isinstance(detail, Mapping):
        raise InvalidStatusEvent("the event has no detail object")
    arn = detail.get("executionArn")
    execution_id = record_id(arn if isinstance(arn, str) else repr(arn))
    status = _STATUSES.get(str(detail.get("status")))
    if status is None:
        raise InvalidStatusEvent(f"{arn}: unknown execution status {detail.get('status')!r}")
    count = detail.get("redriveCount")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidStatusEvent(f"{arn}: redriveCount must be an int >= 0, got {count!r}")
    name = detail.get("name")
    return Observation(
        execution_id=execution_id,
        state_machine=state_machine_name(execution_id),
        name=name if isinstance(name, str) and name else execution_id.rsplit(":", 1)[-1],
        status=status,
        redrive_count=count,
        started_at=_when(detail.get("startDate")),
        ended_at=_when(detail.get("stopDate")),
        input=_payload(detail, "input"),
        output=_payload(detail, "output"),
        error=_text(detail.get("error")),
        cause=_text(detail.get("cause")),
    )


def event_detail(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``detail`` of an EventBridge status-change event (source and type checked)."""
    if not isinstance(event, Mapping):
        raise InvalidStatusEvent("an EventBridge event must be a JSON object")
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise InvalidStatusEvent(
            f"not a {DETAIL_TYPE!r} event from {SOURCE}: source={event.get('source')!r}, "
            f"detail-type={event.get('detail-type')!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidStatusEvent("the event has no detail object")
    return detail


def _payload(detail: Mapping[str, Any], field: str) -> Any:
    details = detail.get(f"{field}Details")
    if isinstance(details, Mapping) and details.get("included") is False:
        return ABSENT  # over EventBridge's size limit: left out of the event
    text = detail.get(field)
    if not isinstance(text, str):
        return ABSENT
    try:
        return json.loads(text)
    except ValueError:
        return ABSENT  # truncated JSON is no value at all


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _when(value: Any) -> datetime | None:
    """Epoch milliseconds (events), a datetime (boto3) or ISO-8601 text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    return None


def stale_reason(rec: ExecutionRecord, obs: Observation) -> str | None:
    """Why ``obs`` must not change ``rec`` (None: it moves the record forward)."""
    count = rec.redrive_count if obs.redrive_count is None else obs.redrive_count
    if count < rec.redrive_count:
        return f"redrive {count} is older than the record's {rec.redrive_count}"
    if count > rec.redrive_count:
        return None
    if rec.is_terminal:
        if obs.status is rec.status:
            return f"already {rec.status.value} (a duplicate)"
        return f"already ended {rec.status.value}; {obs.status.value} is not newer"
    if not obs.status.is_terminal:
        return f"already {rec.status.value}"
    return None


Action = Literal["created", "updated", "ignored"]


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    reason: str
    record: ExecutionRecord | None
    """The record after the decision (None: ignored and nothing is stored)."""


class StatusRecorder:
    """Applies observations to an :class:`ExecutionStore` by the rules above.

    ``workflows`` maps a state machine name to the workflow its executions belong to (for
    adoption).  ``sfn``: a :class:`LazyClient` for ``stepfunctions`` (shared with the
    caller), else one is made on first use from ``client``/``boto3_session``/``boto_config``.
    """

    def __init__(
        self,
        store: ExecutionStore,
        workflows: Mapping[str, str],
        *,
        sfn: LazyClient | None = None,
        client: Any = None,
        boto3_session: Any = None,
        boto_config: Any = None,
        clock: Callable[[], datetime] | None = None,
        attempts: int = 5,
    ) -> None:
        self.store = store
        self.workflows = dict(workflows)
        self._sfn = sfn or LazyClient(
            "stepfunctions", client, session=boto3_session, config=boto_config
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._attempts = attempts

    def handle_event(self, event: Mapping[str, Any]) -> Outcome:
        return self.record(observation(event_detail(event)))

    def record(self, obs: Observation) -> Outcome:
        for _ in range(self._attempts):
            try:
                rec = self.store.get_execution(obs.execution_id)
            except ExecutionNotFound:
                outcome = self._adopt(obs)
                if outcome is not None:
                    return outcome
                continue  # created by someone else meanwhile: decide against theirs
            reason = stale_reason(rec, obs)
            if reason is not None:
                return Outcome("ignored", reason, rec)
            obs = self._complete(obs, need_input=False)
            try:
                updated = self.store.update_execution(
                    rec.execution_id,
                    status=obs.status,
                    expected=[rec.status],
                    expected_redrive_count=rec.redrive_count,
                    **self._changes(obs, rec.redrive_count),
                )
            except ConditionFailed:
                continue  # another writer moved it: re-read and decide again
            end_running_nodes(
                self.store, rec.execution_id, status=obs.status, error=obs.error, now=self._clock()
            )
            return Outcome("updated", f"{rec.status.value} -> {obs.status.value}", updated)
        raise StatusConflict(
            f"{obs.execution_id}: lost {self._attempts} compare-and-swaps recording "
            f"{obs.status.value}; retry"
        )

    def _adopt(self, obs: Observation) -> Outcome | None:
        workflow = self.workflows.get(obs.state_machine)
        if workflow is None:
            return Outcome(
                "ignored", f"state machine {obs.state_machine!r} is not a known workflow", None
            )
        obs = self._complete(obs, need_input=True)
        changes = self._changes(obs, 0)
        rec = ExecutionRecord(
            execution_id=obs.execution_id,
            name=obs.name,
            workflow=workflow,
            status=obs.status,
            started_at=obs.started_at or self._clock(),
            input=None if obs.input is ABSENT else obs.input,
            **changes,
        )
        try:
            created = self.store.create_execution(rec)
        except DuplicateExecution as dup:
            if dup.existing.execution_id != obs.execution_id:
                # The (workflow, name) pair belongs to another execution (a name reused
                # after the store forgot the first): keep the stored one.
                return Outcome(
                    "ignored",
                    f"name {obs.name!r} of {workflow!r} is taken by {dup.existing.execution_id}",
                    dup.existing,
                )
            return None
        return Outcome("created", f"adopted as {obs.status.value}", created)

    def _changes(self, obs: Observation, current_count: int) -> dict[str, Any]:
        count = current_count if obs.redrive_count is None else obs.redrive_count
        if not obs.status.is_terminal:  # a (newer) run: nothing of the last end stays
            cleared: dict[str, Any] = dict.fromkeys(("output", "error", "cause", "ended_at"))
            return {"redrive_count": count, **cleared}
        succeeded = obs.status is RunStatus.SUCCEEDED
        return {
            "redrive_count": count,
            "output": obs.output if succeeded and obs.output is not ABSENT else None,
            "error": obs.error,
            "cause": obs.cause,
            "ended_at": obs.ended_at or self._clock(),
        }

    def _complete(self, obs: Observation, *, need_input: bool) -> Observation:
        """``obs`` with the payloads it lacks and will write, from DescribeExecution."""
        need_output = obs.status is RunStatus.SUCCEEDED and obs.output is ABSENT
        need_input = need_input and obs.input is ABSENT
        if not (need_output or need_input):
            return obs
        try:
            desc = self._sfn.get().describe_execution(executionArn=obs.execution_id)
        except Exception:
            if need_output:
                raise  # a SUCCEEDED record without its output could never be completed
            logger.warning("DescribeExecution %s failed; adopted without input", obs.execution_id)
            return obs
        full = observation(desc)
        if need_output and full.output is ABSENT:
            logger.warning("DescribeExecution %s has no readable output", obs.execution_id)
        return replace(
            obs,
            input=full.input if need_input else obs.input,
            output=full.output if need_output else obs.output,
        )


__all__ = [
    "ABSENT",
    "DETAIL_TYPE",
    "SOURCE",
    "InvalidStatusEvent",
    "Observation",
    "Outcome",
    "StatusConflict",
    "StatusRecorder",
    "event_detail",
    "observation",
    "record_id",
    "stale_reason",
    "state_machine_name",
]

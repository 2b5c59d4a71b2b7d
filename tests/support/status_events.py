"""EventBridge "Step Functions Execution Status Change" events, shaped as AWS sends them.

The shape follows the Step Functions developer guide's examples (EventBridge events for
execution status changes): epoch-millisecond dates, payloads as JSON text with
``inputDetails``/``outputDetails`` (``included: false`` when EventBridge's size limit
dropped them), ``redriveCount`` and the redrive fields.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

_MISSING: Any = object()


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def status_event(
    execution_arn: str,
    status: str,
    *,
    redrive_count: int | None = 0,
    input: Any = _MISSING,
    output: Any = _MISSING,
    input_included: bool = True,
    output_included: bool = True,
    started: datetime | None = None,
    stopped: datetime | None = None,
    error: str | None = None,
    cause: str | None = None,
    state_machine_arn: str | None = None,
    raw_output: str | None = None,
) -> dict[str, Any]:
    parts = execution_arn.split(":")
    region, account = parts[3], parts[4]
    machine = state_machine_arn or ":".join([*parts[:5], "stateMachine", parts[6]])
    terminal = status not in ("RUNNING", "PENDING_REDRIVE")
    detail: dict[str, Any] = {
        "executionArn": execution_arn,
        "stateMachineArn": machine,
        "name": parts[-1],
        "status": status,
        "startDate": _ms(started) if started else 1_700_000_000_000,
        "stopDate": _ms(stopped) if stopped else (1_700_000_060_000 if terminal else None),
        "input": None if not input_included else json.dumps({} if input is _MISSING else input),
        "inputDetails": {"included": input_included},
        "output": None,
        "outputDetails": None,
        "error": error,
        "cause": cause,
        "redriveStatus": "NOT_REDRIVABLE" if status == "RUNNING" else "REDRIVABLE",
    }
    if redrive_count is not None:
        detail["redriveCount"] = redrive_count
        detail["redriveDate"] = 1_700_000_030_000 if redrive_count else None
    if status == "SUCCEEDED":
        detail["outputDetails"] = {"included": output_included}
        if output_included:
            detail["output"] = (
                raw_output
                if raw_output is not None
                else json.dumps(None if output is _MISSING else output)
            )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": "2023-11-14T22:13:20Z",
        "region": region,
        "resources": [execution_arn],
        "detail": detail,
    }


def from_description(desc: dict[str, Any]) -> dict[str, Any]:
    """The status-change event for a ``DescribeExecution`` answer (boto3 datetimes)."""
    output = desc.get("output")
    event = status_event(
        desc["executionArn"],
        desc["status"],
        redrive_count=desc.get("redriveCount", 0),
        started=desc.get("startDate"),
        stopped=desc.get("stopDate"),
        error=desc.get("error"),
        cause=desc.get("cause"),
        state_machine_arn=desc.get("stateMachineArn"),
    )
    event["detail"]["input"] = desc.get("input")
    if output is not None:
        event["detail"]["output"] = output
    return event

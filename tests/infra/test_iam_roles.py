"""Each function role's exact action set, by resource (least privilege, issue 14 item 5).

Written out literally (not from infra.constants) so that any new permission shows up here
as a reviewed change. No role may delete: no stepdag code deletes a table item (records
expire by TTL) or an object (the bucket's lifecycle rule expires them).
"""

from __future__ import annotations

from typing import Any

from infra import constants as c
from tests.infra.conftest import Synthesized

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY = {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
TABLE_READ_PUT = {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
OBJECTS = {"s3:GetObject", "s3:PutObject"}
BUCKET = {"s3:ListBucket"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _by_resource_kind(synth: Synthesized, handler: str) -> dict[str, set[str]]:
    """{resource kind: actions} of the role of the function running ``handler``."""
    table = next(iter(synth.of_type("AWS::DynamoDB::Table")))
    bucket = next(k for k in synth.of_type("AWS::S3::Bucket") if "Outputs" in k)
    out: dict[str, set[str]] = {}
    for st in synth.role_statements(handler):
        assert st["Effect"] == "Allow"
        text = str(st["Resource"])
        if st["Resource"] == "*":
            kind = "*"
        elif "/index/" in text:
            kind = "table indexes"
        elif table in text:
            kind = "table"
        elif bucket in text and "/*" in text:
            kind = "bucket objects"
        elif bucket in text:
            kind = "bucket"
        elif ":execution:" in text:
            kind = "executions"
        elif "AWS::SQS::Queue" in text or "DeadLetters" in text:
            kind = "dead letters"
        elif "PaginationKey" in text:
            kind = "pagination secret"
        elif "Logs" in text:
            kind = "log group"
        else:
            kind = "state machine aliases"
        out.setdefault(kind, set()).update(_as_list(st["Action"]))
    return out


def test_node_runner_role(synth: Synthesized) -> None:
    assert _by_resource_kind(synth, c.NODE_RUNNER_HANDLER) == {
        "log group": LOGS,
        "*": XRAY,
        "table": TABLE_READ_PUT,
        "bucket objects": OBJECTS,
        "bucket": BUCKET,
    }


def test_api_role_reads_writes_and_never_deletes(synth: Synthesized) -> None:
    assert _by_resource_kind(synth, c.API_HANDLER) == {
        "log group": LOGS,
        "*": XRAY,
        "table": TABLE_READ_PUT | {"dynamodb:UpdateItem"},
        "table indexes": {"dynamodb:Query"},  # list_executions
        "bucket objects": OBJECTS,
        "bucket": BUCKET,
        "state machine aliases": {"states:StartExecution"},
        "executions": {
            "states:DescribeExecution",
            "states:RedriveExecution",
            "states:StopExecution",
        },
        "pagination secret": {"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"},
    }


def test_status_recorder_role(synth: Synthesized) -> None:
    assert _by_resource_kind(synth, c.STATUS_HANDLER) == {
        "log group": LOGS,
        "*": XRAY,
        "table": TABLE_READ_PUT | {"dynamodb:UpdateItem"},
        "bucket objects": OBJECTS,
        "bucket": BUCKET,
        "executions": {"states:DescribeExecution"},
        "dead letters": {"sqs:SendMessage"},  # Lambda's async on-failure destination
    }

"""``--remote aws`` in moto: the CLI on the DynamoDB store and Step Functions through the
same ``StepFunctionsExecutionService`` as the API Lambda, CloudWatch Logs for ``stepdag
logs``, and a read-only ``stepdag replay`` of a production run.

The deployment is the API's moto harness (``test_api_aws_moto.aws``): the example
workflows deployed in moto's Step Functions, the real node runner answering each Task.
"""

# The `aws` fixture is imported from the API harness; tests take it as a parameter.
# ruff: noqa: F811

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from typer.testing import CliRunner

from stepdag.cli.main import app
from stepdag.handlers.observability import request_keys
from stepdag.runtime.records import NodeKey
from tests.functional.test_api_aws_moto import BUCKET, TABLE, Aws, aws  # noqa: F401 - fixture
from tests.support.lambdas import REGION
from tests.unit.api import workflows

pytestmark = pytest.mark.moto

REPO = Path(__file__).resolve().parents[2]
LOG_GROUP = "/aws/lambda/stepdag-node-runner"


@pytest.fixture()
def cli(aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("STEPDAG_REMOTE", "aws")
    monkeypatch.setenv("STEPDAG_TABLE_NAME", TABLE)
    monkeypatch.setenv("STEPDAG_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("STEPDAG_STATE_MACHINES", json.dumps(aws.service._targets))
    monkeypatch.setenv("STEPDAG_LOG_GROUPS", LOG_GROUP)
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))  # must stay unused
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.setenv("STEPDAG_POLL_SECONDS", "0.05")
    monkeypatch.chdir(REPO)  # the workflow code: statemachines/
    return CliRunner()


def run_etl(cli: CliRunner, key: str, count: int = 6) -> str:
    # Small: moto's interpreter is slow per Map item (25 records: the example input).
    payload = json.dumps({"source": "orders-cli", "count": count})
    res = cli.invoke(app, ["run", "etl", "-i", payload, "--idempotency-key", key])
    assert res.exit_code == 0, res.output
    assert f"execution {key} (etl) started" in res.output and "SUCCEEDED" in res.output
    return f"arn:aws:states:{REGION}:123456789012:execution:etl:{key}"


def test_run_show_list_output_on_step_functions(
    cli: CliRunner,
    aws: Aws,
    tmp_path: Path,
) -> None:
    execution_id = run_etl(cli, "cli-1")
    assert aws.store.get_execution(execution_id).input["source"]  # in DynamoDB, via SFN
    show = cli.invoke(app, ["executions", "show", "cli-1"])
    assert show.exit_code == 0, show.output
    for node in ("extract", "transform", "load", "report", "timeline"):
        assert node in show.output
    listing = cli.invoke(app, ["executions", "list", "--workflow", "etl"])
    assert "cli-1" in listing.output and "SUCCEEDED" in listing.output
    profile = cli.invoke(app, ["executions", "output", "cli-1", "profile"])
    assert json.loads(profile.stdout)["rows"] == 6
    other = '{"source": "other"}'
    again = cli.invoke(app, ["run", "etl", "-i", other, "--idempotency-key", "cli-1"])
    assert again.exit_code == 2 and "different input" in again.output
    assert not (tmp_path / "home").exists()


def test_cancel_on_step_functions(cli: CliRunner, aws: Aws) -> None:
    started = aws.client.start("api_gated", headers={"Idempotency-Key": "held-cli"})
    assert started.status == 201
    while not aws.invocations:
        time.sleep(0.01)
    res = cli.invoke(app, ["cancel", "held-cli"])
    assert res.exit_code == 0, res.output
    assert "ABORTED" in res.output
    workflows.GATE.set()
    # moto records the abort when the in-flight Task returns: StopExecution was called
    assert aws.wait(started.body["id"]) == "ABORTED"


def powertools_lines(invocations: list[dict[str, Any]]) -> list[str]:
    """What the node-runner Lambda's Powertools Logger prints for these invocations."""
    buf = io.StringIO()
    logger = Logger(service="stepdag", logger_handler=logging.StreamHandler(buf))
    for payload in invocations:
        logger.append_keys(**request_keys(payload))
        logger.set_correlation_id(payload["execution"])
        logger.info("node finished", extra={"status": "SUCCEEDED", "duration_ms": 1.5})
        logger.remove_keys([*request_keys(payload)])
    return buf.getvalue().splitlines()


def test_logs_come_from_cloudwatch_filtered_to_the_execution_and_node(
    cli: CliRunner,
    aws: Aws,
) -> None:
    execution_id = run_etl(cli, "cli-2")
    mine = [p for p in aws.invocations if p["execution"] == execution_id]
    other = {**mine[0], "execution": execution_id + "0"}  # ":cli-20": the same term, prefix
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="2026/01/01/[$LATEST]abc")
    now = int(time.time() * 1000)
    lines = ["START RequestId: 1 Version: $LATEST", *powertools_lines([*mine, other])]
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    res = cli.invoke(app, ["logs", "cli-2", "--node", "transform", "--json"])
    assert res.exit_code == 0, res.output
    entries = [json.loads(line) for line in res.stdout.splitlines()]
    transform_calls = [p for p in mine if p["node"] == "transform"]
    assert len(entries) == len(transform_calls) >= 1
    for e in entries:
        assert (e["correlation_id"], e["node"], e["level"]) == (execution_id, "transform", "INFO")
        assert e["message"] == "node finished" and e["service"] == "stepdag"
    everything = cli.invoke(app, ["logs", "cli-2"])
    assert everything.exit_code == 0
    assert everything.output.count("node finished") == len(mine)  # not the ":cli-20" line
    assert "load[" in everything.output  # Map items: node[index]
    items = cli.invoke(app, ["logs", "cli-2", "--node", "load", "--index", "3", "--json"])
    assert [json.loads(x)["index"] for x in items.stdout.splitlines()] == [3]


def scan(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))


def objects(bucket: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_replay_of_a_production_run_reads_dynamodb_and_s3_and_writes_nothing(
    cli: CliRunner,
    aws: Aws,
) -> None:
    run_etl(cli, "cli-3", count=25)  # extract's output > the harness's 1 KiB: S3
    assert objects(BUCKET), "replay must read offloaded outputs too"
    before = (scan(TABLE), objects(BUCKET))
    res = cli.invoke(app, ["replay", "cli-3", "report"])
    assert res.exit_code == 0, res.output
    assert "input load = [" in res.output and "input profile = {" in res.output
    assert "output is the same as the recorded output" in res.output
    item = cli.invoke(app, ["replay", "cli-3", "load", "--index", "0"])
    assert item.exit_code == 0 and "output is the same as the recorded output" in item.output
    assert (scan(TABLE), objects(BUCKET)) == before


def test_aws_target_needs_its_configuration(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEPDAG_TABLE_NAME")
    res = cli.invoke(app, ["executions", "list"])
    assert res.exit_code == 2 and "STEPDAG_TABLE_NAME" in res.output and "--stack" in res.output
    monkeypatch.setenv("STEPDAG_TABLE_NAME", "no-such-table")
    missing = cli.invoke(app, ["executions", "list"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output, missing.output


def test_rerun_on_step_functions(cli: CliRunner, aws: Aws) -> None:
    """`rerun --remote aws`: the same StepFunctionsExecutionService.rerun as the API."""
    first = run_etl(cli, "cli-r")
    res = cli.invoke(app, ["rerun", "cli-r", "--from", "report", "--name", "cli-r2"])
    assert res.exit_code == 0, res.output
    assert "execution cli-r2 (etl) started: rerun of cli-r from node 'report'" in res.output
    assert "SUCCEEDED" in res.output
    rec = aws.store.get_execution("cli-r2")
    assert (rec.rerun_of, rec.rerun_from) == (first, "report")
    # extract is upstream of --from: copied before the run, the runner answered from it
    old = aws.store.get_node(NodeKey(first, "extract"))
    new = aws.store.get_node(NodeKey(rec.execution_id, "extract"))
    assert old is not None and new is not None
    assert (new.started_at, new.attempts) == (old.started_at, old.attempts)

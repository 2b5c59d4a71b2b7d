"""The REAL node-runner Lambda handler, end to end in moto.

Each example's committed ASL runs in moto's Step Functions interpreter; every Lambda
Task is answered in-process by ``stepdag.handlers.node_runner.handler(event, context)``
(Powertools decorators included), whose store is the DynamoDB store on moto DynamoDB +
S3, built by the handler itself from its settings on the first invocation.  The run must
succeed, and every node's outcome and output -- read back through the store -- must equal
what the local engine produces for the same input.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

from stepdag.core.loader import discover
from stepdag.core.status import NodeStatus
from stepdag.handlers.app import NodeRunnerApp
from stepdag.handlers.observability import LazyTracer
from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.engine import LocalEngine
from stepdag.runtime.sqlite import SqliteStore
from tests.support.lambdas import REGION, lambda_arn
from tests.support.moto_sfn import moto_sfn, substitute
from tests.unit.handlers.support import (
    FakeLambdaContext,
    emf_documents,
    import_handler,
    metric_values,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {lw.workflow.name: lw.workflow for lw in discover(REPO / "statemachines")}
FUNCTION = "stepdag-node-runner"
TABLE = "stepdag-moto"
BUCKET = "stepdag-moto-payloads"
# Small enough that the larger outputs (etl's records, features' events) are offloaded to
# S3, so the runner's reads through the store exercise both paths.
OFFLOAD_THRESHOLD = 1024

pytestmark = [
    pytest.mark.moto,
    # Phases that record no outcome flush no metrics; the handler silences Powertools'
    # warning at import, but pytest restores warning filters per test.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


def example_input(name: str) -> Any:
    return json.loads((REPO / "statemachines" / "inputs" / f"{name}.json").read_text())


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The store builds its own boto3 session (not moto_sfn's default one): give it the
    # region and fake credentials a Lambda would have in its environment.
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.parametrize("name", ["etl", "features", "documents"])
def test_handler_runs_example_in_moto_like_the_local_engine(
    name: str, tmp_path: Path, aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    h = import_handler()
    settings = h.settings.model_copy(
        update={
            "table_name": TABLE,
            "bucket": BUCKET,
            "offload_threshold": OFFLOAD_THRESHOLD,
            # What the CDK stack sets: {workflow: module:attr}, names checked on load.
            "workflow_modules": {name: f"statemachines.{name}:wf"},
        }
    )
    # The production store factory and workflow discovery; only tracing is off (no
    # X-Ray daemon here).
    app = NodeRunnerApp(
        settings,
        logger=h.logger,
        metrics=h.metrics,
        tracer=LazyTracer(settings.service_name, enabled=False),
    )
    definition = substitute(
        (REPO / "statemachines" / f"{name}.asl.json").read_text(),
        {"NodeRunnerFunctionArn": lambda_arn(FUNCTION)},
    )
    logs = io.StringIO()
    stream_handler = h.logger.registered_handler
    previous = stream_handler.setStream(logs)
    # One execution environment handles one event at a time; moto calls from its Map
    # and Parallel threads, so serialise like Lambda does (Powertools' logger keys and
    # metric set are per process, exactly as in a real environment).
    environment = threading.Lock()
    payloads: list[dict[str, Any]] = []

    def node_runner(fn_name: str, payload: Any) -> Any:
        assert fn_name == FUNCTION
        with environment:
            payloads.append(payload)
            return h.handler(payload, FakeLambdaContext())

    try:
        with mock.patch.object(h, "app", app), moto_sfn(node_runner) as sfn:
            create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
            capsys.readouterr()
            result = sfn.run(definition, example_input(name), name=name, execution_name="ex1")
            assert result["status"] == "SUCCEEDED", result
            reader = DynamoDbStore(TABLE, bucket=BUCKET)
            (execution,) = reader.list_executions().items
            aws_nodes = reader.list_nodes(execution.execution_id, include_items=True)
            offloaded = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    finally:
        stream_handler.setStream(previous)
    stdout = capsys.readouterr().out

    # The local engine on the same workflow and input is the reference.
    engine = LocalEngine(SqliteStore(tmp_path / "engine.db"))
    local = engine.run(EXAMPLES[name], example_input(name), name="ex1")
    assert local.status.value == "SUCCEEDED"
    local_nodes = engine.store.list_nodes(local.execution_id, include_items=True)

    def outcomes(records: list[Any]) -> dict[tuple[str, int | None], tuple[NodeStatus, Any]]:
        return {(r.node, r.map_index): (r.status, r.output) for r in records}

    dag = EXAMPLES[name].build()
    assert {r.node for r in aws_nodes if r.map_index is None} == set(dag.nodes)
    assert outcomes(aws_nodes) == outcomes(local_nodes)
    assert execution.execution_id.endswith(f":{name}:ex1")
    big = [r for r in aws_nodes if len(json.dumps(r.output, separators=(",", ":"))) > 1024]
    assert (offloaded.get("KeyCount", 0) > 0) == bool(big), "outputs over the threshold go to S3"

    # Every invocation logged under the execution id as its correlation id.
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.strip()]
    finished = [line for line in lines if line["message"] == "node finished"]
    assert finished
    assert {line["correlation_id"] for line in lines} == {execution.execution_id}
    assert not [line for line in lines if line["level"] == "ERROR"]

    # EMF: one NodeSucceeded per node run (a Map item counts for its node), one
    # NodeSkipped per skipped node, all with the workflow/node(/service) dimensions.
    counts: Counter[tuple[str, str]] = Counter()
    for doc in emf_documents(stdout):
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert sorted(directive["Dimensions"][0]) == ["node", "service", "workflow"]
        assert doc["workflow"] == name
        for metric, value in metric_values(doc).items():
            if metric in ("NodeSucceeded", "NodeSkipped", "NodeFailed"):
                counts[(doc["node"], metric)] += int(value)
    expected: Counter[tuple[str, str]] = Counter()
    for r in local_nodes:
        node = dag[r.node]
        if node.is_map and r.map_index is None and r.status is NodeStatus.SUCCEEDED:
            continue  # its runs are its items (its gather records no outcome)
        if r.status is NodeStatus.SUCCEEDED:
            expected[(r.node, "NodeSucceeded")] += 1
        elif r.status is NodeStatus.SKIPPED:
            expected[(r.node, "NodeSkipped")] += 1
    assert counts == expected

    # Only pointers travelled through the state machine.
    assert all(len(json.dumps(p)) < 2_000 for p in payloads)

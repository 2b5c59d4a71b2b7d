"""``scripts/smoke.py --url`` against a real ``stepdag serve`` (in-process, free port):
ready, one etl run to SUCCEEDED, one JSON line; an unknown workflow fails in one line.
And ``--stack`` on moto: the names from the stack's outputs."""

# The `aws` fixture is imported from the API harness; a test takes it as a parameter.
# ruff: noqa: F811

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest

from statemachines import etl
from stepdag import constants as contract
from stepdag.api.service import LocalExecutionService
from stepdag.core.status import RunStatus
from stepdag.runtime.sqlite import SqliteStore
from tests.functional.test_api_aws_moto import BUCKET, TABLE, Aws, aws  # noqa: F401 - fixture
from tests.support.api_server import serving
from tests.support.lambdas import REGION

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, LocalExecutionService]]:
    store = SqliteStore(tmp_path / "api.db")
    service = LocalExecutionService(store, [etl.wf])
    with serving(service) as url:
        yield url, service
    service.wait_idle()
    store.close()


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SMOKE), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_smoke_passes_against_stepdag_serve(served: tuple[str, LocalExecutionService]) -> None:
    url, service = served
    done = smoke("--url", url, "--key", "smoke-ci-1", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["ok"] is True and result["target"] == url
    assert result["health"]["status"] == 200
    assert result["health"]["checks"]["store"] is True
    assert result["run"]["workflow"] == "etl"
    assert result["run"]["execution"] == "smoke-ci-1"
    assert result["run"]["status"] == "SUCCEEDED"
    # The run is really on the server, on the sample input's 25 records.
    rec = service.get("smoke-ci-1", tenant=None)
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["loaded"] + rec.output["invalid"] == 25

    # The same key again joins that run: no second execution.
    again = smoke("--url", url, "--key", "smoke-ci-1", "--timeout", "60")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["run"]["execution_id"] == result["run"]["execution_id"]
    assert (
        len(
            service.list_executions(
                workflow="etl", status=None, tenant=None, limit=10, next_token=None
            ).items
        )
        == 1
    )


def test_an_unknown_workflow_fails_in_one_line(
    served: tuple[str, LocalExecutionService],
) -> None:
    url, _ = served
    done = smoke("--url", url, "--workflow", "nope")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["ok"] is False and result["step"] == "start"
    assert "nope" in result["reason"]
    assert result["health"]["status"] == 200  # it got past readiness
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"smoke: {url}: start failed:"), done.stderr


def test_nothing_listening_fails_at_health(tmp_path: Path) -> None:
    done = smoke("--url", "http://127.0.0.1:9/", "--timeout", "5")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["step"] == "health" and "/v1/health/ready" in result["reason"]


def load_smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smoke", SMOKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def create_stack(name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack in moto whose outputs are the deployment's names."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@pytest.mark.moto
def test_smoke_on_a_stack_reads_its_outputs(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--stack``: readiness through the stack's ApiUrl (a real server on the same
    Step Functions service, SigV4-signed), the run through ``connect("aws", stack=)``
    on moto's Step Functions and the real node runner."""
    monkeypatch.chdir(SMOKE.parents[1])  # the aws target loads ./statemachines
    small = tmp_path / "etl.json"
    small.write_text(json.dumps({"source": "orders-smoke", "count": 4}))  # moto is slow per item
    with serving(aws.service) as url:
        create_stack(
            "StepdagSmoke",
            {
                contract.OUTPUT_TABLE_NAME: TABLE,
                contract.OUTPUT_BUCKET_NAME: BUCKET,
                contract.OUTPUT_STATE_MACHINES: json.dumps(
                    {wf: {contract.ALIAS_ARN_KEY: arn} for wf, arn in aws.service._targets.items()}
                ),
                contract.OUTPUT_NODE_LOG_GROUPS: json.dumps({"NodeRunner": "/aws/lambda/x"}),
                "ApiUrl": url + "/",  # serve has no stage prefix
            },
        )
        lines: list[str] = []
        code = load_smoke().main(
            [
                "--stack",
                "StepdagSmoke",
                "--region",
                REGION,
                "--input",
                str(small),
                "--key",
                "smoke-stack-1",
                "--timeout",
                "60",
            ],
            out=lines.append,
        )
    result = json.loads(lines[0])
    assert code == 0, result
    assert result["health"]["status"] == 200
    assert result["health"]["checks"]["stepfunctions"] is True
    assert result["run"]["status"] == "SUCCEEDED"
    assert aws.wait(result["run"]["execution_id"]) == "SUCCEEDED"

    # A stack deployed without the API: nothing to probe, said in one line.
    create_stack("StepdagNoApi", {contract.OUTPUT_TABLE_NAME: TABLE})
    lines.clear()
    assert load_smoke().main(["--stack", "StepdagNoApi", "--region", REGION], out=lines.append) == 1
    result = json.loads(lines[0])
    assert result["step"] == "health" and "no ApiUrl output" in result["reason"]

"""``--remote aws`` configuration from the environment: the names the API Lambda gets,
checked by the same rules, so a bad value is one clean line instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stepdag import constants as contract
from stepdag.cli.client import RemoteError
from stepdag.cli.main import app
from stepdag.cli.remote import Target, aws_config, sdk_region, stack_config
from stepdag.core.errors import InputValidationError
from stepdag.handlers.api_settings import load_api_settings
from stepdag.handlers.settings import ENV_VARS, SettingsError

REPO = Path(__file__).resolve().parents[3]
ALIAS = "arn:aws:states:eu-west-1:123456789012:stateMachine:etl:live"


def test_state_machine_arns_are_checked_like_the_api_lambda_does() -> None:
    good = aws_config(
        stack=None,
        region=None,
        environ={"STEPDAG_TABLE_NAME": "t", "STEPDAG_STATE_MACHINES": f'{{"etl": "{ALIAS}"}}'},
    )
    assert good.state_machines == {"etl": ALIAS}
    for bad in ('{"etl": "etl"}', '{"etl": 7}', f'{{"etl": "{ALIAS}/x"}}'):
        env = {"STEPDAG_TABLE_NAME": "t", "STEPDAG_STATE_MACHINES": bad}
        with pytest.raises(InputValidationError, match="must be state machine or alias ARNs"):
            aws_config(stack=None, region=None, environ=env)
        # The API Lambda refuses exactly these too: one rule, two readers.
        with pytest.raises(Exception, match="STEPDAG_STATE_MACHINES"):
            load_api_settings({**env, "STEPDAG_STATE_MACHINES": bad})


def test_a_malformed_state_machine_map_is_a_clean_cli_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("STEPDAG_HOME", "/nonexistent/unused")
    monkeypatch.setenv("STEPDAG_TABLE_NAME", "t")
    monkeypatch.setenv("STEPDAG_STATE_MACHINES", '{"etl": "etl"}')
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    res = CliRunner().invoke(
        app, ["run", "statemachines/etl.py:wf", "-i", "{}", "--remote", "aws", "--no-wait"]
    )
    assert res.exit_code == 2, res.output
    assert "STEPDAG_STATE_MACHINES values must be state machine or alias ARNs" in res.output
    assert "etl='etl'" in res.output and "Traceback" not in res.output


def test_sdk_calls_default_their_region_from_the_environment() -> None:
    """``--region`` has no envvar (an exported AWS_REGION must not sign API URLs), so the
    boto3 targets read AWS_REGION themselves; botocore alone reads only the second."""
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert sdk_region(Target("aws"), env) == "eu-west-1"
    assert sdk_region(Target("aws"), {"AWS_DEFAULT_REGION": "us-east-1"}) == "us-east-1"
    assert sdk_region(Target("aws", region="eu-central-1"), env) == "eu-central-1"
    assert sdk_region(Target("aws"), {}) is None


def test_one_bucket_variable_for_every_reader_and_the_retired_name_is_refused() -> None:
    """STEPDAG_BUCKET_NAME, as the stack sets it for the Lambdas (stepdag.constants); the
    old STEPDAG_BUCKET is a clean error in the CLI and the Lambdas alike, never ignored."""
    base = {"STEPDAG_TABLE_NAME": "t"}
    named = {**base, "STEPDAG_BUCKET_NAME": "b-name"}
    assert aws_config(stack=None, region=None, environ=named).bucket == "b-name"
    assert ENV_VARS["bucket"] == (contract.ENV_BUCKET_NAME,) == ("STEPDAG_BUCKET_NAME",)
    retired = "STEPDAG_BUCKET is no longer read: set STEPDAG_BUCKET_NAME instead"
    for env in ({**base, "STEPDAG_BUCKET": "b"}, {**named, "STEPDAG_BUCKET": "b-name"}):
        with pytest.raises(InputValidationError, match=retired):
            aws_config(stack=None, region=None, environ=env)
        api_env = {**env, "STEPDAG_STATE_MACHINES": f'{{"etl": "{ALIAS}"}}'}
        with pytest.raises(SettingsError, match=retired):
            load_api_settings(api_env)
    docs = (REPO / "docs" / "cli.md").read_text()
    assert "`STEPDAG_BUCKET_NAME`" in docs and "`STEPDAG_BUCKET`" not in docs


# -- --stack NAME: the stack's JSON outputs (infra/stack.py) ----------------------------


class FakeCloudFormation:
    """``describe_stacks`` answering with the given outputs, as boto3 shapes them."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        listed = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": listed}]}


MACHINE = ALIAS.removesuffix(":live")
OUTPUTS = {
    "TableName": "tbl",
    "BucketName": "bkt",
    "WorkflowStateMachines": json.dumps({"etl": {"stateMachineArn": MACHINE, "aliasArn": ALIAS}}),
    "NodeLogGroups": json.dumps({"NodeRunner2048mb120s": "/b", "NodeRunner": "/a"}),
    # Descriptions and per-workflow keys are not read: this one would have matched before.
    "WorkflowOtherAliasArn": ALIAS.replace(":etl:", ":other:"),
}


def test_stack_outputs_give_the_aws_target() -> None:
    config = stack_config("S", region="eu-west-1", cfn=FakeCloudFormation(OUTPUTS))
    assert config.table == "tbl" and config.bucket == "bkt"
    assert config.state_machines == {"etl": ALIAS}
    assert config.log_groups == ("/a", "/b")
    assert config.region == "eu-west-1"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"TableName": None}, "has no TableName output; is it a stepdag stack?"),
        ({"WorkflowStateMachines": None}, "has no WorkflowStateMachines output (deployed by an"),
        ({"NodeLogGroups": None}, "has no NodeLogGroups output"),
        ({"NodeLogGroups": "/a,/b"}, "output NodeLogGroups is not JSON"),
        ({"WorkflowStateMachines": "[]"}, "output WorkflowStateMachines is not a JSON object"),
        ({"WorkflowStateMachines": '{"etl": {"stateMachineArn": "x"}}'}, "no aliasArn ARN"),
        ({"WorkflowStateMachines": '{"etl": {"aliasArn": "etl"}}'}, "for workflow 'etl'"),
        ({"NodeLogGroups": '{"NodeRunner": 7}'}, "must map functions to log group names"),
    ],
)
def test_a_stack_without_usable_outputs_is_one_clean_line(
    changes: dict[str, str | None], fragment: str
) -> None:
    outputs = {k: v for k, v in {**OUTPUTS, **changes}.items() if v is not None}
    with pytest.raises(RemoteError) as info:
        stack_config("S", region=None, cfn=FakeCloudFormation(outputs))
    assert fragment in str(info.value) and "'S'" in str(info.value)
    assert "\n" not in str(info.value)

"""``--remote aws`` configuration from the environment: the names the API Lambda gets,
checked by the same rules, so a bad value is one clean line instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app
from stepdag.cli.remote import Target, aws_config, sdk_region
from stepdag.core.errors import InputValidationError
from stepdag.handlers.api_settings import load_api_settings
from stepdag.handlers.settings import ENV_VARS

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


def test_the_bucket_is_read_under_both_names_the_lambdas_accept() -> None:
    """docs/cli.md names both; the Lambdas' settings (handlers/settings.py) accept both,
    ``STEPDAG_BUCKET`` first."""
    base = {"STEPDAG_TABLE_NAME": "t"}
    named = {**base, "STEPDAG_BUCKET_NAME": "b-name"}
    assert aws_config(stack=None, region=None, environ=named).bucket == "b-name"
    both = {**named, "STEPDAG_BUCKET": "b-first"}
    assert aws_config(stack=None, region=None, environ=both).bucket == "b-first"
    assert ENV_VARS["bucket"] == ("STEPDAG_BUCKET", "STEPDAG_BUCKET_NAME")
    docs = (REPO / "docs" / "cli.md").read_text()
    assert "`STEPDAG_BUCKET_NAME`" in docs

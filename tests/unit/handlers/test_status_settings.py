"""The status recorder's settings: checked at cold start, every problem named."""

from __future__ import annotations

import json

import pytest

from stepdag.handlers.settings import SettingsError
from stepdag.handlers.status_settings import load_status_settings

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:Stepdag-etl"


def test_valid_environment() -> None:
    settings = load_status_settings(
        {"STEPDAG_TABLE_NAME": "t-1", "STEPDAG_STATE_MACHINES": json.dumps({"etl": ARN})}
    )
    assert settings.state_machines == {"etl": ARN}
    assert settings.table_name == "t-1"


def test_every_problem_is_named_with_the_function() -> None:
    with pytest.raises(SettingsError) as caught:
        load_status_settings({"STEPDAG_STATE_MACHINES": '{"etl": "not-an-arn"}'})
    message = str(caught.value)
    assert message.startswith("invalid status-recorder configuration")
    assert "STEPDAG_TABLE_NAME is required" in message
    assert "not-an-arn" in message

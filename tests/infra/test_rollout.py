"""The API and status-recorder functions: published versions behind ``live`` aliases, moved
by CANARY/LINEAR CodeDeploy deployments that roll back on their alarms (as the state
machines' aliases are)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from infra.constructs import alarms
from infra.lint import lint_template
from tests.infra.conftest import Synthesized, synthesize


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    context = {
        c.CTX_DEPLOYMENT_TYPE: "LINEAR",
        c.CTX_DEPLOYMENT_PERCENTAGE: "25",
        c.CTX_DEPLOYMENT_INTERVAL: "3",
    }
    yield synthesize(tmp_path_factory.mktemp("stepdag-linear"), context)


def _alias(synth: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    fn_id, _ = synth.function(handler)
    (found,) = [
        (k, v)
        for k, v in synth.of_type("AWS::Lambda::Alias").items()
        if v["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    return found


def _alarm_ref(synth: Synthesized, name: str) -> dict[str, str]:
    (alarm_id,) = [
        k
        for k, v in synth.of_type("AWS::CloudWatch::Alarm").items()
        if v["Properties"]["AlarmName"] == name
    ]
    return {"Ref": alarm_id}


def test_callers_invoke_the_live_alias_of_a_published_version(synth: Synthesized) -> None:
    for handler in (c.API_HANDLER, c.STATUS_HANDLER):
        _, alias = _alias(synth, handler)
        props = alias["Properties"]
        assert props["Name"] == c.STATE_MACHINE_ALIAS
        version = props["FunctionVersion"]["Fn::GetAtt"][0]
        assert synth.resources[version]["Type"] == "AWS::Lambda::Version"
        assert "UpdatePolicy" not in alias  # ALL_AT_ONCE: the stack update moves it
    api_alias, _ = _alias(synth, c.API_HANDLER)
    proxy = [
        m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["Integration"].get("Type") == "AWS_PROXY"
    ]
    assert proxy
    for method in proxy:  # …/functions/<alias ARN>/invocations
        assert json.dumps({"Ref": api_alias}) in json.dumps(method["Integration"]["Uri"])
    assert not synth.of_type("AWS::CodeDeploy::DeploymentGroup")


def test_linear_rollout_shifts_both_aliases_and_rolls_back_on_their_alarms(
    linear: Synthesized,
) -> None:
    (config,) = linear.of_type("AWS::CodeDeploy::DeploymentConfig").values()
    assert config["Properties"]["TrafficRoutingConfig"] == {
        "Type": "TimeBasedLinear",
        "TimeBasedLinear": {"LinearInterval": 3, "LinearPercentage": 25},
    }
    groups = linear.of_type("AWS::CodeDeploy::DeploymentGroup")
    stack = c.STACK_ID
    watched = {
        c.API_HANDLER: [
            c.alarm_name(stack, alarms.ALARM_LAMBDA_ERRORS, alarms.API_FUNCTION_NAME),
            c.alarm_name(stack, alarms.ALARM_API_SERVER_ERRORS),
        ],
        c.STATUS_HANDLER: [
            c.alarm_name(stack, alarms.ALARM_LAMBDA_ERRORS, alarms.STATUS_FUNCTION_NAME),
            c.alarm_name(stack, c.ALARM_STATUS_EVENTS),
        ],
    }
    assert len(groups) == len(watched)
    for handler, alarm_names in watched.items():
        _, alias = _alias(linear, handler)
        update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        group = groups[update["DeploymentGroupName"]["Ref"]]["Properties"]
        assert group["DeploymentConfigName"] == {
            "Ref": next(iter(linear.of_type("AWS::CodeDeploy::DeploymentConfig")))
        }
        assert group["AlarmConfiguration"] == {
            "Alarms": [{"Name": _alarm_ref(linear, n)} for n in alarm_names],
            "Enabled": True,
        }
        assert set(group["AutoRollbackConfiguration"]["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_REQUEST",
            "DEPLOYMENT_STOP_ON_ALARM",
        }


def test_canary_rollout_of_the_state_machines_and_the_api_agree(tmp_path: Path) -> None:
    canary = synthesize(
        tmp_path,
        {
            c.CTX_DEPLOYMENT_TYPE: "CANARY",
            c.CTX_DEPLOYMENT_PERCENTAGE: "20",
            c.CTX_DEPLOYMENT_INTERVAL: "10",
            c.CTX_SFN_TYPE: "EXPRESS",  # no status recorder: the API's group only
        },
    )
    (config,) = canary.of_type("AWS::CodeDeploy::DeploymentConfig").values()
    assert config["Properties"]["TrafficRoutingConfig"] == {
        "Type": "TimeBasedCanary",
        "TimeBasedCanary": {"CanaryInterval": 10, "CanaryPercentage": 20},
    }
    for alias in canary.of_type("AWS::StepFunctions::StateMachineAlias").values():
        preference = alias["Properties"]["DeploymentPreference"]
        assert (preference["Percentage"], preference["Interval"]) == (20, 10)
    assert len(canary.of_type("AWS::CodeDeploy::DeploymentGroup")) == 1


def test_linear_stack_passes_cdk_nag_and_cfn_lint(linear: Synthesized) -> None:
    assert linear.nag_findings() == []
    assert lint_template(linear.template_path) == []

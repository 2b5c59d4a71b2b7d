"""Triggers in the stack: EventBridge rules and Scheduler schedules on the live alias."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from stepdag.core.loader import load_workflow
from stepdag.core.triggers import EventTrigger, ScheduleTrigger, input_transformer
from tests.infra.conftest import Synthesized, synthesize

ETL = load_workflow("statemachines/etl.py:wf").workflow
EVENT_TRIGGERS = [t for t in ETL.triggers if isinstance(t, EventTrigger)]
SCHEDULES = [t for t in ETL.triggers if isinstance(t, ScheduleTrigger)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-triggers"))


def _alias_arn_of(synth: Synthesized, workflow_prefix: str) -> dict[str, Any]:
    machine = next(
        k
        for k in synth.of_type("AWS::StepFunctions::StateMachine")
        if k.startswith(workflow_prefix)
    )
    return {"Fn::Join": [":", [{"Ref": machine}, c.STATE_MACHINE_ALIAS]]}


def _policy_for(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            return list(policy["Properties"]["PolicyDocument"]["Statement"])
    raise AssertionError(f"no policy for {role_id}")


def test_examples_declare_one_schedule_and_one_event_trigger() -> None:
    assert len(EVENT_TRIGGERS) == len(SCHEDULES) == 1


def test_one_rule_per_event_trigger_with_the_pattern_and_transformer(synth: Synthesized) -> None:
    rules = {
        k: v for k, v in synth.of_type("AWS::Events::Rule").items() if c.TRIGGERS_ID_SUFFIX in k
    }
    assert len(rules) == len(EVENT_TRIGGERS)
    (trigger,) = EVENT_TRIGGERS
    props = next(iter(rules.values()))["Properties"]
    assert "EventBusName" not in props  # the default bus
    assert props["State"] == "ENABLED"
    assert props["EventPattern"] == dict(trigger.pattern)
    (target,) = props["Targets"]
    assert target["Arn"] == _alias_arn_of(synth, "WorkflowEtl")  # the live alias
    assert isinstance(trigger.input, dict)
    assert target["InputTransformer"] == input_transformer(trigger.input)
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": c.TRIGGER_RETRY_ATTEMPTS}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = synth.resources[role_id]["Properties"]
    principals = [s["Principal"]["Service"] for s in role["AssumeRolePolicyDocument"]["Statement"]]
    assert principals == ["events.amazonaws.com"]
    assert _policy_for(synth, role_id) == [
        {
            "Action": "states:StartExecution",
            "Effect": "Allow",
            "Resource": _alias_arn_of(synth, "WorkflowEtl"),
        }
    ]


def test_one_schedule_per_schedule_trigger_with_timezone_and_input(synth: Synthesized) -> None:
    schedules = synth.of_type("AWS::Scheduler::Schedule")
    assert len(schedules) == len(SCHEDULES)
    (trigger,) = SCHEDULES
    props = next(iter(schedules.values()))["Properties"]
    assert props["ScheduleExpression"] == trigger.expression == "cron(0 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == trigger.timezone == "Europe/Berlin"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    target = props["Target"]
    assert target["Arn"] == _alias_arn_of(synth, "WorkflowEtl")
    assert json.loads(target["Input"]) == trigger.payload == {"source": "nightly"}
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    trust = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": c.SCHEDULER_PRINCIPAL},
        }
    ]
    assert _policy_for(synth, role_id) == [
        {
            "Action": "states:StartExecution",
            "Effect": "Allow",
            "Resource": _alias_arn_of(synth, "WorkflowEtl"),
        }
    ]


def test_trigger_roles_start_executions_only_and_no_managed_policies(synth: Synthesized) -> None:
    trigger_roles = [k for k in synth.of_type("AWS::IAM::Role") if c.TRIGGERS_ID_SUFFIX in k]
    assert len(trigger_roles) == 2  # the rule's events role and the scheduler role
    for role_id in trigger_roles:
        assert "ManagedPolicyArns" not in synth.resources[role_id]["Properties"]
        actions = {s["Action"] for s in _policy_for(synth, role_id)}
        assert actions == set(c.TRIGGER_START_ACTIONS)


def test_workflows_without_triggers_get_no_trigger_resources(synth: Synthesized) -> None:
    assert set(synth.stack.triggers) == {"etl"}
    assert not any(
        k.startswith(("WorkflowDocuments", "WorkflowFeatures")) and c.TRIGGERS_ID_SUFFIX in k
        for k in synth.resources
    )

"""Triggers in the stack: EventBridge rules and Scheduler schedules.

Without the REST API (``stepdag:api=false``) a rule targets the live alias; with it (the
default, IAM auth) the rule targets
``POST /v1/hooks/<workflow>/events`` with the keyed envelope, so the event id names the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from infra.constructs.hooks import EVENT_REQUEST_TEMPLATE, EVENTS_PATH
from infra.constructs.triggers import (
    TRIGGER_DEAD_LETTER_ACTIONS,
    TRIGGER_MAX_EVENT_AGE,
    keyed_input_transformer,
)
from stepdag.core.loader import load_workflow
from stepdag.core.triggers import EventTrigger, ScheduleTrigger, input_transformer
from tests.infra.conftest import Synthesized, synthesize

ETL = load_workflow("statemachines/etl.py:wf").workflow
EVENT_TRIGGERS = [t for t in ETL.triggers if isinstance(t, EventTrigger)]
SCHEDULES = [t for t in ETL.triggers if isinstance(t, ScheduleTrigger)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-triggers"), {c.CTX_API_ENABLED: "false"})


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
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == c.TRIGGER_RETRY_ATTEMPTS
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
        },
        {
            "Action": "sqs:SendMessage",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_dead_letters(synth), "Arn"]},
        },
    ]


def test_trigger_roles_start_executions_only_and_no_managed_policies(synth: Synthesized) -> None:
    trigger_roles = [k for k in synth.of_type("AWS::IAM::Role") if c.TRIGGERS_ID_SUFFIX in k]
    assert len(trigger_roles) == 2  # the rule's events role and the scheduler role
    for role_id in trigger_roles:
        assert "ManagedPolicyArns" not in synth.resources[role_id]["Properties"]
        actions = {s["Action"] for s in _policy_for(synth, role_id)}
        if "Scheduler" in role_id:  # Scheduler dead-letters with the schedule's role
            assert actions == {*c.TRIGGER_START_ACTIONS, *TRIGGER_DEAD_LETTER_ACTIONS}
        else:  # EventBridge dead-letters by the queue's policy
            assert actions == set(c.TRIGGER_START_ACTIONS)


def _dead_letters(synth: Synthesized) -> str:
    (queue,) = [k for k in synth.of_type("AWS::SQS::Queue") if c.TRIGGERS_ID_SUFFIX in k]
    return queue


def _assert_dead_letters(synth: Synthesized) -> None:
    """Every rule target and schedule target retries, then dead-letters into the
    workflow's encrypted queue, which EventBridge (that rule only) and the schedule's role
    may send to, and which an alarm watches."""
    queue = _dead_letters(synth)
    props = synth.resources[queue]["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    queue_arn = {"Fn::GetAtt": [queue, "Arn"]}
    retry = {
        "MaximumRetryAttempts": c.TRIGGER_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": int(TRIGGER_MAX_EVENT_AGE.to_seconds()),
    }
    rules = {
        k: v for k, v in synth.of_type("AWS::Events::Rule").items() if c.TRIGGERS_ID_SUFFIX in k
    }
    assert rules
    for rule_id, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": queue_arn}
            assert target["RetryPolicy"] == retry
        (policy,) = [
            p["Properties"]
            for p in synth.of_type("AWS::SQS::QueuePolicy").values()
            if p["Properties"]["Queues"] == [{"Ref": queue}]
        ]
        allow = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert allow == [
            {
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
                "Effect": "Allow",
                "Principal": {"Service": c.EVENTS_PRINCIPAL},
                "Resource": queue_arn,
                "Sid": allow[0]["Sid"],
            }
        ]
    schedules = synth.of_type("AWS::Scheduler::Schedule")
    assert schedules
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"] == {"Arn": queue_arn}
        assert target["RetryPolicy"] == retry
        role_id = target["RoleArn"]["Fn::GetAtt"][0]
        send = [s for s in _policy_for(synth, role_id) if s["Action"] == "sqs:SendMessage"]
        assert send == [{"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": queue_arn}]
    depth = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert [(a["Threshold"], a["ComparisonOperator"]) for a in depth] == [
        (0, "GreaterThanThreshold")
    ]


def test_without_the_api_rule_and_schedule_targets_dead_letter(synth: Synthesized) -> None:
    _assert_dead_letters(synth)


def test_workflows_without_triggers_get_no_trigger_resources(synth: Synthesized) -> None:
    assert set(synth.stack.triggers) == {"etl"}
    assert not any(
        k.startswith(("WorkflowDocuments", "WorkflowFeatures")) and c.TRIGGERS_ID_SUFFIX in k
        for k in synth.resources
    )


# ---------------------------------------------------- with the REST API (the default)


@pytest.fixture(scope="module")
def synth_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-triggers-api"))


def _events_route_arn(synth: Synthesized, workflow: str) -> dict[str, Any]:
    (api,) = synth.of_type("AWS::ApiGateway::RestApi")
    (stage,) = synth.of_type("AWS::ApiGateway::Stage")
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":execute-api:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":",
                {"Ref": api},
                "/",
                {"Ref": stage},
                f"/POST/{c.API_ROUTE_PREFIX}/{c.HOOKS_PATH}/{workflow}/{EVENTS_PATH}",
            ],
        ]
    }


def test_with_the_api_the_rule_targets_the_events_route_with_the_keyed_envelope(
    synth_api: Synthesized,
) -> None:
    rules = {
        k: v for k, v in synth_api.of_type("AWS::Events::Rule").items() if c.TRIGGERS_ID_SUFFIX in k
    }
    (trigger,) = EVENT_TRIGGERS
    (props,) = [r["Properties"] for r in rules.values()]
    assert props["EventPattern"] == dict(trigger.pattern)  # the pattern is unchanged
    (target,) = props["Targets"]
    assert target["Arn"] == _events_route_arn(synth_api, "etl")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == c.TRIGGER_RETRY_ATTEMPTS
    assert not target.get("HttpParameters")  # no path parameters, headers or query
    assert isinstance(trigger.input, dict)
    params = input_transformer(trigger.input)
    assert target["InputTransformer"] == {
        "InputPathsMap": {**params["InputPathsMap"], "id": "$.id"},
        "InputTemplate": '{"key":<id>,"input":' + params["InputTemplate"] + "}",
    }
    assert target["InputTransformer"] == {
        "InputPathsMap": {"detail_source": "$.detail.source", "id": "$.id"},
        "InputTemplate": '{"key":<id>,"input":{"source":<detail_source>}}',
    }


def test_with_the_api_the_events_role_may_only_invoke_that_route(synth_api: Synthesized) -> None:
    (target,) = next(
        v["Properties"]["Targets"]
        for k, v in synth_api.of_type("AWS::Events::Rule").items()
        if c.TRIGGERS_ID_SUFFIX in k
    )
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    assert role_id.startswith("WorkflowEtlTriggers" + c.TRIGGER_EVENTS_ROLE_ID)
    role = synth_api.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": c.EVENTS_PRINCIPAL}
    # Only Invoke (CDK's target would add ManageConnections), only POST on this one route.
    assert _policy_for(synth_api, role_id) == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": _events_route_arn(synth_api, "etl"),
        }
    ]
    # No other policy names that role, and no role may start the alias from EventBridge.
    policies = [
        p
        for p in synth_api.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    assert len(policies) == 1
    assert not any(
        "events.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        and "states:StartExecution" in json.dumps(_policy_for(synth_api, k))
        for k, r in synth_api.of_type("AWS::IAM::Role").items()
        if c.TRIGGERS_ID_SUFFIX in k
    )


def test_with_the_api_rule_and_schedule_targets_dead_letter(synth_api: Synthesized) -> None:
    _assert_dead_letters(synth_api)


def test_with_the_api_schedules_still_target_the_alias(synth_api: Synthesized) -> None:
    (schedule,) = synth_api.of_type("AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["Arn"] == _alias_arn_of(synth_api, "WorkflowEtl")


def test_the_events_route_template_reads_the_envelope_the_transformer_renders() -> None:
    # The transformer's fields are the ones the route's template reads.
    assert "$!input.path('$.key')" in EVENT_REQUEST_TEMPLATE
    assert "$input.json('$.input')" in EVENT_REQUEST_TEMPLATE
    keyed = keyed_input_transformer({"a": "$.detail.a"})
    assert keyed["InputTemplate"].startswith('{"key":<id>,"input":')


def test_keyed_transformer_passes_the_whole_event_without_a_template() -> None:
    assert keyed_input_transformer(None) == {
        "InputPathsMap": {"id": "$.id"},
        "InputTemplate": '{"key":<id>,"input":<aws.events.event.json>}',
    }


def test_keyed_transformer_reuses_or_avoids_an_id_variable() -> None:
    # The template maps $.id itself: one variable for both.
    same = keyed_input_transformer({"event": "$.id", "x": "$.detail.x"})
    assert same["InputPathsMap"] == {"id": "$.id", "detail_x": "$.detail.x"}
    assert same["InputTemplate"] == '{"key":<id>,"input":{"event":<id>,"x":<detail_x>}}'
    # Another path whose variable is also "id" ($.id- -> id): the key gets its own.
    other = keyed_input_transformer({"y": "$.id-"})
    assert other["InputPathsMap"] == {"id": "$.id-", "id_2": "$.id"}
    assert other["InputTemplate"] == '{"key":<id_2>,"input":{"y":<id>}}'


def test_keyed_transformer_suffixes_the_key_with_the_trigger_name() -> None:
    # Several event triggers on one workflow: "<id>-<trigger>", as `stepdag trigger` names it.
    keyed = keyed_input_transformer({"a": "$.detail.a"}, suffix="orders")
    assert keyed["InputTemplate"] == '{"key":"<id>-orders","input":{"a":<detail_a>}}'

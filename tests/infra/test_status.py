"""The status recorder: rule on this stack's executions, target with retries and a DLQ,
least-privilege function on the node runner's code, the alarm, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from infra.lint import lint_template
from infra.workflows import load_workflows
from stepdag.api import status as recorder
from tests.infra.conftest import Synthesized, synthesize

WORKFLOWS = {spec.name: spec for spec in load_workflows(c.WORKFLOWS_DIR)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-status"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    return synth.function(c.STATUS_HANDLER)


def _rule(synth: Synthesized) -> dict[str, Any]:
    (rule,) = [
        v["Properties"]
        for k, v in synth.of_type("AWS::Events::Rule").items()
        if k.startswith(c.STATUS_ID)
    ]
    return rule


def _state_machine_name_refs(synth: Synthesized) -> set[str]:
    return {
        f"{k}.Name"
        for k in synth.of_type("AWS::StepFunctions::StateMachine")
        if k.startswith(c.WORKFLOW_ID_PREFIX)
    }


def _names_in(value: Any) -> set[str]:
    """``Fn::GetAtt`` targets ``<logical id>.Name`` anywhere in ``value``."""
    found = set()
    text = json.dumps(value)
    for part in text.split('"Fn::GetAtt": [')[1:]:
        logical, attr = json.loads("[" + part.split("]", 1)[0] + "]")
        found.add(f"{logical}.{attr}")
    return found


def test_rule_matches_status_changes_of_this_stacks_executions_only(synth: Synthesized) -> None:
    rule = _rule(synth)
    assert "EventBusName" not in rule and rule["State"] == "ENABLED"
    pattern = rule["EventPattern"]
    assert pattern["source"] == [recorder.SOURCE]
    assert pattern["detail-type"] == [recorder.DETAIL_TYPE]
    prefixes = pattern["detail"]["executionArn"]
    assert len(prefixes) == len(WORKFLOWS)
    for prefix in prefixes:
        (joined,) = prefix.values()
        assert list(prefix) == ["prefix"]
        parts = joined["Fn::Join"][1]
        # …:execution:<state machine name>: -- the trailing colon keeps a longer name
        # (another stack's, another workflow's) out.
        assert parts[-2] == {"Fn::GetAtt": [parts[-2]["Fn::GetAtt"][0], "Name"]}
        assert parts[-3].endswith(":execution:") and parts[-1] == ":"
    assert _names_in(prefixes) == _state_machine_name_refs(synth)


def test_target_retries_and_dead_letters_into_an_encrypted_queue(synth: Synthesized) -> None:
    (target,) = _rule(synth)["Targets"]
    fn_id, fn = _function(synth)
    (alias_id,) = [k for k in synth.of_type("AWS::Lambda::Alias") if k.startswith(c.STATUS_ID)]
    alias = synth.resources[alias_id]["Properties"]
    assert alias["FunctionName"] == {"Ref": fn_id} and alias["Name"] == c.STATE_MACHINE_ALIAS
    assert target["Arn"] == {"Ref": alias_id}  # the live alias, never $LATEST
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == c.STATUS_TARGET_RETRY_ATTEMPTS
    (queue_id,) = [k for k in synth.of_type("AWS::SQS::Queue") if k.startswith(c.STATUS_ID)]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    queue = synth.resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == c.STATUS_DLQ_RETENTION_DAYS * 86_400
    # Failed invocations (after Lambda's own retries) go to the same queue.
    assert fn["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    # Async-invoke settings are per qualifier: the alias's, and $LATEST's.
    configs = [c_["Properties"] for c_ in synth.of_type("AWS::Lambda::EventInvokeConfig").values()]
    assert len(configs) == 2
    assert {"$LATEST"} == {q for q in (cf["Qualifier"] for cf in configs) if isinstance(q, str)}
    assert f"{alias_id}" in json.dumps([cf["Qualifier"] for cf in configs])
    for config in configs:
        assert config["MaximumRetryAttempts"] == c.STATUS_FUNCTION_RETRY_ATTEMPTS
    # EventBridge may send to the queue (for this rule only) and invoke the function.
    policy = json.dumps([p["Properties"] for p in synth.of_type("AWS::SQS::QueuePolicy").values()])
    assert "events.amazonaws.com" in policy and "aws:SourceArn" in policy
    (permission,) = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": alias_id}
    ]
    assert permission["Principal"] == "events.amazonaws.com"


def test_function_runs_the_status_handler_from_the_node_runner_asset(synth: Synthesized) -> None:
    _, fn = _function(synth)
    assert fn["Architectures"] == ["arm64"] and fn["TracingConfig"] == {"Mode": "Active"}
    assert (fn["MemorySize"], fn["Timeout"]) == (
        c.STATUS_FUNCTION_MEMORY_MB,
        c.STATUS_FUNCTION_TIMEOUT_S,
    )
    _, runner = synth.function(c.NODE_RUNNER_HANDLER)
    assert fn["Code"] == runner["Code"]
    env = fn["Environment"]["Variables"]
    assert env[c.ENV_POWERTOOLS_SERVICE_NAME] == c.STATUS_SERVICE_NAME
    assert env[c.ENV_TABLE_NAME] == runner["Environment"]["Variables"][c.ENV_TABLE_NAME]
    rendered = json.dumps(env[c.ENV_STATE_MACHINES])
    for name in WORKFLOWS:
        assert f'\\"{name}\\":' in rendered, name
    assert c.ENV_WORKFLOW_MODULES not in env  # never imports user code
    log_group = fn["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.resources[log_group]["Properties"]["RetentionInDays"] == 30


def test_function_is_least_privilege(synth: Synthesized) -> None:
    statements = synth.role_statements(c.STATUS_HANDLER)
    actions = {a for st in statements for a in _as_list(st["Action"])}
    for action in actions:
        assert "*" not in action, action
    states = [
        st for st in statements if any(a.startswith("states:") for a in _as_list(st["Action"]))
    ]
    assert [_as_list(st["Action"]) for st in states] == [list(c.STATUS_EXECUTION_ACTIONS)]
    (describe,) = states
    resources = json.dumps(describe["Resource"])
    assert resources.count(":execution:") == len(WORKFLOWS) and "stateMachine" not in resources
    assert _names_in(describe["Resource"]) == _state_machine_name_refs(synth)
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        *c.TABLE_DATA_ACTIONS,
        *c.TABLE_UPDATE_ACTIONS,
    }
    assert {a for a in actions if a.startswith("sqs:")} == {"sqs:SendMessage"}  # its DLQ
    assert not any(a.startswith(("lambda:", "events:", "iam:")) for a in actions)
    for st in statements:
        if "*" in _as_list(st["Resource"]):
            assert all(a.startswith("xray:") for a in _as_list(st["Action"]))


def test_alarm_on_dead_letters_or_errors_notifies_the_topic(synth: Synthesized) -> None:
    name = c.alarm_name(c.STACK_ID, c.ALARM_STATUS_EVENTS)
    (alarm,) = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == name
    ]
    assert synth.stack.status is not None
    assert synth.stack.observability.alarms[name] is synth.stack.status.alarm
    topic = next(iter(synth.of_type("AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic}]
    assert alarm["Threshold"] == 1
    metrics = {m["Id"]: m for m in alarm["Metrics"] if "MetricStat" in m}
    assert metrics["dlq"]["MetricStat"]["Metric"]["MetricName"] == (
        "ApproximateNumberOfMessagesVisible"
    )
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "Errors"
    assert "docs/runbooks.md#statusevents" in alarm["AlarmDescription"]


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synthesized) -> None:
    assert synth.nag_findings() == []


def test_cfn_lint_is_clean(synth: Synthesized) -> None:
    assert lint_template(synth.template_path) == []

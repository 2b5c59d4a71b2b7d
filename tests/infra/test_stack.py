"""The synthesized StepdagStack: storage, functions, IAM, state machines, alarms, checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from infra import constants as c
from infra.constructs import alarms as kinds
from infra.lint import lint_template
from infra.workflows import load_workflows
from tests.infra.conftest import Synthesized

WORKFLOWS = {spec.name: spec for spec in load_workflows(c.WORKFLOWS_DIR)}


def _only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))


def _statements(synth: Synthesized) -> list[dict[str, Any]]:
    out = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- storage -------------------------------------------------------------------------------


def test_table_is_on_demand_encrypted_recoverable_with_ttl_and_gsis(synth: Synthesized) -> None:
    table = _only(synth.of_type("AWS::DynamoDB::Table"))["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": c.TABLE_TTL_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["KeySchema"] == [
        {"AttributeName": c.TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": c.TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    gsis = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert set(gsis) == {name for name, _, _ in c.TABLE_GSIS}
    for name, pk, sk in c.TABLE_GSIS:
        assert gsis[name]["KeySchema"] == [
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ]
        assert gsis[name]["Projection"] == {"ProjectionType": "ALL"}
    attributes = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert set(attributes.values()) == {"S"}


def test_buckets_are_encrypted_private_tls_only_with_lifecycle(synth: Synthesized) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    assert len(buckets) == 2  # outputs + server access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LifecycleConfiguration"]["Rules"]
        assert bucket["DeletionPolicy"] == "Retain"  # retainData defaults to true

    outputs = next(b for k, b in buckets.items() if k.startswith(c.STORAGE_ID + c.BUCKET_ID))[
        "Properties"
    ]
    assert outputs["LoggingConfiguration"]["DestinationBucketName"]
    (rule,) = outputs["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == c.DEFAULT_OUTPUT_RETENTION_DAYS
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}

    policies = synth.of_type("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [st for st in statements if st["Effect"] == "Deny"]
        assert any(
            st["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false" for st in denies
        ), "enforceSSL statement missing"
        assert any(
            "s3:TlsVersion" in st["Condition"].get("NumericLessThan", {}) for st in denies
        ), "minimum TLS version statement missing"


# --- functions -----------------------------------------------------------------------------


def _node_runners(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == c.NODE_RUNNER_HANDLER
    }


def test_one_node_runner_per_lambda_size(synth: Synthesized) -> None:
    placeholders = set().union(*(spec.placeholders for spec in WORKFLOWS.values()))
    functions = _node_runners(synth)
    assert len(functions) == len(placeholders) == 1  # the examples all use the default size
    assert set(synth.stack.node_runners.functions) == placeholders


def test_node_runner_runtime_architecture_tracing_env(synth: Synthesized) -> None:
    fn = _only(_node_runners(synth))["Properties"]
    assert fn["Runtime"] == f"python{c.LAMBDA_PYTHON_VERSION}"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == c.NODE_RUNNER_HANDLER
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["MemorySize"] == 512
    assert fn["Timeout"] == 900
    env = fn["Environment"]["Variables"]
    assert env[c.ENV_POWERTOOLS_SERVICE_NAME] == c.SERVICE_NAME
    assert env[c.ENV_POWERTOOLS_METRICS_NAMESPACE] == c.METRIC_NAMESPACE
    assert env[c.ENV_LOG_LEVEL] == "INFO"
    assert "Ref" in env[c.ENV_TABLE_NAME]
    assert "Ref" in env[c.ENV_BUCKET_NAME]
    # Table items live exactly as long as the S3 outputs they may point to.
    assert env[c.ENV_RETENTION_DAYS] == str(c.DEFAULT_OUTPUT_RETENTION_DAYS)
    assert json.loads(env[c.ENV_WORKFLOW_MODULES]) == {
        name: spec.ref for name, spec in WORKFLOWS.items()
    }
    # No managed policies: the role only has the inline least-privilege policy.
    lambda_roles = [
        r
        for r in synth.of_type("AWS::IAM::Role").values()
        if "lambda.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(lambda_roles) == 3  # the node runner's, the status recorder's, the API's
    assert all("ManagedPolicyArns" not in r["Properties"] for r in lambda_roles)


# --- IAM -----------------------------------------------------------------------------------

# Actions AWS documents as supporting no resource-level permissions (Resource "*").
RESOURCE_STAR_OK = re.compile(
    r"^(xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)"
    r"|logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery"
    r"|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups))$"
)


def test_iam_has_no_wildcard_actions_and_star_only_where_aws_requires(synth: Synthesized) -> None:
    statements = _statements(synth)
    assert statements
    for st in statements:
        assert st["Effect"] == "Allow"
        for action in _as_list(st["Action"]):
            assert "*" not in action, f"wildcard action {action!r}"
        if "*" in _as_list(st["Resource"]):
            bad = [a for a in _as_list(st["Action"]) if not RESOURCE_STAR_OK.match(a)]
            assert not bad, f"Resource '*' for {bad}"


def test_data_access_is_scoped_to_table_indexes_and_bucket_and_never_deletes(
    synth: Synthesized,
) -> None:
    table_id = next(iter(synth.of_type("AWS::DynamoDB::Table")))
    statements = _statements(synth)
    dynamo = [
        st for st in statements if any(a.startswith("dynamodb:") for a in _as_list(st["Action"]))
    ]
    resources = json.dumps([st["Resource"] for st in dynamo])
    assert table_id in resources
    for name, _, _ in c.TABLE_GSIS:
        assert f"/index/{name}" in resources
    assert "/index/*" not in resources
    actions = {a for st in dynamo for a in _as_list(st["Action"])}
    # No Scan, no table administration, no deletes (each role's exact set: test_iam_roles).
    assert actions == {*c.TABLE_DATA_ACTIONS, *c.TABLE_UPDATE_ACTIONS, *c.TABLE_INDEX_ACTIONS}
    s3_actions = {a for st in statements for a in _as_list(st["Action"]) if a.startswith("s3:")}
    assert s3_actions == set(c.BUCKET_OBJECT_ACTIONS) | set(c.BUCKET_ACTIONS)
    data = actions | s3_actions
    assert not {a for a in data if "Delete" in a or a.endswith("BatchWriteItem") or "Abort" in a}


# --- state machines ------------------------------------------------------------------------


def test_one_state_machine_per_workflow_with_every_placeholder_substituted(
    synth: Synthesized,
) -> None:
    machines = synth.of_type("AWS::StepFunctions::StateMachine")
    assert len(machines) == len(WORKFLOWS)
    versions = synth.of_type("AWS::Lambda::Version")
    by_name = {}
    for machine in machines.values():
        name = machine["Properties"]["StateMachineName"].removeprefix(f"{c.STACK_ID}-")
        by_name[name] = machine["Properties"]
    assert set(by_name) == set(WORKFLOWS)
    for name, props in by_name.items():
        spec = WORKFLOWS[name]
        # The deployed definition is the committed file, byte for byte.
        assert json.loads(props["DefinitionString"]) == spec.definition
        subs = props["DefinitionSubstitutions"]
        assert set(subs) == spec.placeholders
        for value in subs.values():
            assert value["Ref"] in versions  # pinned to a published Lambda version


def test_state_machines_log_and_trace(synth: Synthesized) -> None:
    for machine in synth.of_type("AWS::StepFunctions::StateMachine").values():
        props = machine["Properties"]
        assert props["StateMachineType"] == "STANDARD"
        assert props["TracingConfiguration"] == {"Enabled": True}
        logging = props["LoggingConfiguration"]
        assert logging["Level"] == "ALL"
        assert logging["IncludeExecutionData"] is False
        assert logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]


def test_each_workflow_has_a_retained_version_and_a_live_alias(synth: Synthesized) -> None:
    versions = synth.of_type("AWS::StepFunctions::StateMachineVersion")
    aliases = synth.of_type("AWS::StepFunctions::StateMachineAlias")
    assert len(versions) == len(aliases) == len(WORKFLOWS)
    for version in versions.values():
        assert version["UpdateReplacePolicy"] == "Retain"
        assert "StateMachineRevisionId" in version["Properties"]
    for alias in aliases.values():
        props = alias["Properties"]
        assert props["Name"] == c.STATE_MACHINE_ALIAS
        preference = props["DeploymentPreference"]
        assert preference["Type"] == "ALL_AT_ONCE"
        assert preference["StateMachineVersionArn"]["Fn::GetAtt"][0] in versions


# --- observability -------------------------------------------------------------------------


def test_alarms_cover_runs_nodes_functions_api_table_and_queues(synth: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }
    stack = c.STACK_ID
    expected = set()
    for name, spec in WORKFLOWS.items():
        expected.add(c.alarm_name(stack, c.ALARM_EXECUTIONS_FAILED, name))
        expected.add(c.alarm_name(stack, c.ALARM_EXECUTION_DURATION_P95, name))
        for node in spec.nodes:
            expected.add(c.alarm_name(stack, c.ALARM_NODE_ERROR_RATE, name, node))
    functions = [k.removesuffix("FunctionArn") for k in synth.stack.node_runners.functions]
    for name in [*functions, kinds.API_FUNCTION_NAME, kinds.STATUS_FUNCTION_NAME]:
        for kind in (
            c.ALARM_LAMBDA_THROTTLES,
            kinds.ALARM_LAMBDA_ERRORS,
            kinds.ALARM_LAMBDA_DURATION,
        ):
            expected.add(c.alarm_name(stack, kind, name))
    expected.add(c.alarm_name(stack, c.ALARM_STATUS_EVENTS))
    for kind in (
        kinds.ALARM_API_SERVER_ERRORS,
        kinds.ALARM_API_LATENCY_P99,
        kinds.ALARM_TABLE_THROTTLES,
        kinds.ALARM_TABLE_SYSTEM_ERRORS,
    ):
        expected.add(c.alarm_name(stack, kind))
    expected.add(c.alarm_name(stack, kinds.ALARM_DEAD_LETTERS, "WorkflowEtlTriggers"))
    assert set(alarms) == expected
    topic = next(iter(synth.of_type("AWS::SNS::Topic")))
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": topic}]
        assert props["OKActions"] == [{"Ref": topic}]
        assert props["TreatMissingData"] == "notBreaching"
        assert "docs/runbooks.md#" in props["AlarmDescription"]


def test_node_error_rate_reads_the_emf_metrics(synth: Synthesized) -> None:
    etl = WORKFLOWS["etl"]
    name = c.alarm_name(c.STACK_ID, c.ALARM_NODE_ERROR_RATE, "etl", etl.nodes[0])
    alarm = next(
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == name
    )
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["f"]["MetricStat"]["Metric"]["MetricName"] == c.METRIC_NODE_FAILED
    assert metrics["s"]["MetricStat"]["Metric"]["MetricName"] == c.METRIC_NODE_SUCCEEDED
    for metric_id in ("f", "s"):
        metric = metrics[metric_id]["MetricStat"]["Metric"]
        assert metric["Namespace"] == c.METRIC_NAMESPACE
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
            c.DIMENSION_SERVICE: c.SERVICE_NAME,
            c.DIMENSION_WORKFLOW: "etl",
            c.DIMENSION_NODE: etl.nodes[0],
        }
    assert alarm["Threshold"] == c.NODE_ERROR_RATE_THRESHOLD_PCT


def test_p95_duration_alarm(synth: Synthesized) -> None:
    name = c.alarm_name(c.STACK_ID, c.ALARM_EXECUTION_DURATION_P95, "etl")
    alarm = next(
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == name
    )
    (query,) = alarm["Metrics"]
    stat = query["MetricStat"]
    assert stat["Stat"] == "p95"
    assert stat["Metric"]["MetricName"] == "ExecutionTime"
    assert stat["Metric"]["Namespace"] == "AWS/States"
    assert alarm["Threshold"] == c.DEFAULT_P95_DURATION_SECONDS * 1000  # milliseconds


def test_alarm_topic_is_encrypted_and_dashboard_exists(synth: Synthesized) -> None:
    topic = _only(synth.of_type("AWS::SNS::Topic"))["Properties"]
    key_id = next(iter(synth.of_type("AWS::KMS::Key")))
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = _only(synth.of_type("AWS::KMS::Key"))["Properties"]
    assert key["EnableKeyRotation"] is True
    assert "cloudwatch.amazonaws.com" in json.dumps(key["KeyPolicy"])
    dashboard = _only(synth.of_type("AWS::CloudWatch::Dashboard"))["Properties"]
    assert dashboard["DashboardName"] == c.dashboard_name(c.STACK_ID)


# --- compliance ----------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synth: Synthesized) -> None:
    report = synth.nag_report()
    assert synth.nag_findings(report) == []
    assert report.success


def test_cfn_lint_is_clean(synth: Synthesized) -> None:
    assert lint_template(synth.template_path) == []


def test_every_alarm_kind_has_a_runbook() -> None:
    runbooks = (Path(__file__).resolve().parents[2] / "docs" / "runbooks.md").read_text()
    headings = {line.removeprefix("## ").strip() for line in runbooks.splitlines()}
    assert set(c.ALARM_KINDS) <= headings

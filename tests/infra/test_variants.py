"""Non-default settings on a generated workflow with two Lambda sizes, and stale ASL checks."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from infra.lint import lint_template
from infra.workflows import StaleDefinitionError, load_workflows
from stepdag import constants as contract
from stepdag.core.compile import compile_dag
from stepdag.core.loader import load_workflow
from tests.infra.conftest import Synthesized, synthesize
from tests.infra.test_alarms import alarms_without_runbook
from tests.infra.test_outputs import node_runner_log_groups, resolved

SIZED = textwrap.dedent(
    """
    from stepdag import Workflow

    wf = Workflow("sized_infra_test")


    @wf.node
    def small() -> int:
        return 1


    @wf.node(memory_mb=2048, lambda_timeout=120)
    def big(small: int) -> int:
        return small + 1
    """
)
BIG_KEY = "NodeRunner2048mb120sFunctionArn"


def _write_workflow(directory: Path, *, compile_asl: bool = True) -> Path:
    module = directory / "sized_infra_test_module.py"
    module.write_text(SIZED)
    if compile_asl:
        dag = load_workflow(f"{module}:wf").workflow.build()
        (directory / f"{dag.workflow}.asl.json").write_text(compile_dag(dag).to_json())
    return module


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    workflows = tmp_path_factory.mktemp("workflows")
    _write_workflow(workflows)
    context: dict[str, Any] = {
        c.CTX_WORKFLOWS_DIR: str(workflows),
        c.CTX_STACK_NAME: "StepdagVariant",
        c.CTX_SFN_TYPE: "EXPRESS",
        c.CTX_SFN_LOG_LEVEL: "ERROR",
        c.CTX_DEPLOYMENT_TYPE: "CANARY",
        c.CTX_DEPLOYMENT_PERCENTAGE: "20",
        c.CTX_DEPLOYMENT_INTERVAL: "10",
        c.CTX_RETAIN_DATA: "false",
        c.CTX_ALARM_EMAIL: "oncall@example.com",
    }
    yield synthesize(tmp_path_factory.mktemp("variant"), context)


def test_one_function_per_distinct_lambda_size(variant: Synthesized) -> None:
    functions = sorted(
        (f["Properties"]["MemorySize"], f["Properties"]["Timeout"])
        for f in variant.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == c.NODE_RUNNER_HANDLER
    )
    assert functions == [(512, 900), (2048, 120)]
    (machine,) = variant.of_type("AWS::StepFunctions::StateMachine").values()
    subs = machine["Properties"]["DefinitionSubstitutions"]
    assert set(subs) == {"NodeRunnerFunctionArn", BIG_KEY}
    assert subs["NodeRunnerFunctionArn"] != subs[BIG_KEY]
    throttles = [
        a["Properties"]["AlarmName"]
        for a in variant.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith(c.ALARM_LAMBDA_THROTTLES)
    ]
    assert len(throttles) == 3  # both node runners and the API (EXPRESS: no status recorder)


def test_express_error_logging_and_canary_rollout(variant: Synthesized) -> None:
    (machine,) = variant.of_type("AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineType"] == "EXPRESS"
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ERROR"
    (alias,) = variant.of_type("AWS::StepFunctions::StateMachineAlias").values()
    preference = alias["Properties"]["DeploymentPreference"]
    assert preference["Type"] == "CANARY"
    assert preference["Percentage"] == 20
    assert preference["Interval"] == 10
    failed = c.alarm_name("StepdagVariant", c.ALARM_EXECUTIONS_FAILED, "sized_infra_test")
    assert preference["Alarms"] == [failed]
    alarm_ids = {
        k
        for k, a in variant.of_type("AWS::CloudWatch::Alarm").items()
        if a["Properties"]["AlarmName"] == failed
    }
    assert set(alias["DependsOn"]) == alarm_ids  # the alarm exists before the alias shifts
    p95 = c.alarm_name("StepdagVariant", c.ALARM_EXECUTION_DURATION_P95, "sized_infra_test")
    variant.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": p95, "Threshold": c.DEFAULT_EXPRESS_P95_DURATION_SECONDS * 1000},
    )


def test_retain_data_false_lets_the_data_go(variant: Synthesized) -> None:
    (table,) = variant.of_type("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    variant.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def test_variant_alarms_each_link_a_runbook_section(variant: Synthesized) -> None:
    assert alarms_without_runbook(variant) == {}


def test_variant_passes_cdk_nag_and_cfn_lint(variant: Synthesized) -> None:
    assert variant.nag_findings() == []
    assert lint_template(variant.template_path) == []


# --- committed ASL checks (no CDK) ---------------------------------------------------------


def test_missing_asl_fails_synth(tmp_path: Path) -> None:
    _write_workflow(tmp_path, compile_asl=False)
    with pytest.raises(StaleDefinitionError, match="missing: run `stepdag compile`"):
        load_workflows(tmp_path)


def test_stale_asl_fails_synth(tmp_path: Path) -> None:
    _write_workflow(tmp_path)
    asl = tmp_path / "sized_infra_test.asl.json"
    definition = json.loads(asl.read_text())
    definition["Comment"] = "edited by hand"
    asl.write_text(json.dumps(definition))
    with pytest.raises(StaleDefinitionError, match="is stale"):
        load_workflows(tmp_path)


def test_committed_examples_are_loaded_with_their_placeholders() -> None:
    specs = {spec.name: spec for spec in load_workflows(c.WORKFLOWS_DIR)}
    assert {"etl", "documents", "features"} <= set(specs)
    for spec in specs.values():
        assert spec.placeholders == {"NodeRunnerFunctionArn"}
        assert spec.asl_path.read_text() == spec.definition_text


def test_node_log_groups_output_has_one_group_per_lambda_size(variant: Synthesized) -> None:
    groups = json.loads(resolved(variant, contract.OUTPUT_NODE_LOG_GROUPS))
    assert groups == node_runner_log_groups(variant)
    assert sorted(groups) == ["NodeRunner", BIG_KEY.removesuffix("FunctionArn")]
    assert len(set(groups.values())) == 2

"""The stack outputs `stepdag --stack NAME` reads, and the CLI reading them back.

``WorkflowStateMachines`` and ``NodeLogGroups`` are JSON (keys: ``stepdag.constants``), so
the CLI parses them instead of matching a description or a logical id.  The round trip
resolves the synthesized outputs as CloudFormation would (``tests/support/cfn.Resolver``),
deploys them as the outputs of a stack in moto's CloudFormation and points the CLI's
discovery at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import constants as c
from infra.constructs.functions import function_id
from infra.workflows import load_workflows
from stepdag import constants as contract
from stepdag.cli.remote import stack_config
from tests.infra.conftest import Synthesized
from tests.support.cfn import Resolver

REGION = "eu-west-1"
ACCOUNT = "123456789012"
WORKFLOWS = sorted(spec.name for spec in load_workflows(c.WORKFLOWS_DIR))


def machine_arn(synth: Synthesized, workflow: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{synth.stack.stack_name}-{workflow}"


def resolver(synth: Synthesized) -> Resolver:
    """What CloudFormation would answer for every Ref the outputs use."""
    resolve = Resolver(REGION, ACCOUNT)
    stack = synth.stack
    for name, workflow in stack.workflows.items():
        machine = stack.get_logical_id(workflow.state_machine.node.default_child)  # type: ignore[arg-type]
        resolve.refs[machine] = machine_arn(synth, name)
        # Ref of AWS::StepFunctions::StateMachineAlias is the alias ARN.
        alias = f"{machine_arn(synth, name)}:{c.STATE_MACHINE_ALIAS}"
        resolve.refs[stack.get_logical_id(workflow.alias)] = alias
    for logical in synth.of_type("AWS::Logs::LogGroup"):
        resolve.refs[logical] = f"/aws/lambda/{logical}"
    for logical in synth.of_type("AWS::DynamoDB::Table"):
        resolve.refs[logical] = "stepdag-table"
    for logical in synth.of_type("AWS::S3::Bucket"):
        resolve.refs[logical] = f"bucket-{logical.lower()}"
    for logical in synth.of_type("AWS::SNS::Topic"):
        resolve.refs[logical] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical}"
    # The REST API is in the default synth: its URL output refers to the API and its stage.
    for logical in synth.of_type("AWS::ApiGateway::RestApi"):
        resolve.refs[logical] = logical.lower()[:10]
    for logical, stage in synth.of_type("AWS::ApiGateway::Stage").items():
        resolve.refs[logical] = stage["Properties"]["StageName"]
    return resolve


def outputs(synth: Synthesized) -> dict[str, Any]:
    found: dict[str, Any] = synth.template.to_json()["Outputs"]
    return found


def resolved(synth: Synthesized, key: str) -> str:
    value = resolver(synth)(outputs(synth)[key]["Value"])
    assert isinstance(value, str), value
    return value


def node_runner_log_groups(synth: Synthesized) -> dict[str, str]:
    """{function id: resolved log group name} from the node-runner functions themselves."""
    resolve = resolver(synth)
    found = {}
    for logical, fn in synth.of_type("AWS::Lambda::Function").items():
        props = fn["Properties"]
        if props["Handler"] == c.NODE_RUNNER_HANDLER:
            found[logical] = resolve(props["LoggingConfig"]["LogGroup"])
    by_id = {}
    for key, fn in synth.stack.node_runners.functions.items():
        by_id[function_id(key)] = found[synth.stack.get_logical_id(fn.node.default_child)]  # type: ignore[arg-type]
    assert sorted(by_id.values()) == sorted(found.values())  # every node runner, once
    return by_id


def test_state_machines_output_maps_every_workflow_to_its_machine_and_live_alias(
    synth: Synthesized,
) -> None:
    machines = json.loads(resolved(synth, contract.OUTPUT_STATE_MACHINES))
    assert machines == {
        name: {
            contract.STATE_MACHINE_ARN_KEY: machine_arn(synth, name),
            contract.ALIAS_ARN_KEY: f"{machine_arn(synth, name)}:{c.STATE_MACHINE_ALIAS}",
        }
        for name in WORKFLOWS
    }
    # The alias value is the alias resource itself (Ref), like WorkflowEtlAliasArn: the
    # output only resolves once the alias exists.
    raw = json.dumps(outputs(synth)[contract.OUTPUT_STATE_MACHINES]["Value"])
    for workflow in synth.stack.workflows.values():
        assert json.dumps({"Ref": synth.stack.get_logical_id(workflow.alias)}) in raw


def test_node_log_groups_output_names_the_node_runners_log_groups(synth: Synthesized) -> None:
    groups = json.loads(resolved(synth, contract.OUTPUT_NODE_LOG_GROUPS))
    assert groups == node_runner_log_groups(synth)
    assert list(groups) == ["NodeRunner"]  # the examples use one Lambda size
    # Not the API's or the status recorder's: `stepdag logs` reads node logs.
    status = synth.function(c.STATUS_HANDLER)[1]["LoggingConfig"]["LogGroup"]
    assert resolver(synth)(status) not in groups.values()


def test_outputs_keep_the_existing_per_workflow_keys(synth: Synthesized) -> None:
    # Added next to them, not instead: docs/runbooks.md and scripts query these keys.
    keys = set(outputs(synth))
    for prefix in ("WorkflowEtl", "WorkflowFeatures", "WorkflowDocuments"):
        assert {f"{prefix}AliasArn", f"{prefix}StateMachineArn"} <= keys
    assert {c.OUTPUT_TABLE_NAME, c.OUTPUT_BUCKET_NAME, c.OUTPUT_WORKFLOW_MODULES} <= keys


# -- the CLI reads them back ---------------------------------------------------------------


@pytest.fixture()
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    moto = pytest.importorskip("moto")
    import boto3

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def test_the_cli_discovers_the_deployment_from_the_outputs(
    synth: Synthesized, cloudformation: Any
) -> None:
    resolve = resolver(synth)
    template = {
        # moto needs a resource; the outputs are the synthesized ones, every one resolved.
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": resolve(v["Value"])} for k, v in outputs(synth).items()},
    }
    cloudformation.create_stack(StackName="Stepdag", TemplateBody=json.dumps(template))

    config = stack_config("Stepdag", region=REGION)
    assert config.table == "stepdag-table"
    assert config.bucket == resolved(synth, c.OUTPUT_BUCKET_NAME)
    assert config.state_machines == {
        name: f"{machine_arn(synth, name)}:{c.STATE_MACHINE_ALIAS}" for name in WORKFLOWS
    }
    assert config.log_groups == tuple(sorted(node_runner_log_groups(synth).values()))
    assert config.region == REGION

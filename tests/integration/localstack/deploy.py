"""Create one workflow's CDK-generated resources in LocalStack, from the synthesized template.

Every property comes from the template (``Resolver`` fills in what LocalStack named);
the only stand-in is the node runner: LocalStack cannot run Lambda, so the definition's
``${NodeRunnerFunctionArn}`` becomes an activity ARN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.cfn import Resolver, create_queue, definition, only


@dataclass
class Workflow:
    name: str
    state_machine_arn: str
    alias_arn: str
    activity_arn: str


def create_role(
    ls: Any, resources: dict[str, Any], resolve: Resolver, role_id: str, *, policies: bool = True
) -> str:
    """The template's role with its trust policy and (``policies``) its inline policies."""
    props = resources[role_id]["Properties"]
    iam = ls.client("iam")
    arn: str = iam.create_role(
        RoleName=role_id[:64],
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
    )["Role"]["Arn"]
    resolve.refs[role_id] = role_id[:64]
    resolve.attrs[(role_id, "Arn")] = arn
    for policy_id, policy in resources.items():
        if (
            policies
            and policy["Type"] == "AWS::IAM::Policy"
            and {"Ref": role_id} in policy["Properties"]["Roles"]
        ):
            iam.put_role_policy(
                RoleName=role_id[:64],
                PolicyName=policy_id[:128],
                PolicyDocument=json.dumps(resolve(policy["Properties"]["PolicyDocument"])),
            )
    return arn


def role_of(arn_value: Any) -> str:
    """``{"Fn::GetAtt": [RoleId, "Arn"]}`` -> ``RoleId``."""
    logical: str = arn_value["Fn::GetAtt"][0]
    return logical


def deploy_workflow(ls: Any, resources: dict[str, Any], resolve: Resolver, prefix: str) -> Workflow:
    """State machine, published version and ``live`` alias of ``Workflow<Name>``."""
    sfn = ls.client("stepfunctions")
    sm_id, sm = only(resources, "AWS::StepFunctions::StateMachine", prefix)
    activity = sfn.create_activity(name=f"{sm['StateMachineName']}-node-runner")["activityArn"]
    # Its policies name the node-runner Lambda, log group and X-Ray, absent here (and
    # LocalStack does not enforce IAM): the trust policy is created, not the grants.
    role = create_role(ls, resources, resolve, role_of(sm["RoleArn"]), policies=False)
    created = sfn.create_state_machine(
        name=sm["StateMachineName"],
        definition=definition(sm, dict.fromkeys(sm.get("DefinitionSubstitutions", {}), activity)),
        roleArn=role,
        type=sm["StateMachineType"],
        publish=True,
    )
    resolve.refs[sm_id] = created["stateMachineArn"]
    resolve.attrs[(sm_id, "Name")] = sm["StateMachineName"]
    version_id, _ = only(resources, "AWS::StepFunctions::StateMachineVersion", prefix)
    resolve.refs[version_id] = resolve.attrs[(version_id, "Arn")] = created[
        "stateMachineVersionArn"
    ]
    alias_id, alias = only(resources, "AWS::StepFunctions::StateMachineAlias", prefix)
    preference = alias["DeploymentPreference"]
    assert preference["Type"] == "ALL_AT_ONCE", preference  # all runs on the new version
    alias_arn = sfn.create_state_machine_alias(
        name=alias["Name"],
        description=alias["Description"],
        routingConfiguration=[
            {"stateMachineVersionArn": resolve(preference["StateMachineVersionArn"]), "weight": 100}
        ],
    )["stateMachineAliasArn"]
    resolve.refs[alias_id] = alias_arn
    return Workflow(sm["StateMachineName"], created["stateMachineArn"], alias_arn, activity)


def deploy_rules(
    ls: Any, resources: dict[str, Any], resolve: Resolver, prefix: str, *, name_suffix: str = ""
) -> list[str]:
    """Every EventBridge rule of ``<prefix>Triggers`` with its targets, as synthesized.

    ``name_suffix`` deploys a twin (same pattern, target and transformer) under another
    name: one event then reaches the target twice with the same id, as a redelivery does.
    """
    events = ls.client("events")
    names = []
    for template_id, rule in resources.items():
        if rule["Type"] != "AWS::Events::Rule" or not template_id.startswith(prefix):
            continue
        rule_id = template_id + name_suffix
        props = rule["Properties"]
        events.put_rule(
            Name=rule_id,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props["State"],
            Description=props["Description"],
        )
        targets = []
        for target in props["Targets"]:
            role_id = role_of(target["RoleArn"])
            if (role_id, "Arn") not in resolve.attrs:
                create_role(ls, resources, resolve, role_id)
            if "DeadLetterConfig" in target:  # {"Arn": {"Fn::GetAtt": [QueueId, "Arn"]}}
                queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
                if (queue_id, "Arn") not in resolve.attrs:
                    create_queue(ls.client("sqs"), resources, resolve, queue_id)
            targets.append(resolve(target))
        failed = events.put_targets(Rule=rule_id, Targets=targets)["FailedEntryCount"]
        assert failed == 0
        names.append(rule_id)
    return names


def deploy_hook(
    ls: Any, resources: dict[str, Any], resolve: Resolver, workflow: str, stage: str
) -> str:
    """The REST API with only ``/v1/hooks/<workflow>`` and ``/v1/hooks/<workflow>/events``.

    Returns the stage's invoke URL; the stage's logical id resolves to its name (the
    rules' API Gateway target ARN names it).
    """
    apigw = ls.client("apigateway")
    api_id, api = only(resources, "AWS::ApiGateway::RestApi")
    rest_api = apigw.create_rest_api(name=api["Name"], description=api["Description"])["id"]
    resolve.refs[api_id] = rest_api
    root = apigw.get_resources(restApiId=rest_api)["items"][0]["id"]
    resolve.attrs[(api_id, "RootResourceId")] = root
    for model_id, model in _of_type(resources, "AWS::ApiGateway::Model"):
        props = model["Properties"]
        apigw.create_model(
            restApiId=rest_api,
            name=model_id,
            contentType=props["ContentType"],
            schema=json.dumps(props["Schema"]),
        )
        resolve.refs[model_id] = model_id
    for validator_id, validator in _of_type(resources, "AWS::ApiGateway::RequestValidator"):
        props = validator["Properties"]
        resolve.refs[validator_id] = apigw.create_request_validator(
            restApiId=rest_api,
            name=validator_id,
            validateRequestBody=props["ValidateRequestBody"],
            validateRequestParameters=props["ValidateRequestParameters"],
        )["id"]
    for method_id in (_hook_method(resources, workflow)[0], _events_method(resources, workflow)):
        _put_method(ls, resources, resolve, rest_api, method_id)
    apigw.create_deployment(restApiId=rest_api, stageName=stage)
    (stage_id, _) = only(resources, "AWS::ApiGateway::Stage")
    resolve.refs[stage_id] = stage
    return f"{ls.endpoint}/_aws/execute-api/{rest_api}/{stage}"


def _put_method(
    ls: Any, resources: dict[str, Any], resolve: Resolver, rest_api: str, method_id: str
) -> None:
    """One method of the template with its path, integration and responses."""
    apigw = ls.client("apigateway")
    method = resources[method_id]
    resource_id = method["Properties"]["ResourceId"]["Ref"]
    if resource_id not in resolve.refs:
        _create_path(apigw, resources, resolve, rest_api, resource_id)
    role_id = role_of(method["Properties"]["Integration"]["Credentials"])
    if (role_id, "Arn") not in resolve.attrs:
        create_role(ls, resources, resolve, role_id)
    props = resolve(method["Properties"])
    integration = props["Integration"]
    apigw.put_method(
        restApiId=rest_api,
        resourceId=props["ResourceId"],
        httpMethod=props["HttpMethod"],
        authorizationType=props["AuthorizationType"],
        requestValidatorId=props["RequestValidatorId"],
        requestModels=props["RequestModels"],
        requestParameters=props.get("RequestParameters", {}),
    )
    apigw.put_integration(
        restApiId=rest_api,
        resourceId=props["ResourceId"],
        httpMethod=props["HttpMethod"],
        type=integration["Type"],
        integrationHttpMethod=integration["IntegrationHttpMethod"],
        uri=integration["Uri"],
        credentials=integration["Credentials"],
        passthroughBehavior=integration["PassthroughBehavior"],
        requestTemplates=integration["RequestTemplates"],
    )
    for response in props["MethodResponses"]:
        apigw.put_method_response(
            restApiId=rest_api,
            resourceId=props["ResourceId"],
            httpMethod=props["HttpMethod"],
            statusCode=response["StatusCode"],
            responseParameters=response.get("ResponseParameters", {}),
        )
    for response in integration["IntegrationResponses"]:
        extra = (
            {"selectionPattern": response["SelectionPattern"]}
            if "SelectionPattern" in (response)
            else {}
        )
        apigw.put_integration_response(
            restApiId=rest_api,
            resourceId=props["ResourceId"],
            httpMethod=props["HttpMethod"],
            statusCode=response["StatusCode"],
            responseParameters=response.get("ResponseParameters", {}),
            responseTemplates=response["ResponseTemplates"],
            **extra,
        )


def _of_type(resources: dict[str, Any], type_: str) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in resources.items() if v["Type"] == type_]


def _hook_method(resources: dict[str, Any], workflow: str) -> tuple[str, Any]:
    """The POST method whose resource's path part is ``workflow`` under ``hooks``."""
    for method_id, method in _of_type(resources, "AWS::ApiGateway::Method"):
        resource = resources[method["Properties"]["ResourceId"]["Ref"]]["Properties"]
        parent = resource["ParentId"]
        if (
            resource["PathPart"] == workflow
            and "Ref" in parent
            and resources[parent["Ref"]]["Properties"]["PathPart"] == "hooks"
        ):
            return method_id, method
    raise AssertionError(f"no POST /v1/hooks/{workflow} method in the template")


def _events_method(resources: dict[str, Any], workflow: str) -> str:
    """The POST method on ``hooks/<workflow>/events``."""
    for method_id, method in _of_type(resources, "AWS::ApiGateway::Method"):
        resource = resources[method["Properties"]["ResourceId"]["Ref"]]["Properties"]
        parent = resource["ParentId"]
        if (
            resource["PathPart"] == "events"
            and "Ref" in parent
            and resources[parent["Ref"]]["Properties"]["PathPart"] == workflow
        ):
            return method_id
    raise AssertionError(f"no POST /v1/hooks/{workflow}/events method in the template")


def _create_path(
    apigw: Any, resources: dict[str, Any], resolve: Resolver, rest_api: str, resource_id: str
) -> None:
    """Create ``resource_id`` and its parents (root first), as the template nests them."""
    props = resources[resource_id]["Properties"]
    parent = props["ParentId"]
    if "Ref" in parent and parent["Ref"] not in resolve.refs:
        _create_path(apigw, resources, resolve, rest_api, parent["Ref"])
    resolve.refs[resource_id] = apigw.create_resource(
        restApiId=rest_api, parentId=resolve(parent), pathPart=props["PathPart"]
    )["id"]

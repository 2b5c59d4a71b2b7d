"""The REST API (in the default synth): auth, throttling, compression, logs, least privilege."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from infra.constructs.hooks import EVENTS_PATH
from infra.lint import lint_template
from infra.stack import workflow_construct_id
from infra.workflows import load_workflows
from tests.infra.conftest import Synthesized, synthesize

WORKFLOWS = {spec.name: spec for spec in load_workflows(c.WORKFLOWS_DIR)}
USER_POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-api"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _api_function(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, v["Properties"])
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == c.API_HANDLER
    ]
    return found


def _api_statements(synth: Synthesized) -> list[dict[str, Any]]:
    _, fn = _api_function(synth)
    role = fn["Role"]["Fn::GetAtt"][0]
    out = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def test_api_is_in_the_default_synth_and_can_be_left_out(
    synth: Synthesized, tmp_path: Path
) -> None:
    assert synth.stack.api is not None
    assert len(synth.of_type("AWS::ApiGateway::RestApi")) == 1
    assert c.OUTPUT_API_URL in synth.template.to_json()["Outputs"]
    plain = synthesize(tmp_path, {c.CTX_API_ENABLED: "false"})
    assert plain.stack.api is None
    assert not plain.of_type("AWS::ApiGateway::RestApi")
    assert not plain.of_type("AWS::ApiGateway::Account")


LIVE = f"/{c.API_ROUTE_PREFIX}/{c.API_HEALTH_PATH}/{c.API_LIVE_PATH}"
LAMBDA_PATHS = {c.API_ROUTE_PREFIX, "{proxy+}", c.API_HEALTH_PATH, c.API_LIVE_PATH}


def test_every_method_but_liveness_requires_iam(synth: Synthesized) -> None:
    methods = synth.methods()
    assert methods
    assert synth.open_methods() == [(LIVE, "GET")]
    for key, method in methods.items():
        if key != (LIVE, "GET"):
            assert method["AuthorizationType"] == "AWS_IAM", key
    # /v1/health and the rest under it (ready) keep IAM: API Gateway would not fall back
    # from the health resource to /v1/{proxy+}.
    health = f"/{c.API_ROUTE_PREFIX}/{c.API_HEALTH_PATH}"
    for key in ((health, "ANY"), (f"{health}/{{proxy+}}", "ANY"), ("/v1/{proxy+}", "ANY")):
        assert methods[key]["AuthorizationType"] == "AWS_IAM", key
    paths = {
        r["Properties"]["PathPart"] for r in synth.of_type("AWS::ApiGateway::Resource").values()
    }
    # The Lambda API's proxy and health resources, and the webhook routes (one per
    # workflow, each with its /events route for EventBridge rules).
    assert paths == {*LAMBDA_PATHS, c.HOOKS_PATH, *WORKFLOWS, EVENTS_PATH}
    proxied = [m for m in methods.values() if m["HttpMethod"] == "ANY"]
    assert proxied and all(m["Integration"]["Type"] == "AWS_PROXY" for m in proxied)


def test_liveness_proxies_to_the_api_alias_like_every_lambda_route(synth: Synthesized) -> None:
    methods = synth.methods()
    live = methods[(LIVE, "GET")]
    assert "AuthorizerId" not in live
    assert live["Integration"]["Type"] == "AWS_PROXY"
    assert live["Integration"]["Uri"] == methods[("/v1/{proxy+}", "ANY")]["Integration"]["Uri"]
    # GET only: another verb on /v1/health/live is the gateway's 403, never unauthenticated.
    assert [k for k in methods if k[0] == LIVE] == [(LIVE, "GET")]


def test_stage_throttles_traces_and_logs(synth: Synthesized) -> None:
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == c.API_STAGE_NAME
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]
    assert "requestId" in props["AccessLogSetting"]["Format"]
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == c.API_THROTTLE_RATE_LIMIT
    assert settings["ThrottlingBurstLimit"] == c.API_THROTTLE_BURST_LIMIT
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False


def test_responses_are_compressed(synth: Synthesized) -> None:
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["MinimumCompressionSize"] == c.API_MIN_COMPRESSION_BYTES


def test_api_function_env_and_runtime(synth: Synthesized) -> None:
    _, fn = _api_function(synth)
    assert fn["Architectures"] == ["arm64"]
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Timeout"] == c.API_FUNCTION_TIMEOUT_S
    env = fn["Environment"]["Variables"]
    assert env[c.ENV_POWERTOOLS_SERVICE_NAME] == c.API_SERVICE_NAME
    assert "Ref" in env[c.ENV_TABLE_NAME] and "Ref" in env[c.ENV_BUCKET_NAME]
    assert json.loads(env[c.ENV_WORKFLOW_MODULES]) == {n: s.ref for n, s in WORKFLOWS.items()}
    # {workflow: <state machine ARN>:live}, joined by CloudFormation.
    rendered = json.dumps(env[c.ENV_STATE_MACHINES])
    for name in WORKFLOWS:
        assert f'\\"{name}\\":' in rendered, name
    assert rendered.count(f'"{c.STATE_MACHINE_ALIAS}"') == len(WORKFLOWS)
    # The same code asset as the node runners.
    runner = next(
        v["Properties"]
        for v in synth.of_type("AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] == c.NODE_RUNNER_HANDLER
    )
    assert fn["Code"] == runner["Code"]


def test_api_function_is_least_privilege(synth: Synthesized) -> None:
    statements = _api_statements(synth)
    actions = {a for st in statements for a in _as_list(st["Action"])}
    for action in actions:
        assert "*" not in action, action
    states = [
        st for st in statements if any(a.startswith("states:") for a in _as_list(st["Action"]))
    ]
    by_action = {tuple(sorted(_as_list(st["Action"]))): st["Resource"] for st in states}
    start = json.dumps(by_action[c.API_START_ACTIONS])
    assert start.count(f'"{c.STATE_MACHINE_ALIAS}"') == len(WORKFLOWS)  # the aliases only
    executions = json.dumps(by_action[tuple(sorted(c.API_EXECUTION_ACTIONS))])
    assert executions.count(":execution:") == len(WORKFLOWS)
    assert "stateMachine" not in executions
    assert not any(
        a.startswith("states:")
        for a in actions - set(c.API_START_ACTIONS) - set(c.API_EXECUTION_ACTIONS)
    )
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        *c.TABLE_DATA_ACTIONS,
        *c.TABLE_UPDATE_ACTIONS,
        *c.TABLE_INDEX_ACTIONS,
    }
    for st in statements:
        if "*" in _as_list(st["Resource"]):
            assert all(a.startswith("xray:") for a in _as_list(st["Action"]))


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synthesized) -> None:
    assert synth.nag_findings() == []


def test_cfn_lint_is_clean(synth: Synthesized) -> None:
    assert lint_template(synth.template_path) == []


def test_cognito_authorizer_replaces_iam_when_configured(tmp_path: Path) -> None:
    cognito = synthesize(tmp_path, {c.CTX_API_ENABLED: "true", c.CTX_API_USER_POOL_ARN: USER_POOL})
    (authorizer,) = cognito.of_type("AWS::ApiGateway::Authorizer").values()
    assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["Properties"]["ProviderARNs"] == [USER_POOL]
    assert cognito.open_methods() == [(LIVE, "GET")]
    for key, method in cognito.methods().items():
        if key != (LIVE, "GET"):
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", key
            assert "AuthorizerId" in method, key
    # No webhook routes: the gateway could not check the token's roles or tenant.
    assert cognito.stack.api is not None and cognito.stack.api.hooks is None
    paths = {
        r["Properties"]["PathPart"] for r in cognito.of_type("AWS::ApiGateway::Resource").values()
    }
    assert paths == LAMBDA_PATHS
    # So the etl rule keeps its direct Step Functions target (no event-id names there).
    (rule,) = cognito.stack.triggers["etl"].rules.values()
    (target,) = cognito.template.to_json()["Resources"][
        cognito.stack.resolve(rule.node.default_child.logical_id)  # type: ignore[union-attr]
    ]["Properties"]["Targets"]
    assert ":execute-api:" not in json.dumps(target["Arn"])
    assert c.STATE_MACHINE_ALIAS in json.dumps(target["Arn"])
    assert cognito.stack.triggers["etl"].events_role is None
    assert cognito.nag_findings() == []


# ------------------------------------------------------------------ webhook routes


def _hook_methods(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """``{workflow: POST method properties}`` for the methods under ``/v1/hooks``."""
    resources = synth.resources
    out = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = resources[props["ResourceId"]["Ref"]]["Properties"]
        parent = (
            resources[resource["ParentId"]["Ref"]]["Properties"]
            if "Ref" in (resource["ParentId"])
            else {}
        )
        if parent.get("PathPart") == c.HOOKS_PATH:
            out[resource["PathPart"]] = props
    return out


def _event_methods(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """``{workflow: POST method properties}`` for ``/v1/hooks/<workflow>/events``."""
    resources = synth.resources
    out = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = resources[props["ResourceId"]["Ref"]]["Properties"]
        if resource["PathPart"] != EVENTS_PATH or "Ref" not in resource["ParentId"]:
            continue
        workflow = resources[resource["ParentId"]["Ref"]]["Properties"]
        hooks = resources[workflow["ParentId"]["Ref"]]["Properties"]
        assert hooks["PathPart"] == c.HOOKS_PATH
        out[workflow["PathPart"]] = props
    return out


def _all_start_methods(synth: Synthesized) -> list[dict[str, Any]]:
    return [*_hook_methods(synth).values(), *_event_methods(synth).values()]


def _model_id(synth: Synthesized, title: str) -> str:
    (found,) = [
        k
        for k, v in synth.of_type("AWS::ApiGateway::Model").items()
        if v["Properties"]["Schema"]["title"] == title
    ]
    return found


def test_one_hook_per_workflow_starts_its_live_alias_directly(synth: Synthesized) -> None:
    hooks = _hook_methods(synth)
    assert set(hooks) == set(WORKFLOWS)
    for name, props in hooks.items():
        assert props["HttpMethod"] == "POST"
        assert props["AuthorizationType"] == "AWS_IAM"
        integration = props["Integration"]
        assert integration["Type"] == "AWS"  # a service integration: no Lambda in the path
        assert integration["IntegrationHttpMethod"] == "POST"
        assert integration["Uri"]["Fn::Join"][1][-1] == ":states:action/StartExecution"
        assert integration["PassthroughBehavior"] == "NEVER"
        (template,) = integration["RequestTemplates"].values()
        parts = template["Fn::Join"][1]
        machine = next(
            k
            for k in synth.of_type("AWS::StepFunctions::StateMachine")
            if k.startswith(workflow_construct_id(name))
        )
        # The stateMachineArn is this workflow's alias and nothing else.
        assert {"Fn::Join": [":", [{"Ref": machine}, c.STATE_MACHINE_ALIAS]]} in parts
        text = "".join(p for p in parts if isinstance(p, str))
        assert f"header.get('{c.HOOKS_KEY_HEADER}')" in text
        assert "$context.requestId" in text  # the name when no key is sent
        assert """"input": "$util.escapeJavaScript($input.json('$'))""" in text
        assert props["RequestParameters"] == {f"method.request.header.{c.HOOKS_KEY_HEADER}": False}


def test_one_events_route_per_workflow_names_the_run_after_the_envelope_key(
    synth: Synthesized,
) -> None:
    routes = _event_methods(synth)
    assert set(routes) == set(WORKFLOWS)
    for name, props in routes.items():
        assert props["HttpMethod"] == "POST"
        assert props["AuthorizationType"] == "AWS_IAM"
        assert "RequestParameters" not in props  # no header: the key is in the body
        integration = props["Integration"]
        assert integration["Type"] == "AWS"
        assert integration["Uri"]["Fn::Join"][1][-1] == ":states:action/StartExecution"
        assert integration["PassthroughBehavior"] == "NEVER"
        (template,) = integration["RequestTemplates"].values()
        parts = template["Fn::Join"][1]
        machine = next(
            k
            for k in synth.of_type("AWS::StepFunctions::StateMachine")
            if k.startswith(workflow_construct_id(name))
        )
        assert {"Fn::Join": [":", [{"Ref": machine}, c.STATE_MACHINE_ALIAS]]} in parts
        text = "".join(p for p in parts if isinstance(p, str))
        assert """#set($key = "$!input.path('$.key')")""" in text
        assert '"name": "$util.escapeJavaScript($key)"' in text
        assert """"input": "$util.escapeJavaScript($input.json('$.input'))""" in text
        assert "header" not in text and "$context.requestId" not in text


def test_hook_bodies_are_validated_as_json_objects(synth: Synthesized) -> None:
    assert len(synth.of_type("AWS::ApiGateway::Model")) == 2
    hook_model, envelope_model = _model_id(synth, "HookBody"), _model_id(synth, "EventEnvelope")
    assert synth.resources[hook_model]["Properties"]["Schema"]["type"] == "object"
    envelope = synth.resources[envelope_model]["Properties"]["Schema"]
    assert envelope["type"] == "object"
    assert envelope["required"] == ["key", "input"]
    assert envelope["additionalProperties"] is False
    assert envelope["properties"] == {
        "key": {"type": "string", "minLength": 1, "maxLength": 80},
        "input": {"type": "object"},
    }
    (validator_id,) = synth.of_type("AWS::ApiGateway::RequestValidator")
    for props in _hook_methods(synth).values():
        assert props["RequestModels"] == {"application/json": {"Ref": hook_model}}
        assert props["RequestValidatorId"] == {"Ref": validator_id}
    for props in _event_methods(synth).values():
        assert props["RequestModels"] == {"application/json": {"Ref": envelope_model}}
        assert props["RequestValidatorId"] == {"Ref": validator_id}


def test_hook_responses_map_step_functions_errors(synth: Synthesized) -> None:
    for props in _all_start_methods(synth):
        responses = {r["StatusCode"]: r for r in props["Integration"]["IntegrationResponses"]}
        assert set(responses) == {"200", "400", "502"}
        assert "SelectionPattern" not in responses["200"]  # the default: started
        assert responses["400"]["SelectionPattern"] == r"4\d{2}"
        assert responses["502"]["SelectionPattern"] == r"5\d{2}"
        started = responses["200"]["ResponseTemplates"]["application/json"]
        assert "$input.path('$.executionArn')" in started and "$.startDate" in started
        problem = responses["400"]["ResponseTemplates"]["application/json"]
        for error, status in (
            ("ExecutionAlreadyExists", 409),
            ("ExecutionLimitExceeded", 429),
            ("InvalidExecutionInput", 400),
        ):
            assert error in problem and f"#set($status = {status})" in problem
        assert "#set($context.responseOverride.status = $status)" in problem
        for r in ("400", "502"):
            params = responses[r]["ResponseParameters"]
            assert params == {"method.response.header.Content-Type": "'application/problem+json'"}
        declared = {m["StatusCode"] for m in props["MethodResponses"]}
        assert declared == {"200", "400", "409", "429", "502"}
    # A conflict names what carried the key: the header, or the envelope's field.
    for methods, field in (
        (_hook_methods(synth), c.HOOKS_KEY_HEADER),
        (_event_methods(synth), "key"),
    ):
        for props in methods.values():
            (problem,) = [
                r["ResponseTemplates"]["application/json"]
                for r in props["Integration"]["IntegrationResponses"]
                if r["StatusCode"] == "400"
            ]
            assert f'"field": "{field}"' in problem


def test_hooks_role_may_only_start_the_live_aliases(synth: Synthesized) -> None:
    # One role for both routes of every workflow.
    (credentials,) = {
        json.dumps(p["Integration"]["Credentials"]) for p in _all_start_methods(synth)
    }
    role_id = json.loads(credentials)["Fn::GetAtt"][0]
    role = synth.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": c.HOOKS_PRINCIPAL}
    statements = [
        st
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (statement,) = statements
    assert _as_list(statement["Action"]) == list(c.HOOKS_START_ACTIONS)
    resources = json.dumps(statement["Resource"])
    assert (
        resources.count(f'"{c.STATE_MACHINE_ALIAS}"')
        == len(WORKFLOWS)
        == len(statement["Resource"])
    )


# ------------------------------------------------------------------ CORS (console elsewhere)

CONSOLE = "https://console.example.com"


def test_cors_origins_add_a_gateway_preflight_and_the_function_setting(tmp_path: Path) -> None:
    cors = synthesize(
        tmp_path,
        {c.CTX_API_ENABLED: "true", c.CTX_API_CORS_ORIGINS: f"{CONSOLE},http://localhost:5173"},
    )
    methods = cors.methods()
    preflights = {k[0]: m for k, m in methods.items() if k[1] == "OPTIONS"}
    # Every resource the Lambda API answers on: the proxy and the health resources.
    health = f"/{c.API_ROUTE_PREFIX}/{c.API_HEALTH_PATH}"
    assert set(preflights) == {"/v1/{proxy+}", health, f"{health}/{{proxy+}}", LIVE}
    for preflight in preflights.values():
        # Browsers send preflights without credentials: answered by the gateway, no Lambda.
        assert preflight["AuthorizationType"] == "NONE"
        assert preflight["Integration"]["Type"] == "MOCK"
        (response,) = preflight["Integration"]["IntegrationResponses"]
        params = response["ResponseParameters"]
        assert "Idempotency-Key" in params["method.response.header.Access-Control-Allow-Headers"]
    # Every other method keeps its authorization, the liveness probe aside.
    assert cors.open_methods() == [(LIVE, "GET")]
    assert all(
        m["AuthorizationType"] == "AWS_IAM"
        for k, m in methods.items()
        if k[1] != "OPTIONS" and k != (LIVE, "GET")
    )
    _, fn = cors.function(c.API_HANDLER)
    env = fn["Environment"]["Variables"]
    assert env[c.ENV_CORS_ORIGINS] == f"{CONSOLE},http://localhost:5173"
    # The gateway's own 4XX/5XX (a refused signature, throttling) are readable by the console.
    gateway = [g["Properties"] for g in cors.of_type("AWS::ApiGateway::GatewayResponse").values()]
    assert {g["ResponseType"] for g in gateway} == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for g in gateway:
        headers = g["ResponseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{CONSOLE}'"
    assert cors.nag_findings() == []
    assert lint_template(cors.template_path) == []


def test_without_cors_origins_there_is_no_preflight(synth: Synthesized) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    assert all(m["Properties"]["HttpMethod"] != "OPTIONS" for m in methods)
    _, fn = synth.function(c.API_HANDLER)
    assert c.ENV_CORS_ORIGINS not in fn["Environment"]["Variables"]


def test_a_wildcard_or_a_path_is_not_an_origin(tmp_path: Path) -> None:
    for bad in ("*", f"{CONSOLE}/app"):
        with pytest.raises(ValueError, match="apiCorsOrigins"):
            synthesize(
                tmp_path / bad.replace("/", "_"),
                {c.CTX_API_ENABLED: "true", c.CTX_API_CORS_ORIGINS: bad},
            )

"""The CDK-created entry points, recreated in moto from the synthesized template.

* EventBridge: the etl rule's exact EventPattern and InputTransformer go into moto's
  events; ``TestEventPattern`` (AWS's own matcher, as moto implements it) must say what
  ``stepdag trigger`` says, on the example's event and on near misses.
* Scheduler: the schedule's expression, time zone, target and input read back unchanged.
* API Gateway: every resource, method and integration of the template is created in moto;
  every route of the Lambda API's OpenAPI document must then resolve (most specific
  resource first, as API Gateway routes) to the API function's live alias with AWS_IAM --
  ``GET /v1/health/live`` alone without authorization -- and only the hook routes reach
  Step Functions directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT

from infra import constants as c
from stepdag.api.app import build_app
from stepdag.api.service import LocalExecutionService
from stepdag.core.loader import load_workflow
from stepdag.core.triggers import EventTrigger, ScheduleTrigger
from stepdag.runtime.sqlite import SqliteStore
from tests.infra.conftest import Synthesized, synthesize
from tests.support.cfn import Resolver, create_queue, only
from tests.unit.api import workflows
from tests.unit.core.test_triggers import EVENT

moto = pytest.importorskip("moto")

pytestmark = pytest.mark.moto
REGION = "us-east-1"
ETL = load_workflow("statemachines/etl.py:wf").workflow
(TRIGGER,) = [t for t in ETL.triggers if isinstance(t, EventTrigger)]
(SCHEDULE,) = [t for t in ETL.triggers if isinstance(t, ScheduleTrigger)]
ALIAS = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:Stepdag-etl:live"
API_ID = "a1b2c3d4e5"
LIVE = f"/{c.API_ROUTE_PREFIX}/{c.API_HEALTH_PATH}/{c.API_LIVE_PATH}"  # no authorization
# With the API (this module's template) the etl rule targets the events route, not ALIAS.
EVENTS_ROUTE = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/prod/POST/v1/hooks/etl/events"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("wiring"), {c.CTX_API_ENABLED: "true"})


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        yield


def _resolver(synth: Synthesized) -> Resolver:
    """Names for what the wiring refers to: state machines, roles, the API function."""
    resolve = Resolver(REGION, ACCOUNT)
    for sm_id, sm in synth.of_type("AWS::StepFunctions::StateMachine").items():
        name = sm["Properties"]["StateMachineName"]
        resolve.refs[sm_id] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    for role_id in synth.of_type("AWS::IAM::Role"):
        resolve.attrs[(role_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{role_id}"
    for api_id in synth.of_type("AWS::ApiGateway::RestApi"):
        resolve.refs[api_id] = API_ID
    for stage_id, stage in synth.of_type("AWS::ApiGateway::Stage").items():
        resolve.refs[stage_id] = stage["Properties"]["StageName"]
    for fn_id in synth.of_type("AWS::Lambda::Function"):
        fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn_id}"
        resolve.attrs[(fn_id, "Arn")] = fn_arn
    for alias_id, alias in synth.of_type("AWS::Lambda::Alias").items():
        fn_id = alias["Properties"]["FunctionName"]["Ref"]
        resolve.refs[alias_id] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn_id}:{alias['Properties']['Name']}"
        )
    return resolve


def _create_queues(synth: Synthesized, resolve: Resolver) -> dict[str, str]:
    """The template's SQS queues (the dead-letter queues) in moto: {logical id: ARN}."""
    sqs = boto3.client("sqs", region_name=REGION)
    return {
        q: create_queue(sqs, synth.resources, resolve, q) for q in synth.of_type("AWS::SQS::Queue")
    }


def _put(events: Any, event: dict[str, Any]) -> None:
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0


# ------------------------------------------------------------------ EventBridge


def test_synthesized_rule_matches_what_stepdag_trigger_matches(
    synth: Synthesized, aws: None
) -> None:
    rule_id, props = only(synth.resources, "AWS::Events::Rule", "WorkflowEtlTriggers")
    resolve = _resolver(synth)
    queues = _create_queues(synth, resolve)
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.put_rule(Name=rule_id, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED")
    targets = resolve(props["Targets"])
    assert events.put_targets(Rule=rule_id, Targets=targets)["FailedEntryCount"] == 0
    (target,) = events.list_targets_by_rule(Rule=rule_id)["Targets"]
    assert target["Arn"] == EVENTS_ROUTE
    assert target["InputTransformer"] == props["Targets"][0]["InputTransformer"]
    assert target["InputTransformer"]["InputPathsMap"]["id"] == "$.id"
    assert target["RoleArn"] == resolve(props["Targets"][0]["RoleArn"])
    # Deliveries that fail every retry land in the workflow's dead-letter queue.
    dlq = only(synth.resources, "AWS::SQS::Queue", "WorkflowEtlTriggers")[0]
    assert target["DeadLetterConfig"] == {"Arn": queues[dlq]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == c.TRIGGER_RETRY_ATTEMPTS
    assert json.loads(events.describe_rule(Name=rule_id)["EventPattern"]) == TRIGGER.pattern

    # moto delivers to no Step Functions target and implements no TestEventPattern, so a
    # queue on the same rule tells which events the synthesized pattern matched (the
    # whole event: moto drops the quotes of string values an InputTransformer inserts,
    # see test_triggers_moto; LocalStack's lane checks the transformed input).
    # moto also json-parses every transformed input it makes, so the synthesized target
    # (its output is invalid JSON in moto, as above) is taken off before the events.
    events.remove_targets(Rule=rule_id, Ids=[target["Id"]])
    url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_targets(Rule=rule_id, Targets=[{"Id": "probe", "Arn": arn["QueueArn"]}])
    cases = [
        {**EVENT, "detail": {"source": "orders-2026-11"}},
        {**EVENT, "source": "billing.service"},
        {**EVENT, "detail-type": "OrdersDeleted"},
        {**EVENT, "source": "orders.service.eu"},
        {**EVENT, "detail-type": "ordersexported"},  # values are case-sensitive
        {**EVENT, "detail": {"source": "orders-2026-12", "count": 7}},
    ]
    for event in cases:
        _put(events, event)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    delivered = [json.loads(m["Body"]) for m in messages]
    assert (
        [d["detail"] for d in delivered]
        == [e["detail"] for e in cases if TRIGGER.matches(e)]
        == [{"source": "orders-2026-11"}, {"source": "orders-2026-12", "count": 7}]
    )
    assert [TRIGGER.render(d) for d in delivered] == [
        {"source": "orders-2026-11"},
        {"source": "orders-2026-12"},
    ]


# ------------------------------------------------------------------ Scheduler


def test_synthesized_schedule_reads_back_from_scheduler(synth: Synthesized, aws: None) -> None:
    schedule_id, props = only(synth.resources, "AWS::Scheduler::Schedule", "WorkflowEtlTriggers")
    resolve = _resolver(synth)
    queues = _create_queues(synth, resolve)
    target = resolve(props["Target"])
    client = boto3.client("scheduler", region_name=REGION)
    client.create_schedule(
        Name=schedule_id[:64],
        Description=props["Description"],
        ScheduleExpression=props["ScheduleExpression"],
        ScheduleExpressionTimezone=props["ScheduleExpressionTimezone"],
        FlexibleTimeWindow=props["FlexibleTimeWindow"],
        State=props["State"],
        Target=target,
    )
    got = client.get_schedule(Name=schedule_id[:64])
    assert got["ScheduleExpression"] == SCHEDULE.expression == "cron(0 2 * * ? *)"
    assert got["ScheduleExpressionTimezone"] == SCHEDULE.timezone == "Europe/Berlin"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert got["State"] == "ENABLED"
    assert got["Target"]["Arn"] == ALIAS
    assert got["Target"]["RoleArn"].endswith(f":role/{props['Target']['RoleArn']['Fn::GetAtt'][0]}")
    assert json.loads(got["Target"]["Input"]) == SCHEDULE.payload == {"source": "nightly"}
    assert got["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == c.TRIGGER_RETRY_ATTEMPTS
    dlq = only(synth.resources, "AWS::SQS::Queue", "WorkflowEtlTriggers")[0]
    assert got["Target"]["DeadLetterConfig"] == {"Arn": queues[dlq]}


# ------------------------------------------------------------------ API Gateway


def _lambda_routes(tmp: Path) -> list[tuple[str, str]]:
    """(METHOD, path) of every route in the Lambda API's OpenAPI document."""
    with SqliteStore(tmp / "routes.db") as store:
        app = build_app(LocalExecutionService(store, workflows.ALL))
        doc = json.loads(app.get_openapi_json_schema())
    out = [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]
    # The document itself is served too (include_in_schema=False).
    return [*out, ("GET", "/v1/openapi.json"), ("GET", "/v1/docs")]


def _build_api(synth: Synthesized, apigw: Any) -> str:
    resolve = _resolver(synth)
    api_id, api = only(synth.resources, "AWS::ApiGateway::RestApi")
    rest_api = apigw.create_rest_api(name=api["Name"])["id"]
    resolve.refs[api_id] = rest_api
    root = apigw.get_resources(restApiId=rest_api)["items"][0]["id"]
    resolve.attrs[(api_id, "RootResourceId")] = root
    pending = dict(synth.of_type("AWS::ApiGateway::Resource"))
    while pending:  # parents first
        for res_id, res in list(pending.items()):
            parent = res["Properties"]["ParentId"]
            if "Ref" in parent and parent["Ref"] in pending:
                continue
            resolve.refs[res_id] = apigw.create_resource(
                restApiId=rest_api, parentId=resolve(parent), pathPart=res["Properties"]["PathPart"]
            )["id"]
            del pending[res_id]
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        raw = method["Properties"]
        props = resolve(
            {k: v for k, v in raw.items() if k not in ("RequestModels", "RequestValidatorId")}
        )
        integration = props["Integration"]
        apigw.put_method(
            restApiId=rest_api,
            resourceId=props["ResourceId"],
            httpMethod=props["HttpMethod"],
            authorizationType=props["AuthorizationType"],
        )
        apigw.put_integration(
            restApiId=rest_api,
            resourceId=props["ResourceId"],
            httpMethod=props["HttpMethod"],
            type=integration["Type"],
            integrationHttpMethod=integration["IntegrationHttpMethod"],
            uri=integration["Uri"],
            **({"credentials": integration["Credentials"]} if "Credentials" in integration else {}),
        )
    return rest_api


def _route(tree: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The resource API Gateway picks for ``path`` (static > {param} > {proxy+}) and its
    method (``method`` or ANY). No fallback to a sibling: a matched resource without the
    method is a 403 on AWS, so it must not happen for a Lambda route."""
    node = tree
    concrete = re.sub(r"\{[^}]+\}", "sample-value", path)  # an OpenAPI {id} -> a real id
    for part in [p for p in concrete.split("/") if p]:
        children = node["children"]
        param = next((v for k, v in children.items() if k.startswith("{") and "+" not in k), None)
        greedy = next((v for k, v in children.items() if k.endswith("+}")), None)
        node = children.get(part) or param or greedy
        if node is None:
            raise AssertionError(f"{method} {path}: no resource for {part!r}")
        if node is greedy:
            break  # {proxy+} takes the rest of the path
    methods = node["methods"]
    found = methods.get(method) or methods.get("ANY")
    if found is None:
        raise AssertionError(f"{method} {path}: resource {node['path']} has no such method")
    return node["path"], found


def _tree(apigw: Any, rest_api: str) -> dict[str, Any]:
    items = apigw.get_resources(restApiId=rest_api, embed=["methods"])["items"]
    nodes = {i["id"]: {"path": i["path"], "children": {}, "methods": {}} for i in items}
    root = None
    for item in items:
        if "parentId" in item:
            nodes[item["parentId"]]["children"][item["pathPart"]] = nodes[item["id"]]
        else:
            root = nodes[item["id"]]
        for verb in item.get("resourceMethods", {}):
            nodes[item["id"]]["methods"][verb] = apigw.get_method(
                restApiId=rest_api, resourceId=item["id"], httpMethod=verb
            )
    assert root is not None
    return root


def test_every_lambda_route_reaches_the_api_function_with_iam_but_liveness(
    synth: Synthesized, aws: None, tmp_path: Path
) -> None:
    apigw = boto3.client("apigateway", region_name=REGION)
    rest_api = _build_api(synth, apigw)
    tree = _tree(apigw, rest_api)
    (fn_id,) = [
        k
        for k, v in synth.of_type("AWS::Lambda::Function").items()
        if v["Properties"]["Handler"] == c.API_HANDLER
    ]
    # The live alias (gradual deploys move it), never $LATEST.
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn_id}:{c.STATE_MACHINE_ALIAS}"
    routes = _lambda_routes(tmp_path)
    assert len(routes) >= 13  # 11 documented routes, the document and Swagger UI
    # The health routes have resources of their own so that liveness alone can be open.
    expected = {
        ("GET", LIVE): (LIVE, "NONE"),
        ("GET", "/v1/health"): ("/v1/health", "AWS_IAM"),
        ("GET", "/v1/health/ready"): ("/v1/health/{proxy+}", "AWS_IAM"),
    }
    assert set(expected) <= set(routes)
    for verb, path in routes:
        resource, method = _route(tree, verb, path)
        want = expected.get((verb, path), ("/v1/{proxy+}", "AWS_IAM"))
        assert (resource, method["authorizationType"]) == want, (verb, path)
        integration = method["methodIntegration"]
        assert integration["type"] == "AWS_PROXY"
        assert integration["uri"].endswith(f"/functions/{fn_arn}/invocations")

    # Liveness only: another verb there is no route, and the probe is GET alone open.
    with pytest.raises(AssertionError, match="has no such method"):
        _route(tree, "POST", LIVE)
    open_methods = [
        (node["path"], verb)
        for node in _nodes(tree)
        for verb, m in node["methods"].items()
        if m["authorizationType"] == "NONE"
    ]
    assert open_methods == [(LIVE, "GET")]

    # The hook routes are the only other methods, each a direct StartExecution.
    for name in ("etl", "documents", "features"):
        resource, method = _route(tree, "POST", f"/v1/{c.HOOKS_PATH}/{name}")
        assert resource == f"/v1/{c.HOOKS_PATH}/{name}"
        assert method["authorizationType"] == "AWS_IAM"
        integration = method["methodIntegration"]
        assert integration["type"] == "AWS"
        assert integration["uri"] == f"arn:aws:apigateway:{REGION}:states:action/StartExecution"
        assert integration["credentials"].endswith(":role/" + _hooks_role(synth))
        with pytest.raises(AssertionError, match="has no such method"):
            _route(tree, "GET", f"/v1/{c.HOOKS_PATH}/{name}")


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield tree
    for child in tree["children"].values():
        yield from _nodes(child)


def _hooks_role(synth: Synthesized) -> str:
    (role_id,) = [k for k in synth.of_type("AWS::IAM::Role") if c.HOOKS_ROLE_ID in k]
    return role_id

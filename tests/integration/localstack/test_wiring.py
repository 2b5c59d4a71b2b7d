"""The CDK wiring on a real AWS emulator: EventBridge -> API Gateway -> Step Functions (the
API-enabled template's rule targets the events route) and API Gateway -> Step Functions,
with the synthesized template's own rule, transformer, alias, routes and integrations.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from infra import constants as c
from infra.stack import workflow_construct_id
from infra.workflows import load_workflows
from stepdag.core.loader import load_workflow
from stepdag.core.triggers import EventTrigger
from tests.infra.conftest import synthesize
from tests.integration.conftest import REGION
from tests.integration.localstack.conftest import CREDENTIALS, LocalStack, Starting
from tests.integration.localstack.deploy import (
    Workflow,
    deploy_hook,
    deploy_rules,
    deploy_workflow,
)
from tests.support.cfn import Resolver
from tests.unit.core.test_triggers import EVENT

ETL = load_workflow("statemachines/etl.py:wf").workflow
(TRIGGER,) = [t for t in ETL.triggers if isinstance(t, EventTrigger)]
WAIT_S = 20.0
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Deployed:
    ls: LocalStack
    resources: dict[str, Any]
    resolve: Resolver
    etl: Workflow

    @property
    def sfn(self) -> Any:
        return self.ls.client("stepfunctions")

    def names(self) -> set[str]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.etl.state_machine_arn
        )
        return {e["name"] for page in pages for e in page["executions"]}

    def wait_for_new(self, before: set[str], count: int = 1) -> list[str]:
        deadline = time.monotonic() + WAIT_S
        while True:
            new = sorted(self.names() - before)
            if len(new) >= count or time.monotonic() > deadline:
                return new
            time.sleep(0.1)

    def describe(self, name: str) -> dict[str, Any]:
        arn = self.etl.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        out: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
        return out


@pytest.fixture(scope="module")
def deployed(localstack_starting: Starting, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    # Synthesize while LocalStack boots (two processes, two cores).
    synth = synthesize(tmp_path_factory.mktemp("ls-synth"), {c.CTX_API_ENABLED: "true"})
    localstack = localstack_starting.ready()
    resources = synth.resources
    resolve = Resolver(REGION)
    # Every workflow: the hooks' role may start each one's alias (its policy names them all).
    deployed = {
        spec.name: deploy_workflow(localstack, resources, resolve, workflow_construct_id(spec.name))
        for spec in load_workflows(c.WORKFLOWS_DIR)
    }
    return Deployed(localstack, resources, resolve, deployed["etl"])


def _put(events: Any, event: dict[str, Any]) -> str:
    """Put ``event`` on the default bus; its id (EventBridge assigns one)."""
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
    }
    answer = events.put_events(Entries=[entry])
    assert answer["FailedEntryCount"] == 0
    event_id: str = answer["Entries"][0]["EventId"]
    return event_id


@pytest.fixture(scope="module")
def hook(deployed: Deployed) -> str:
    base = deploy_hook(deployed.ls, deployed.resources, deployed.resolve, "etl", c.API_STAGE_NAME)
    return f"{base}/{c.API_ROUTE_PREFIX}/{c.HOOKS_PATH}/etl"


def _route_calls(ls: LocalStack) -> int:
    """How many requests LocalStack's gateway logged for the events route."""
    return len(re.findall(r"POST /prod/v1/hooks/etl/events/? => \d{3}", Path(ls.log).read_text()))


def test_matching_event_starts_one_run_named_after_the_event_id(
    deployed: Deployed, hook: str
) -> None:
    """EventBridge -> API Gateway (events route) -> Step Functions, with the template's rule."""
    ls = deployed.ls
    (rule,) = deploy_rules(ls, deployed.resources, deployed.resolve, "WorkflowEtlTriggers")
    events = ls.client("events")
    (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert re.fullmatch(
        r"arn:aws:execute-api:[^:]+:\d{12}:[a-z0-9]+/prod/POST/v1/hooks/etl/events", target["Arn"]
    ), target["Arn"]
    # An undeliverable event goes to the workflow's dead-letter queue, created from the template.
    assert re.fullmatch(
        r"arn:aws:sqs:[^:]+:\d{12}:WorkflowEtlTriggersDeadLetters\w+",
        target["DeadLetterConfig"]["Arn"],
    ), target["DeadLetterConfig"]
    before = deployed.names()
    other_source = {**EVENT, "source": "billing.service"}
    other_type = {**EVENT, "detail-type": "OrdersDeleted"}
    assert not TRIGGER.matches(other_source) and not TRIGGER.matches(other_type)
    _put(events, other_source)
    _put(events, other_type)
    event_id = _put(events, EVENT)

    (name,) = deployed.wait_for_new(before)
    assert name == event_id  # the event id is the execution name
    desc = deployed.describe(name)
    expected = TRIGGER.render(EVENT)
    assert expected == {"source": "orders-2026-11"}
    assert json.loads(desc["input"]) == expected  # exactly what the transformer maps
    assert desc["stateMachineAliasArn"] == deployed.etl.alias_arn
    assert desc["status"] == "RUNNING"
    # The deployed definition's first Task got the params (the node runner's request).
    task = deployed.sfn.get_activity_task(activityArn=deployed.etl.activity_arn, workerName="t")
    request = json.loads(task["input"])
    assert request["execution"] == desc["executionArn"]
    assert (request["workflow"], request["node"], request["params"]) == ("etl", "extract", expected)
    # The non-matching events were delivered before it and started nothing.
    time.sleep(0.5)
    assert deployed.names() - before == {name}


def test_a_redelivered_event_does_not_start_a_second_run(deployed: Deployed, hook: str) -> None:
    """The same event id reaches the route twice (two rules, the template's target each)."""
    ls = deployed.ls
    (rule,) = deploy_rules(ls, deployed.resources, deployed.resolve, "WorkflowEtlTriggers")
    (twin,) = deploy_rules(
        ls, deployed.resources, deployed.resolve, "WorkflowEtlTriggers", name_suffix="Twin"
    )
    events = ls.client("events")
    try:
        before, calls = deployed.names(), _route_calls(ls)
        event_id = _put(events, EVENT)
        (name,) = deployed.wait_for_new(before)
        assert name == event_id
        deadline = time.monotonic() + WAIT_S
        while _route_calls(ls) < calls + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _route_calls(ls) == calls + 2  # both deliveries reached the route
        time.sleep(0.5)
        assert deployed.names() - before == {event_id}  # ... and started one run
        task = deployed.sfn.get_activity_task(activityArn=deployed.etl.activity_arn, workerName="t")
        assert json.loads(task["input"])["execution"] == deployed.describe(event_id)["executionArn"]

        # The envelope the transformer rendered, sent once more (a later redelivery):
        # the open run answers, nothing new starts; another input under the key is a 409.
        url = f"{hook}/events"
        envelope = {"key": event_id, "input": TRIGGER.render(EVENT)}
        again = _post(url, json.dumps(envelope).encode(), {"Content-Type": "application/json"})
        assert again.status == 200, again.body
        assert again.body["id"] == deployed.describe(event_id)["executionArn"]
        other = {"key": event_id, "input": {"source": "something-else"}}
        conflict = _post(url, json.dumps(other).encode(), {"Content-Type": "application/json"})
        assert conflict.status == 409, conflict.body
        assert conflict.body["field"] == "key" and conflict.body["code"] == "idempotency_conflict"
        # Not an envelope: the validator refuses it, nothing starts.
        bare = _post(
            url, json.dumps(TRIGGER.render(EVENT)).encode(), {"Content-Type": "application/json"}
        )
        assert bare.status == 400, bare.body
        assert deployed.names() - before == {event_id}
    finally:
        for name in (rule, twin):
            events.remove_targets(Rule=name, Ids=["Target0"])
            events.delete_rule(Name=name)


@dataclass
class Answer:
    status: int
    content_type: str
    body: Any


def _post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """A SigV4-signed POST (the methods use AWS_IAM)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    credentials = boto3.Session(**CREDENTIALS).get_credentials()
    SigV4Auth(credentials, "execute-api", REGION).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(url, data=body, method="POST", headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Answer(r.status, r.headers.get("Content-Type", ""), json.loads(r.read()))
    except urllib.error.HTTPError as e:
        raw = e.read()
        return Answer(e.code, e.headers.get("Content-Type", ""), json.loads(raw) if raw else None)


def _start(url: str, params: Any, key: str | None = None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[c.HOOKS_KEY_HEADER] = key
    return _post(url, json.dumps(params).encode(), headers)


def test_hook_starts_the_live_alias_with_the_body_and_the_key_as_name(
    deployed: Deployed, hook: str
) -> None:
    before = deployed.names()
    params = {"source": "orders-2026-12", "count": 3, "note": 'it\'s "quoted" / ünïcode'}
    first = _start(hook, params, key="webhook-1")
    assert first.status == 200, first.body
    assert first.content_type.startswith("application/json")
    assert first.body["workflow"] == "etl"
    assert first.body["id"].endswith(":execution:Stepdag-etl:webhook-1")
    assert isinstance(first.body["started_at"], float)
    desc = deployed.describe("webhook-1")
    assert desc["executionArn"] == first.body["id"]
    assert json.loads(desc["input"]) == params
    assert desc["stateMachineAliasArn"] == deployed.etl.alias_arn
    task = deployed.sfn.get_activity_task(activityArn=deployed.etl.activity_arn, workerName="t")
    assert json.loads(task["input"])["params"] == params

    # A retried webhook (same key, same body) answers the same execution: one run.
    again = _start(hook, params, key="webhook-1")
    assert again.status == 200 and again.body == first.body
    # The same key with another body is a conflict, as a problem document.
    other = _start(hook, {"source": "something-else"}, key="webhook-1")
    assert other.status == 409, other.body
    assert other.content_type.startswith("application/problem+json")
    assert other.body["code"] == "idempotency_conflict"
    assert other.body["field"] == c.HOOKS_KEY_HEADER
    assert other.body["type"] == "urn:stepdag:problem:idempotency_conflict"
    assert "webhook-1" in other.body["detail"]
    assert deployed.names() - before == {"webhook-1"}


def test_hook_without_a_key_names_the_run_after_the_request_id(
    deployed: Deployed, hook: str
) -> None:
    before = deployed.names()
    one = _start(hook, {"source": "a"})
    two = _start(hook, {"source": "a"})
    assert one.status == two.status == 200
    names = {one.body["id"].rsplit(":", 1)[-1], two.body["id"].rsplit(":", 1)[-1]}
    assert len(names) == 2 and all(UUID_RE.match(n) for n in names), names
    assert deployed.names() - before == names


def test_hook_refuses_bodies_that_are_not_a_json_object(deployed: Deployed, hook: str) -> None:
    before = deployed.names()
    listed = _post(hook, b"[1, 2]", {"Content-Type": "application/json"})
    assert listed.status == 400, listed.body
    # AWS answers 415 (no template for the type, passthrough NEVER); LocalStack's validator
    # answers 400 first. Either way the gateway refuses it and starts nothing.
    text = _post(hook, b"source=a", {"Content-Type": "text/plain"})
    assert text.status in (400, 415), text.body
    assert deployed.names() == before


def test_the_lane_ran_on_localstack(localstack: LocalStack) -> None:
    # A guard against a silently mocked lane: the endpoint is LocalStack's gateway.
    with urllib.request.urlopen(f"{localstack.endpoint}/_localstack/health") as r:
        health = json.loads(r.read())
    assert health["services"]["stepfunctions"] in ("running", "available")
    assert Path(localstack.log).read_text().count("Ready.") == 1

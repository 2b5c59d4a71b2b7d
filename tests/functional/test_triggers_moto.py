"""Our EventBridge pattern matcher and input transformer against moto's EventBridge.

Each pattern of the unit tests' table becomes a rule on moto's default bus with an SQS
queue as its target; one ``put_events`` call then tells, queue by queue, which rules
moto matched, and that must be what ``pattern_matches`` says. The InputTransformer the
CDK deploys for a dict template (``input_transformer``) must deliver what
``stepdag trigger`` renders locally.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from stepdag.core.loader import load_workflow
from stepdag.core.triggers import EventTrigger, input_transformer, pattern_matches
from tests.unit.core.test_triggers import EVENT, MATCH_TABLE

moto = pytest.importorskip("moto")

pytestmark = pytest.mark.moto
REGION = "us-east-1"

# moto flattens nested objects but not arrays of objects, so it cannot match a pattern
# inside an array of objects; AWS (and our matcher) do. Compared on AWS's documented side.
MOTO_GAPS = {json.dumps({"detail": {"items": {"sku": ["y"]}}})}
# moto also inserts a string variable written unquoted (``{"source":<v>}``) without its
# quotes, producing invalid JSON; AWS inserts the JSON value (the documented
# ``{"instance": <instance>}`` example delivers a quoted string, and CDK's
# RuleTargetInput.fromObject relies on it). Templates are checked in moto with
# non-string values; string paths are checked against the transformer's own document.


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        yield boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)


def _rule_to_queue(
    events: Any, sqs: Any, name: str, pattern: dict[str, Any], transformer: Any = None
) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    target: dict[str, Any] = {"Id": "q", "Arn": arn}
    if transformer is not None:
        target["InputTransformer"] = transformer
    events.put_targets(Rule=name, Targets=[target])
    return str(url)


def _put(events: Any, event: dict[str, Any]) -> None:
    res = events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        ]
    )
    assert res["FailedEntryCount"] == 0


def _bodies(sqs: Any, url: str) -> list[Any]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_local_matcher_agrees_with_moto(aws: tuple[Any, Any]) -> None:
    events, sqs = aws
    rows = [(p, want) for p, want in MATCH_TABLE if json.dumps(p) not in MOTO_GAPS]
    queues = [_rule_to_queue(events, sqs, f"pattern-{i}", p) for i, (p, _) in enumerate(rows)]
    _put(events, EVENT)
    disagreements = []
    for (pattern, want), url in zip(rows, queues, strict=True):
        delivered = _bodies(sqs, url)
        moto_says = bool(delivered)
        ours = pattern_matches(pattern, delivered[0] if delivered else EVENT)
        assert ours is want  # on the event as moto delivered it, too
        if moto_says is not ours:
            disagreements.append((pattern, moto_says, ours))
    assert disagreements == []
    assert len(rows) >= 30


def test_etl_trigger_pattern_and_transformer_match_local_rendering(aws: tuple[Any, Any]) -> None:
    events, sqs = aws
    trig = next(
        t
        for t in load_workflow("statemachines/etl.py:wf").workflow.triggers
        if isinstance(t, EventTrigger)
    )
    assert isinstance(trig.input, dict)
    plain = _rule_to_queue(events, sqs, "etl-plain", dict(trig.pattern))
    other = {**EVENT, "source": "billing.service"}
    _put(events, other)
    assert _bodies(sqs, plain) == [] and not trig.matches(other)
    event = {**EVENT, "detail": {"source": "orders-2026-11", "extra": {"n": 1}}}
    _put(events, event)
    delivered = _bodies(sqs, plain)
    assert len(delivered) == 1 and trig.matches(delivered[0])
    assert trig.render(delivered[0]) == {"source": "orders-2026-11"}
    assert input_transformer(trig.input) == {
        "InputPathsMap": {"detail_source": "$.detail.source"},
        "InputTemplate": '{"source":<detail_source>}',
    }


def test_nested_and_literal_template_through_moto(aws: tuple[Any, Any]) -> None:
    events, sqs = aws
    template = {
        "count": "$.detail.count",
        "tags": "$.detail.tags",
        "nested": {"obj": "$.detail.nested", "lit": "plain", "n": 3},
    }
    url = _rule_to_queue(
        events, sqs, "tmpl", {"source": ["orders.service"]}, input_transformer(template)
    )
    plain = _rule_to_queue(events, sqs, "tmpl-plain", {"source": ["orders.service"]})
    _put(events, EVENT)
    delivered = _bodies(sqs, plain)[0]
    local = EventTrigger("t", {"source": ["orders.service"]}, template).render(delivered)
    assert _bodies(sqs, url) == [local]

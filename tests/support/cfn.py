"""Deploy pieces of the synthesized template by hand: resolve its intrinsic functions.

The wiring tests (moto, LocalStack) create the CDK-generated resources through the service
APIs with the template's own properties, so what they prove is what CloudFormation would
create. ``Resolver`` substitutes ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub``-free
values from what the test created; an intrinsic it does not know is an error naming it,
never a silent placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "000000000000"  # LocalStack's default account
PSEUDO = {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}


@dataclass
class Resolver:
    region: str
    account: str = ACCOUNT
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> physical id / ARN
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, attribute) -> value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            try:
                return self.attrs[(logical, attribute)]
            except KeyError:
                raise KeyError(f"Fn::GetAtt {logical}.{attribute}: not created by the test")
        if set(value) == {"Fn::Join"}:
            sep, parts = value["Fn::Join"]
            return sep.join(str(self(p)) for p in parts)
        unknown = [k for k in value if k.startswith("Fn::")]
        if unknown:
            raise ValueError(f"intrinsic {unknown[0]} is not supported here: {value}")
        return {k: self(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        if name == "AWS::Region":
            return self.region
        if name == "AWS::AccountId":
            return self.account
        if name in PSEUDO:
            return PSEUDO[name]
        try:
            return self.refs[name]
        except KeyError:
            raise KeyError(f"Ref {name}: not created by the test") from None


def only(resources: Mapping[str, dict[str, Any]], type_: str, prefix: str = "") -> tuple[str, Any]:
    """The one resource of ``type_`` whose logical id starts with ``prefix``: (id, props)."""
    found = [
        (k, v.get("Properties", {}))
        for k, v in resources.items()
        if v["Type"] == type_ and k.startswith(prefix)
    ]
    if len(found) != 1:
        raise AssertionError(f"expected one {type_} {prefix}*, found {[k for k, _ in found]}")
    return found[0]


def definition(props: Mapping[str, Any], substitutions: Mapping[str, str]) -> str:
    """A state machine's DefinitionString with its ``${Key}`` substitutions applied."""
    text = props["DefinitionString"]
    if not isinstance(text, str):
        raise ValueError(f"DefinitionString is not a plain string: {text!r:.200}")
    for key in props.get("DefinitionSubstitutions", {}):
        if key not in substitutions:
            raise KeyError(f"no value for definition substitution {key}")
        text = text.replace("${" + key + "}", substitutions[key])
    json.loads(text)  # still a JSON document
    return text


def create_queue(
    sqs: Any, resources: Mapping[str, dict[str, Any]], resolve: Resolver, queue_id: str
) -> str:
    """The template's SQS queue (a dead-letter queue) with its attributes; its ARN.

    ``Ref`` resolves to the queue URL, ``Fn::GetAtt`` ``Arn``/``QueueName`` as CloudFormation
    would (the queue is named after its logical id)."""
    props = resources[queue_id].get("Properties", {})
    attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items()}
    url: str = sqs.create_queue(QueueName=queue_id[:80], Attributes=attributes)["QueueUrl"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    arn: str = got["QueueArn"]
    resolve.refs[queue_id] = url
    resolve.attrs[(queue_id, "Arn")] = arn
    resolve.attrs[(queue_id, "QueueName")] = queue_id[:80]
    return arn

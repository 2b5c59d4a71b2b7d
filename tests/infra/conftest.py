"""One synthesized stack per module: jsii start-up and synthesis dominate the run time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk", reason="CDK tests need the `cdk` extra")

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra import constants as c
from infra.app import build_app
from infra.stack import StepdagStack

# Tests never bundle wheels (slow, needs PyPI): the source dir is the asset.
FAST = {c.CTX_SKIP_BUNDLING: "true"}


@dataclass
class Synthesized:
    app: cdk.App
    stack: StepdagStack
    template: Template
    template_path: Path

    @property
    def resources(self) -> dict[str, Any]:
        out: dict[str, Any] = self.template.to_json()["Resources"]
        return out

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        """(logical id, properties) of the one Lambda function running ``handler``."""
        (found,) = [
            (k, v["Properties"])
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if v["Properties"]["Handler"] == handler
        ]
        return found

    def methods(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(path, HTTP method): properties}`` of every API Gateway method."""
        resources = self.resources

        def path(ref: dict[str, Any]) -> str:
            if "Ref" not in ref:  # the API's root resource
                return ""
            props = resources[ref["Ref"]]["Properties"]
            return f"{path(props['ParentId'])}/{props['PathPart']}"

        return {
            (path(m["Properties"]["ResourceId"]) or "/", m["Properties"]["HttpMethod"]): m[
                "Properties"
            ]
            for m in self.of_type("AWS::ApiGateway::Method").values()
        }

    def open_methods(self) -> list[tuple[str, str]]:
        """Methods callable without authorization, CORS preflights (OPTIONS) aside."""
        return sorted(
            k
            for k, m in self.methods().items()
            if m["AuthorizationType"] == "NONE" and k[1] != "OPTIONS"
        )

    def nag_report(self) -> Any:
        """cdk-nag's AwsSolutions validation report of the stack."""
        return AwsSolutionsChecks(self.app).validate_scope(self.stack)

    def nag_findings(self, report: Any = None) -> list[str]:
        """cdk-nag AwsSolutions violations, ``rule: [construct paths]`` (none expected:
        every acknowledgment is justified in code)."""
        report = report if report is not None else self.nag_report()
        return [
            f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}"
            for v in report.violations
        ]

    def role_statements(self, handler: str) -> list[dict[str, Any]]:
        """Every policy statement of the role of the function running ``handler``."""
        role = self.function(handler)[1]["Role"]["Fn::GetAtt"][0]
        out: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role} in policy["Properties"]["Roles"]:
                out += policy["Properties"]["PolicyDocument"]["Statement"]
        return out


def synthesize(tmp: Path, context: dict[str, Any] | None = None) -> Synthesized:
    app, stack = build_app(
        {**FAST, **(context or {})}, outdir=str(tmp / "cdk.out"), builtin_validation=False
    )
    # Synthesizing the app (not only the stack) also runs the cdk-nag plugin, as `cdk synth`.
    assembly = app.synth()
    template_path = Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)
    template = Template.from_json(json.loads(template_path.read_text()))
    return Synthesized(app, stack, template, template_path)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("stepdag-stack"))

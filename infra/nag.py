"""cdk-nag (v3) acknowledgments: one rule per call, always with the reason in code."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Suppress ``rule_id`` (``AwsSolutions-X`` or ``AwsSolutions-X[finding]``) on ``scope``.

    cdk-nag 3 matches granular findings exactly (no prefix matching), so an IAM5
    acknowledgment names the precise resource it justifies.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))

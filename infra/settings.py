"""Deployment settings read from CDK context (``cdk.json`` or ``cdk synth -c key=value``).

Context values arrive as strings from the command line and as JSON values from cdk.json,
so every reader accepts both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from constructs import Node

from infra import constants as c

StateMachineKind = Literal["STANDARD", "EXPRESS"]
SfnLogLevel = Literal["ALL", "ERROR"]
DeploymentType = Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]


@dataclass(frozen=True)
class Deployment:
    """How the ``live`` alias moves to a newly published state machine version."""

    type: DeploymentType = "ALL_AT_ONCE"
    percentage: int = 10  # CANARY: share of traffic first; LINEAR: step size
    interval_minutes: int = 5

    def __post_init__(self) -> None:
        if self.type not in ("ALL_AT_ONCE", "CANARY", "LINEAR"):
            raise ValueError(f"{c.CTX_DEPLOYMENT_TYPE}: unknown deployment type {self.type!r}")
        if not 1 <= self.percentage <= 99:
            raise ValueError(f"{c.CTX_DEPLOYMENT_PERCENTAGE} must be 1..99")
        if not 1 <= self.interval_minutes <= 2100:
            raise ValueError(f"{c.CTX_DEPLOYMENT_INTERVAL} must be 1..2100 minutes")


@dataclass(frozen=True)
class Settings:
    stack_name: str = c.STACK_ID
    workflows_dir: str = c.WORKFLOWS_DIR
    skip_bundling: bool = False
    log_level: str = "INFO"
    state_machine_type: StateMachineKind = "STANDARD"
    state_machine_log_level: SfnLogLevel = "ALL"
    include_execution_data: bool = False
    deployment: Deployment = Deployment()
    retain_data: bool = True
    output_retention_days: int = c.DEFAULT_OUTPUT_RETENTION_DAYS
    alarm_email: str | None = None

    @classmethod
    def from_context(cls, node: Node) -> Settings:
        def get(key: str) -> Any:
            return node.try_get_context(key)

        sfn_type = str(get(c.CTX_SFN_TYPE) or "STANDARD").upper()
        if sfn_type not in ("STANDARD", "EXPRESS"):
            raise ValueError(f"{c.CTX_SFN_TYPE} must be STANDARD or EXPRESS, not {sfn_type!r}")
        sfn_log = str(get(c.CTX_SFN_LOG_LEVEL) or "ALL").upper()
        if sfn_log not in ("ALL", "ERROR"):
            raise ValueError(f"{c.CTX_SFN_LOG_LEVEL} must be ALL or ERROR, not {sfn_log!r}")
        retention = int(get(c.CTX_OUTPUT_RETENTION_DAYS) or c.DEFAULT_OUTPUT_RETENTION_DAYS)
        if retention < 1:
            raise ValueError(f"{c.CTX_OUTPUT_RETENTION_DAYS} must be at least 1")
        return cls(
            stack_name=str(get(c.CTX_STACK_NAME) or c.STACK_ID),
            workflows_dir=str(get(c.CTX_WORKFLOWS_DIR) or c.WORKFLOWS_DIR),
            skip_bundling=_flag(get(c.CTX_SKIP_BUNDLING), default=False),
            log_level=str(get(c.CTX_LOG_LEVEL) or "INFO").upper(),
            state_machine_type=sfn_type,  # type: ignore[arg-type]
            state_machine_log_level=sfn_log,  # type: ignore[arg-type]
            include_execution_data=_flag(get(c.CTX_SFN_INCLUDE_EXECUTION_DATA), default=False),
            deployment=Deployment(
                type=str(get(c.CTX_DEPLOYMENT_TYPE) or "ALL_AT_ONCE").upper(),  # type: ignore[arg-type]
                percentage=int(get(c.CTX_DEPLOYMENT_PERCENTAGE) or 10),
                interval_minutes=int(get(c.CTX_DEPLOYMENT_INTERVAL) or 5),
            ),
            retain_data=_flag(get(c.CTX_RETAIN_DATA), default=True),
            output_retention_days=retention,
            alarm_email=str(get(c.CTX_ALARM_EMAIL)) if get(c.CTX_ALARM_EMAIL) else None,
        )


def _flag(value: Any, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean context value, got {value!r}")

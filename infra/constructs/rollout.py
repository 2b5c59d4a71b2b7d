"""Gradual deploys of the API and status-recorder functions, as the state machines have.

Each function is published as a version behind a ``live`` alias; API Gateway and the
status rule invoke the alias, never ``$LATEST``. With ``stepdag:deploymentType`` CANARY or
LINEAR, a CodeDeploy deployment group shifts the alias to a new version by the same
percentage and interval as the state machines' aliases, and rolls it back when one of the
function's alarms fires (its ``LambdaErrors`` and the API's ``ApiServerErrors`` or the
``StatusEvents`` alarm) or the deployment fails. ALL_AT_ONCE moves the alias in the stack
update itself (no CodeDeploy resources).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants as c
from infra.nag import acknowledge
from infra.settings import Deployment

LIVE_ALIAS_ID = "LiveAlias"


def live_alias(
    scope: Construct,
    fn: lambda_.Function,
    *,
    retry_attempts: int | None = None,
    max_event_age: Duration | None = None,
) -> lambda_.Alias:
    """``fn``'s published version behind the ``live`` alias (async-invoke settings are per
    qualifier, so ones the function has for ``$LATEST`` are repeated here)."""
    return lambda_.Alias(
        scope,
        LIVE_ALIAS_ID,
        alias_name=c.STATE_MACHINE_ALIAS,
        version=fn.current_version,
        description=f"{fn.node.path}: invoke here (gradual deploys move this alias)",
        retry_attempts=retry_attempts,
        max_event_age=max_event_age,
    )


def traffic_routing(deployment: Deployment) -> codedeploy.TrafficRouting:
    interval = Duration.minutes(deployment.interval_minutes)
    if deployment.type == "CANARY":
        return codedeploy.TrafficRouting.time_based_canary(
            interval=interval, percentage=deployment.percentage
        )
    if deployment.type == "LINEAR":
        return codedeploy.TrafficRouting.time_based_linear(
            interval=interval, percentage=deployment.percentage
        )
    raise ValueError(f"no traffic routing for {deployment.type}")


class FunctionRollouts(Construct):
    """One CodeDeploy application and config; a deployment group per aliased function."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment) -> None:
        super().__init__(scope, construct_id)
        if deployment.type == "ALL_AT_ONCE":
            raise ValueError("FunctionRollouts is for CANARY and LINEAR deployments")
        stack = Stack.of(self).stack_name
        self.application = codedeploy.LambdaApplication(
            self, "Application", application_name=f"{stack}-functions"
        )
        self.config = codedeploy.LambdaDeploymentConfig(
            self, "Config", traffic_routing=traffic_routing(deployment)
        )
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}

    def add(self, name: str, alias: lambda_.Alias, alarms: Sequence[cw.IAlarm]) -> None:
        group = codedeploy.LambdaDeploymentGroup(
            self,
            name,
            application=self.application,
            alias=alias,
            deployment_config=self.config,
            alarms=list(alarms),
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        self.groups[name] = group
        acknowledge(
            group.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's documented service role policy for Lambda deployments: it may "
            "update aliases and invoke hooks, and nothing of stepdag's data.",
        )

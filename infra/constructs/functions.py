"""Node-runner Lambda functions: one per distinct Lambda size used by any workflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c
from infra.bundling import RUNTIME
from infra.constructs.storage import StepdagStorage
from infra.nag import acknowledge
from stepdag.core.model import LambdaConfig


def function_id(substitution_key: str) -> str:
    """``NodeRunnerFunctionArn`` -> ``NodeRunner``; ``NodeRunner1024mb60sFunctionArn`` ->
    ``NodeRunner1024mb60s``."""
    return substitution_key.removesuffix("FunctionArn")


def function_role(
    scope: Construct,
    *,
    logs_id: str,
    role_id: str,
    description: str,
    removal_policy: RemovalPolicy,
) -> tuple[logs.LogGroup, iam.Role]:
    """A function's log group (one month) and its explicit role, allowed to write there.

    An explicit role instead of the default one: the default attaches the
    AWSLambdaBasicExecutionRole managed policy (logs on every log group).
    """
    log_group = logs.LogGroup(
        scope, logs_id, retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal_policy
    )
    role = iam.Role(
        scope,
        role_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return log_group, role


def stepdag_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    code: lambda_.Code,
    memory_mb: int,
    timeout_s: int,
    role: iam.Role,
    log_group: logs.LogGroup,
    storage: StepdagStorage,
    service_name: str,
    log_level: str,
    environment: Mapping[str, str],
    description: str,
    **props: Any,
) -> lambda_.Function:
    """A stepdag Lambda, as the node runners, the API and the status recorder all are:
    arm64 on ``RUNTIME``, traced, its own role and log group, the store's settings (table,
    bucket, retention), its Powertools service name and log level in the environment."""
    return lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64,
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=Duration.seconds(timeout_s),
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment={
            c.ENV_TABLE_NAME: storage.table.table_name,
            c.ENV_BUCKET_NAME: storage.bucket.bucket_name,
            c.ENV_RETENTION_DAYS: str(storage.retention_days),
            c.ENV_POWERTOOLS_SERVICE_NAME: service_name,
            c.ENV_LOG_LEVEL: log_level,
            **environment,
        },
        description=description,
        **props,
    )


def acknowledge_storage_grants(
    role: iam.Role, storage: StepdagStorage, objects_reason: str
) -> None:
    """cdk-nag IAM5 on a traced function that ``storage.grant_store`` was given."""
    stack = Stack.of(role)
    bucket = stack.get_logical_id(storage.bucket.node.default_child)  # type: ignore[arg-type]
    policy = role.node.find_child("DefaultPolicy")
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no "
        "resource-level permissions; '*' is the only valid resource.",
    )
    acknowledge(policy, f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]", objects_reason)


class NodeRunnerFunctions(Construct):
    """The node-runner functions and the published version each state machine pins.

    Every function runs the same code and handler; only memory and timeout differ, which is
    why a workflow's placeholder names a size, not a node.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        configs: Mapping[str, LambdaConfig],
        code: lambda_.Code,
        storage: StepdagStorage,
        workflow_modules: Mapping[str, str],
        log_level: str = "INFO",
        retain_data: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        self.versions: dict[str, lambda_.IVersion] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for key, config in configs.items():
            fn, log_group = self._function(
                function_id(key),
                config=config,
                code=code,
                storage=storage,
                workflow_modules=workflow_modules,
                log_level=log_level,
                retain_data=retain_data,
            )
            self.functions[key] = fn
            self.log_groups[key] = log_group
            # State machines pin a published version, so a state machine version kept for
            # canary/rollback keeps running the code it was deployed with.
            self.versions[key] = fn.current_version

    def _function(
        self,
        name: str,
        *,
        config: LambdaConfig,
        code: lambda_.Code,
        storage: StepdagStorage,
        workflow_modules: Mapping[str, str],
        log_level: str,
        retain_data: bool,
    ) -> tuple[lambda_.Function, logs.LogGroup]:
        log_group, role = function_role(
            self,
            logs_id=f"{name}Logs",
            role_id=f"{name}Role",
            description=f"stepdag node runner {name}",
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
        )
        storage.grant_store(role)
        fn = stepdag_function(
            self,
            name,
            handler=c.NODE_RUNNER_HANDLER,
            code=code,
            memory_mb=config.memory_mb,
            timeout_s=config.timeout_s,
            role=role,
            log_group=log_group,
            storage=storage,
            service_name=c.SERVICE_NAME,
            log_level=log_level,
            environment={
                c.ENV_WORKFLOW_MODULES: json.dumps(dict(workflow_modules), sort_keys=True),
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRIC_NAMESPACE,
            },
            current_version_options=lambda_.VersionOptions(
                # Old versions stay: retained state machine versions still invoke them.
                removal_policy=RemovalPolicy.RETAIN,
            ),
            description=f"stepdag node runner ({config.memory_mb} MB, {config.timeout_s} s)",
        )
        acknowledge_storage_grants(
            role,
            storage,
            "Object keys are generated per run/node, so object access is granted on "
            "this one bucket's objects; no other bucket and no bucket-level writes.",
        )
        return fn, log_group

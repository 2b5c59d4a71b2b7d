"""``StepdagWorkflow``: one workflow's state machine, published version and ``live`` alias."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, CfnDeletionPolicy, Fn, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra.nag import acknowledge
from infra.settings import Deployment, SfnLogLevel, StateMachineKind
from infra.workflows import WorkflowSpec


class StepdagWorkflow(Construct):
    """State machine from the committed ASL, its CloudWatch log group, version and alias.

    Rollout: every definition (or pinned Lambda version) change publishes a new state
    machine version; the ``live`` alias then shifts to it as ``deployment`` says, and a
    CANARY/LINEAR shift is rolled back by CloudFormation when a ``rollback_alarm_names``
    alarm fires. Old versions are retained so in-flight runs finish on their own version.
    Start runs on ``alias_arn``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: WorkflowSpec,
        versions: Mapping[str, lambda_.IVersion],
        state_machine_type: StateMachineKind = "STANDARD",
        log_level: SfnLogLevel = "ALL",
        include_execution_data: bool = False,
        deployment: Deployment | None = None,
        rollback_alarm_names: Sequence[str] = (),
        retain_logs: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.state_machine_type = state_machine_type
        deployment = deployment or Deployment()
        missing = spec.placeholders - versions.keys()
        if missing:
            raise ValueError(f"workflow {spec.name!r}: no function for {sorted(missing)}")
        stack_name = Stack.of(self).stack_name

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The vendedlogs prefix keeps Step Functions' log delivery from growing the
            # account's CloudWatch Logs resource policy (10 KB limit) per state machine.
            log_group_name=f"{c.STATE_MACHINE_LOG_GROUP_PREFIX}{stack_name}-{spec.name}",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.RETAIN if retain_logs else RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"{stack_name}-{spec.name}",
            definition_body=sfn.DefinitionBody.from_string(spec.definition_text),
            definition_substitutions={
                key: versions[key].function_arn for key in sorted(spec.placeholders)
            },
            state_machine_type=sfn.StateMachineType[state_machine_type],
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel[log_level],
                # Payloads are only {node, status} pointers, but user params travel in the
                # first input: keep data out of logs unless asked for.
                include_execution_data=include_execution_data,
            ),
            comment=f"stepdag workflow {spec.name} (asl sha256 {spec.definition_sha256[:12]})",
        )
        # Versions of each function: a retained state machine version keeps invoking the
        # function version it was published with (see NodeRunnerFunctions).
        self._functions = [versions[key].lambda_ for key in sorted(spec.placeholders)]
        invoke = iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[f"{fn.function_arn}:*" for fn in self._functions],
        )
        self.state_machine.add_to_role_policy(invoke)

        cfn_state_machine = self.state_machine.node.default_child
        assert isinstance(cfn_state_machine, sfn.CfnStateMachine)
        self.version = sfn.CfnStateMachineVersion(
            self,
            "Version",
            state_machine_arn=self.state_machine.state_machine_arn,
            # A new revision id (any definition/config change) replaces this resource,
            # which publishes a new version; RETAIN on replace keeps the old one.
            state_machine_revision_id=cfn_state_machine.attr_state_machine_revision_id,
            description=f"asl sha256 {spec.definition_sha256}",
        )
        self.version.cfn_options.update_replace_policy = CfnDeletionPolicy.RETAIN
        # Retain on delete too (CloudFormation lint W3011 wants both): deleting the stack
        # deletes the state machine, and with it every version, anyway.
        self.version.cfn_options.deletion_policy = CfnDeletionPolicy.RETAIN

        preference: dict[str, object] = {
            "state_machine_version_arn": self.version.attr_arn,
            "type": deployment.type,
        }
        if deployment.type != "ALL_AT_ONCE":
            preference["percentage"] = deployment.percentage
            preference["interval"] = deployment.interval_minutes
            if rollback_alarm_names:
                preference["alarms"] = list(rollback_alarm_names)
        self.alias = sfn.CfnStateMachineAlias(
            self,
            "Alias",
            name=c.STATE_MACHINE_ALIAS,
            description=f"stepdag workflow {spec.name}: start runs here",
            deployment_preference=sfn.CfnStateMachineAlias.DeploymentPreferenceProperty(
                **preference  # type: ignore[arg-type]
            ),
        )
        # Built from the state machine ARN (not Ref of the alias) so alarms can watch the
        # alias while the alias names those alarms, without a dependency cycle.
        self.alias_arn = Fn.join(":", [self.state_machine.state_machine_arn, c.STATE_MACHINE_ALIAS])
        self._acknowledge(log_level)

    def executions_arn(self, suffix: str = "*") -> str:
        """``arn:…:execution:<state machine name>:<suffix>``: this workflow's executions
        (``*`` for IAM resources; ``""`` for an event-pattern prefix)."""
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:{suffix}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge(self, log_level: SfnLogLevel) -> None:
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs vended log delivery (logs:CreateLogDelivery, "
            "PutResourcePolicy, ...) and X-Ray PutTraceSegments support no resource-level "
            "permissions; AWS documents '*' for both.",
        )
        stack = Stack.of(self)
        for fn in self._functions:
            logical_id = stack.get_logical_id(fn.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "Invoke is limited to versions of this stack's node-runner function: "
                "each state machine version pins the function version it was published with, "
                "and retained versions must keep invoking theirs during a rollout.",
            )
        if log_level != "ALL":
            acknowledge(
                self.state_machine,
                "AwsSolutions-SF1",
                "Log level lowered to ERROR on purpose by the stepdag:stateMachineLogLevel "
                "context flag (cost); node outcomes are still in the node-state table.",
            )

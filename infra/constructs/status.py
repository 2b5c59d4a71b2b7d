"""``StepdagStatusEvents``: Step Functions status-change events -> the status-recorder Lambda.

* An EventBridge rule on the default bus matches "Step Functions Execution Status Change"
  events (source ``aws.states``) of THIS stack's state machines only: the execution ARN
  must start with ``…:execution:<state machine name>:`` (the form of both unqualified and
  alias/version-qualified execution ARNs; a bare prefix of the name would also match a
  longer name of another stack).
* Its target is ``stepdag.handlers.status.handler`` (the node runner's code asset), which
  records final statuses in the table (docs/status-events.md).
* Failures are kept, never dropped: EventBridge retries delivery
  (``STATUS_TARGET_RETRY_ATTEMPTS``), Lambda retries a failed event
  (``STATUS_FUNCTION_RETRY_ATTEMPTS``), and both send what they give up on to one
  SSE-encrypted SQS dead-letter queue; an alarm fires on its depth or on function errors.
* Least privilege: item access on the table (and object access on the bucket, for an
  output over the offload threshold), ``states:DescribeExecution`` on this stack's
  executions (payloads the event left out), logs on its own log group.

STANDARD state machines only: EXPRESS executions emit no status-change events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.constructs.functions import (
    acknowledge_storage_grants,
    function_role,
    stepdag_function,
)
from infra.constructs.rollout import live_alias
from infra.constructs.storage import StepdagStorage
from infra.constructs.workflow import StepdagWorkflow
from infra.nag import acknowledge
from stepdag.constants import STATUS_EVENT_DETAIL_TYPE, STATUS_EVENT_SOURCE

STATUS_MAX_EVENT_AGE = Duration.hours(6)  # Lambda's async retries of one event, at most

AlarmFactory = Callable[..., cw.Alarm]
"""``(construct_id, alarm_name, **cw.Alarm props)``: the observability construct's alarms
(its SNS topic, ALARM and OK actions)."""


class StepdagStatusEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        storage: StepdagStorage,
        workflows: Mapping[str, StepdagWorkflow],
        add_alarm: AlarmFactory | None = None,
        log_level: str = "INFO",
        retain_data: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        ordered = [workflows[name] for name in sorted(workflows)]
        if not ordered:
            raise ValueError("StepdagStatusEvents needs at least one workflow")
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.STATUS_DLQ_RETENTION_DAYS),
            removal_policy=removal,
        )
        self.function = self._function(code, storage, ordered, log_level, removal)
        # The rule invokes the live alias (a CANARY/LINEAR rollout moves it gradually).
        self.alias = live_alias(
            self,
            self.function,
            retry_attempts=c.STATUS_FUNCTION_RETRY_ATTEMPTS,
            max_event_age=STATUS_MAX_EVENT_AGE,
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="stepdag: record execution status changes of this stack's workflows",
            event_pattern=events.EventPattern(
                source=[STATUS_EVENT_SOURCE],
                detail_type=[STATUS_EVENT_DETAIL_TYPE],
                detail={"executionArn": [{"prefix": w.executions_arn("")} for w in ordered]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.alias,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=c.STATUS_TARGET_RETRY_ATTEMPTS,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        self.alarm: cw.Alarm | None = None
        if add_alarm is not None:
            self.alarm = self._alarm(add_alarm)
        self._acknowledge(storage, ordered)

    def _function(
        self,
        code: lambda_.Code,
        storage: StepdagStorage,
        workflows: list[StepdagWorkflow],
        log_level: str,
        removal: RemovalPolicy,
    ) -> lambda_.Function:
        log_group, self.role = function_role(
            self,
            logs_id="FunctionLogs",
            role_id="FunctionRole",
            description="stepdag status recorder",
            removal_policy=removal,
        )
        storage.grant_store(self.role, update_executions=True)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(c.STATUS_EXECUTION_ACTIONS),
                resources=[w.executions_arn("*") for w in workflows],
            )
        )
        stack = Stack.of(self)
        return stepdag_function(
            self,
            "Function",
            handler=c.STATUS_HANDLER,
            code=code,
            memory_mb=c.STATUS_FUNCTION_MEMORY_MB,
            timeout_s=c.STATUS_FUNCTION_TIMEOUT_S,
            role=self.role,
            log_group=log_group,
            storage=storage,
            service_name=c.STATUS_SERVICE_NAME,
            log_level=log_level,
            environment={
                # {workflow: state machine ARN}: adoption names the workflow of a run
                # started outside the API.
                c.ENV_STATE_MACHINES: stack.to_json_string(
                    {w.spec.name: w.state_machine.state_machine_arn for w in workflows}
                ),
                c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRIC_NAMESPACE,
            },
            # Events Lambda gave up on (after its retries) land next to the undeliverable
            # ones, so one queue and one alarm cover every lost status change.
            dead_letter_queue=self.dead_letters,
            retry_attempts=c.STATUS_FUNCTION_RETRY_ATTEMPTS,
            max_event_age=STATUS_MAX_EVENT_AGE,
            description="stepdag status recorder (Step Functions status-change events)",
        )

    def _alarm(self, add_alarm: AlarmFactory) -> cw.Alarm:
        period = Duration.minutes(5)
        depth = self.dead_letters.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=period, label="dead-lettered events"
        )
        errors = self.function.metric_errors(statistic="Sum", period=period, label="errors")
        return add_alarm(
            c.ALARM_STATUS_EVENTS,
            c.alarm_name(Stack.of(self).stack_name, c.ALARM_STATUS_EVENTS),
            alarm_description="execution status changes failed to record or were "
            f"dead-lettered (runbook: docs/runbooks.md#{c.ALARM_STATUS_EVENTS.lower()})",
            metric=cw.MathExpression(
                expression="MAX([FILL(dlq, 0), FILL(errors, 0)])",
                using_metrics={"dlq": depth, "errors": errors},
                label="dead-lettered or failed status events",
                period=period,
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _acknowledge(self, storage: StepdagStorage, workflows: list[StepdagWorkflow]) -> None:
        stack = Stack.of(self)
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_storage_grants(
            self.role,
            storage,
            "An execution output over the offload threshold is written under a per-run "
            "key of this one bucket; no other bucket and no bucket-level writes.",
        )
        for workflow in workflows:
            sm = stack.get_logical_id(workflow.state_machine.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:<{sm}.Name>:*]",
                "DescribeExecution acts on executions, whose ARNs end in a run name chosen "
                "at start; scoped to executions of this stack's state machine.",
            )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue IS the dead-letter queue (of the rule target and of the function's "
            "async invocations); a DLQ of a DLQ would only move the problem.",
        )

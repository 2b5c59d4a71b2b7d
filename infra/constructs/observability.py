"""Alarms (to an encrypted SNS topic) and one CloudWatch dashboard for the whole stack.

Workflow alarms live here; the API, DynamoDB, Lambda and queue alarms in
``infra.constructs.alarms``, the dashboard rows beyond workflows and functions in
``infra.constructs.dashboard``; the stack hooks each part up as it builds it.

Alarm names are fixed strings from ``infra.constants.alarm_name`` so the ``live`` aliases
can name their rollback alarms without referencing them, and docs/runbooks.md can be
searched by the alarm's kind suffix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.constructs import alarms, dashboard
from infra.constructs.alarms import PERIOD
from infra.constructs.dashboard import node_metric
from infra.constructs.functions import function_id
from infra.constructs.storage import StepdagStorage
from infra.constructs.workflow import StepdagWorkflow

SFN_NAMESPACE = "AWS/States"
INDEX_NAMES: tuple[str, ...] = tuple(name for name, _, _ in c.TABLE_GSIS)


class StepdagObservability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflows: Sequence[StepdagWorkflow],
        functions: Mapping[str, lambda_.Function],
        p95_duration: Mapping[str, Duration] | None = None,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stack_name = Stack.of(self).stack_name
        p95_duration = p95_duration or {}

        # CloudWatch can only publish to an encrypted topic through a customer-managed key
        # whose policy lets it (the AWS-managed aws/sns key cannot be granted).
        self.key = kms.Key(
            self,
            c.ALARM_KEY_ID,
            enable_key_rotation=True,
            description="stepdag alarm topic encryption",
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(
            self,
            c.ALARM_TOPIC_ID,
            display_name="stepdag alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(alarm_email))
        self._action = cw_actions.SnsAction(self.topic)

        self.alarms: dict[str, cw.Alarm] = {}
        self.dashboard = cw.Dashboard(
            self,
            c.DASHBOARD_ID,
            dashboard_name=c.dashboard_name(self.stack_name),
            default_interval=Duration.hours(24),
        )
        for workflow in workflows:
            self._workflow(workflow, p95_duration.get(workflow.spec.name))
        self.node_runners = dict(functions)
        # Every function of the stack, by display name (the dollars-per-day row reads them).
        self.functions: dict[str, lambda_.Function] = {}
        for key, fn in functions.items():
            # A node runner's invocation also fails with the node's own exception.
            self.add_function(function_id(key), fn, error_rate=True)

    # -- alarms ---------------------------------------------------------------------------

    def _alarm(self, construct_id: str, name: str, **props: object) -> cw.Alarm:
        alarm = cw.Alarm(self, construct_id, alarm_name=name, **props)  # type: ignore[arg-type]
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[name] = alarm
        return alarm

    def add_alarm(self, construct_id: str, name: str, **props: object) -> cw.Alarm:
        """An alarm of another construct on this topic (name from ``constants.alarm_name``;
        its kind needs a docs/runbooks.md section)."""
        return self._alarm(construct_id, name, **props)

    def _sfn_metric(self, metric_name: str, arn: str, statistic: str, label: str) -> cw.Metric:
        return cw.Metric(
            namespace=SFN_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"StateMachineArn": arn},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )

    def _workflow(self, workflow: StepdagWorkflow, p95: Duration | None) -> None:
        name = workflow.spec.name
        sm_arn = workflow.state_machine.state_machine_arn
        # Executions started on the alias report under the alias ARN; ones started on the
        # bare state machine under its own ARN. Alarm on both (6 of the 10 metrics an alarm
        # may use).
        failed_terms = {}
        for i, (arn, where) in enumerate(((sm_arn, "sm"), (workflow.alias_arn, "alias"))):
            for metric_name in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
                failed_terms[f"{where}{i}{metric_name.lower()}"] = self._sfn_metric(
                    metric_name, arn, "Sum", f"{where} {metric_name}"
                )
        failed = cw.MathExpression(
            expression=" + ".join(f"FILL({k}, 0)" for k in failed_terms),
            using_metrics=failed_terms,
            label="failed + timed out + aborted",
            period=PERIOD,
        )
        self._alarm(
            f"{name}{c.ALARM_EXECUTIONS_FAILED}",
            c.alarm_name(self.stack_name, c.ALARM_EXECUTIONS_FAILED, name),
            alarm_description=f"{name}: at least one run failed, timed out or was aborted "
            f"(runbook: docs/runbooks.md#{c.ALARM_EXECUTIONS_FAILED.lower()})",
            metric=failed,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

        express = workflow.state_machine_type == "EXPRESS"
        default_p95 = (
            c.DEFAULT_EXPRESS_P95_DURATION_SECONDS if express else c.DEFAULT_P95_DURATION_SECONDS
        )
        threshold = p95 or Duration.seconds(default_p95)
        duration = self._sfn_metric("ExecutionTime", sm_arn, "p95", "p95 run time (ms)")
        self._alarm(
            f"{name}{c.ALARM_EXECUTION_DURATION_P95}",
            c.alarm_name(self.stack_name, c.ALARM_EXECUTION_DURATION_P95, name),
            alarm_description=f"{name}: p95 run time above {threshold.to_seconds()} s "
            f"(runbook: docs/runbooks.md#{c.ALARM_EXECUTION_DURATION_P95.lower()})",
            metric=duration.with_(period=Duration.minutes(15)),
            threshold=threshold.to_milliseconds(),
            evaluation_periods=2,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

        node_failures: list[cw.IMetric] = []
        for node in workflow.spec.nodes:
            failed_m = node_metric(name, node, c.METRIC_NODE_FAILED)
            ok_m = node_metric(name, node, c.METRIC_NODE_SUCCEEDED)
            node_failures.append(failed_m)
            # Below MIN_SAMPLES node runs in a period the rate reads 0: one failed retry
            # of a rarely-run node is not an incident (the executions alarm covers runs).
            rate = cw.MathExpression(
                expression=(
                    f"IF((FILL(f, 0) + FILL(s, 0)) >= {c.NODE_ERROR_RATE_MIN_SAMPLES}, "
                    "100 * FILL(f, 0) / (FILL(f, 0) + FILL(s, 0)), 0)"
                ),
                using_metrics={"f": failed_m, "s": ok_m},
                label=f"{node} error rate (%)",
                period=PERIOD,
            )
            self._alarm(
                f"{name}{node}{c.ALARM_NODE_ERROR_RATE}",
                c.alarm_name(self.stack_name, c.ALARM_NODE_ERROR_RATE, name, node),
                alarm_description=f"{name}.{node}: more than "
                f"{c.NODE_ERROR_RATE_THRESHOLD_PCT:g}% of node runs failed "
                f"(runbook: docs/runbooks.md#{c.ALARM_NODE_ERROR_RATE.lower()})",
                metric=rate,
                threshold=c.NODE_ERROR_RATE_THRESHOLD_PCT,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )

        self.dashboard.add_widgets(
            cw.TextWidget(markdown=f"## Workflow `{name}`", width=24, height=1),
            cw.GraphWidget(
                title=f"{name}: runs",
                left=[
                    self._sfn_metric("ExecutionsStarted", sm_arn, "Sum", "started"),
                    self._sfn_metric("ExecutionsSucceeded", sm_arn, "Sum", "succeeded"),
                    failed,
                ],
                width=8,
            ),
            cw.GraphWidget(
                title=f"{name}: run time",
                left=[
                    self._sfn_metric("ExecutionTime", sm_arn, "p50", "p50 (ms)"),
                    duration,
                ],
                width=8,
            ),
            cw.GraphWidget(title=f"{name}: node failures", left=node_failures, width=8),
        )
        self.dashboard.add_widgets(*dashboard.node_widgets(name, workflow.spec.nodes))

    def add_table(self, storage: StepdagStorage) -> None:
        """Throttle and system-error alarms on the node-state table, and its row."""
        alarms.table_alarms(self.add_alarm, self, storage.table, INDEX_NAMES)
        self.dashboard.add_widgets(*dashboard.table_widgets(storage.table, INDEX_NAMES))

    def add_api(self, rest_api: apigw.RestApi) -> None:
        """5XX-rate and p99-latency alarms on the REST API, and its row."""
        alarms.api_alarms(self.add_alarm, self, rest_api)
        self.dashboard.add_widgets(*dashboard.api_widgets(rest_api))

    def add_dead_letters(self, name: str, queue: sqs.Queue) -> None:
        """An alarm as soon as ``queue`` (a dead-letter queue) holds a message."""
        alarms.dead_letter_alarm(self.add_alarm, self, name, queue)

    def add_cost(
        self, storage: StepdagStorage, rest_api: apigw.RestApi | None, *, standard: bool
    ) -> None:
        """The dollars-per-day row, over every function added so far."""
        total, parts = dashboard.cost_expression(
            node_runners=self.node_runners,
            functions=self.functions,
            table=storage.table,
            index_names=INDEX_NAMES,
            rest_api=rest_api,
            standard=standard,
        )
        self.dashboard.add_widgets(*dashboard.cost_widgets(total, parts))

    def add_function(self, name: str, fn: lambda_.Function, *, error_rate: bool) -> None:
        """Throttles, errors and duration-near-timeout alarms, and the function's row
        (``error_rate``: see ``alarms.function_alarms``)."""
        self.functions[name] = fn
        alarms.function_alarms(self.add_alarm, self, name, fn, error_rate=error_rate)
        self._alarm(
            f"{name}{c.ALARM_LAMBDA_THROTTLES}",
            c.alarm_name(self.stack_name, c.ALARM_LAMBDA_THROTTLES, name),
            alarm_description=f"{name}: invocations throttled "
            f"(runbook: docs/runbooks.md#{c.ALARM_LAMBDA_THROTTLES.lower()})",
            metric=fn.metric_throttles(statistic="Sum", period=PERIOD),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.dashboard.add_widgets(
            cw.TextWidget(markdown=f"## Function `{name}`", width=24, height=1),
            cw.GraphWidget(
                title=f"{name}: invocations",
                left=[
                    fn.metric_invocations(statistic="Sum", period=PERIOD),
                    fn.metric_errors(statistic="Sum", period=PERIOD),
                    fn.metric_throttles(statistic="Sum", period=PERIOD),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title=f"{name}: duration",
                left=[
                    fn.metric_duration(statistic=p, period=PERIOD, label=f"{p} (ms)")
                    for p in ("p50", "p95", "p99")
                ],
                right=[fn.metric("ConcurrentExecutions", statistic="Maximum", period=PERIOD)],
                width=12,
            ),
        )

    def rollback_alarm_names(self, workflow: str) -> list[str]:
        return rollback_alarm_names(self.stack_name, workflow)


def rollback_alarm_names(stack_name: str, workflow: str) -> list[str]:
    """Alarms a CANARY/LINEAR alias shift watches (and rolls back on)."""
    return [c.alarm_name(stack_name, c.ALARM_EXECUTIONS_FAILED, workflow)]

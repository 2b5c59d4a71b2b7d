"""The stack's infrastructure alarms: API Gateway, DynamoDB, every Lambda, every queue.

Each alarm is named ``constants.alarm_name(stack, <kind>, <parts…>)`` and its description
ends in ``(runbook: docs/runbooks.md#<kind, lower-case>)``; docs/runbooks.md has one
section per kind (the tests check every alarm's anchor against its headings).

Thresholds (why each, in docs/runbooks.md):

* ``ApiServerErrors``: more than 1 % of requests answered 5XX in 2 of 3 five-minute
  periods, once there are at least 10 requests in a period.
* ``ApiLatencyP99``: p99 latency above 3 s (3x the 1 s p95 goal) in 2 of 3 periods.
* ``TableThrottles``: any read or write throttled (table or index), 2 periods in a row.
* ``TableSystemErrors``: any DynamoDB 500 on an operation the store uses, 2 periods in a row.
* ``LambdaErrors``: a node runner with more than 10 % of at least 5 invocations failing
  (its errors include nodes' own exceptions); any error of the API or the status
  recorder (their handlers catch exceptions, so an error is a crash, timeout or OOM).
* ``LambdaDurationNearTimeout``: p99 duration above 85 % of the function's timeout.
* ``DeadLetters``: any message visible in a dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c

AlarmFactory = Callable[..., cw.Alarm]
"""``(construct_id, alarm_name, **cw.Alarm props)``: an alarm on the stack's topic."""

PERIOD = Duration.minutes(5)
RUNBOOK = "docs/runbooks.md"
# The names the API and status-recorder functions go by in alarm names and on the
# dashboard (node runners go by their size key: NodeRunner, NodeRunner1024mb60s, ...).
API_FUNCTION_NAME = "ApiFunction"
STATUS_FUNCTION_NAME = "StatusRecorder"
AUTHORIZER_FUNCTION_NAME = "ApiAuthorizer"

# Alarm kinds (docs/runbooks.md section headings).
ALARM_API_SERVER_ERRORS = "ApiServerErrors"
ALARM_API_LATENCY_P99 = "ApiLatencyP99"
ALARM_TABLE_THROTTLES = "TableThrottles"
ALARM_TABLE_SYSTEM_ERRORS = "TableSystemErrors"
ALARM_LAMBDA_ERRORS = "LambdaErrors"
ALARM_LAMBDA_DURATION = "LambdaDurationNearTimeout"
ALARM_DEAD_LETTERS = "DeadLetters"
ALARM_KINDS: tuple[str, ...] = (
    ALARM_API_SERVER_ERRORS,
    ALARM_API_LATENCY_P99,
    ALARM_TABLE_THROTTLES,
    ALARM_TABLE_SYSTEM_ERRORS,
    ALARM_LAMBDA_ERRORS,
    ALARM_LAMBDA_DURATION,
    ALARM_DEAD_LETTERS,
)

API_5XX_THRESHOLD_PCT = 1.0
API_MIN_REQUESTS = 10  # below this many requests in a period the 5XX rate reads 0
API_P99_LATENCY_MS = 3_000
LAMBDA_ERROR_RATE_PCT = 10.0
LAMBDA_MIN_INVOCATIONS = 5
DURATION_TIMEOUT_SHARE = 0.85
# The operations the store calls (stepdag.runtime.dynamodb); SystemErrors is per operation.
TABLE_OPERATIONS: tuple[str, ...] = (
    "BatchGetItem",
    "GetItem",
    "PutItem",
    "Query",
    "TransactWriteItems",
    "UpdateItem",
)


def runbook(kind: str) -> str:
    return f"(runbook: {RUNBOOK}#{kind.lower()})"


def _rate(errors: cw.IMetric, total: cw.IMetric, *, minimum: int, label: str) -> cw.MathExpression:
    """100 * errors / total, or 0 below ``minimum`` samples (one failure of two is no
    incident; the count alarms of the same resource still see it)."""
    return cw.MathExpression(
        expression=f"IF(FILL(n, 0) >= {minimum}, 100 * FILL(e, 0) / FILL(n, 0), 0)",
        using_metrics={"e": errors, "n": total},
        label=label,
        period=PERIOD,
    )


def _sum_of(metrics: dict[str, cw.IMetric], label: str) -> cw.MathExpression:
    return cw.MathExpression(
        expression=" + ".join(f"FILL({k}, 0)" for k in metrics),
        using_metrics=metrics,
        label=label,
        period=PERIOD,
    )


def api_alarms(add_alarm: AlarmFactory, scope: Construct, rest_api: apigw.RestApi) -> None:
    stack = Stack.of(scope).stack_name
    errors = rest_api.metric_server_error(statistic="Sum", period=PERIOD)
    requests = rest_api.metric_count(statistic="Sum", period=PERIOD)
    add_alarm(
        f"Api{ALARM_API_SERVER_ERRORS}",
        c.alarm_name(stack, ALARM_API_SERVER_ERRORS),
        alarm_description=f"REST API: more than {API_5XX_THRESHOLD_PCT:g}% of requests "
        f"answered 5XX {runbook(ALARM_API_SERVER_ERRORS)}",
        metric=_rate(errors, requests, minimum=API_MIN_REQUESTS, label="5XX rate (%)"),
        threshold=API_5XX_THRESHOLD_PCT,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
    add_alarm(
        f"Api{ALARM_API_LATENCY_P99}",
        c.alarm_name(stack, ALARM_API_LATENCY_P99),
        alarm_description=f"REST API: p99 latency above {API_P99_LATENCY_MS} ms "
        f"{runbook(ALARM_API_LATENCY_P99)}",
        metric=rest_api.metric_latency(statistic="p99", period=PERIOD),
        threshold=API_P99_LATENCY_MS,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


def table_throttles(table: dynamodb.Table, index_names: tuple[str, ...]) -> cw.MathExpression:
    """Read + write throttle events of the table and of each index (reported apart)."""
    metrics: dict[str, cw.IMetric] = {}
    for i, index in enumerate(("", *index_names)):
        dims = {"TableName": table.table_name}
        if index:
            dims["GlobalSecondaryIndexName"] = index
        for kind in ("Read", "Write"):
            metrics[f"{kind.lower()}{i}"] = cw.Metric(
                namespace="AWS/DynamoDB",
                metric_name=f"{kind}ThrottleEvents",
                dimensions_map=dims,
                statistic="Sum",
                period=PERIOD,
            )
    return _sum_of(metrics, "throttled requests")


def table_system_errors(table: dynamodb.Table) -> cw.MathExpression:
    metrics: dict[str, cw.IMetric] = {
        f"op{i}": cw.Metric(
            namespace="AWS/DynamoDB",
            metric_name="SystemErrors",
            dimensions_map={"TableName": table.table_name, "Operation": op},
            statistic="Sum",
            period=PERIOD,
        )
        for i, op in enumerate(TABLE_OPERATIONS)
    }
    return _sum_of(metrics, "system errors")


def table_alarms(
    add_alarm: AlarmFactory,
    scope: Construct,
    table: dynamodb.Table,
    index_names: tuple[str, ...],
) -> None:
    stack = Stack.of(scope).stack_name
    for kind, metric, what in (
        (ALARM_TABLE_THROTTLES, table_throttles(table, index_names), "requests throttled"),
        (ALARM_TABLE_SYSTEM_ERRORS, table_system_errors(table), "DynamoDB system errors"),
    ):
        add_alarm(
            f"Table{kind}",
            c.alarm_name(stack, kind),
            alarm_description=f"node-state table: {what} for 10 minutes {runbook(kind)}",
            metric=metric,
            threshold=1,
            evaluation_periods=2,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )


def function_timeout_s(fn: lambda_.Function) -> float:
    if fn.timeout is None:  # every stepdag function sets one (stepdag_function)
        raise ValueError(f"{fn.node.path}: a Lambda function without a timeout")
    return fn.timeout.to_seconds()


def function_alarms(
    add_alarm: AlarmFactory,
    scope: Construct,
    name: str,
    fn: lambda_.Function,
    *,
    error_rate: bool,
) -> None:
    """Errors and duration near the timeout (Throttles: ``StepdagObservability``).

    ``error_rate``: alarm on the share of failed invocations (node runners, whose
    invocations fail with the node's own exception too) instead of on any error.
    """
    stack = Stack.of(scope).stack_name
    errors = fn.metric_errors(statistic="Sum", period=PERIOD)
    if error_rate:
        metric: cw.IMetric = _rate(
            errors,
            fn.metric_invocations(statistic="Sum", period=PERIOD),
            minimum=LAMBDA_MIN_INVOCATIONS,
            label="error rate (%)",
        )
        threshold, what = LAMBDA_ERROR_RATE_PCT, f"more than {LAMBDA_ERROR_RATE_PCT:g}% of"
        operator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
    else:
        metric, threshold, what = errors, 1, "at least one of its"
        operator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    add_alarm(
        f"{name}{ALARM_LAMBDA_ERRORS}",
        c.alarm_name(stack, ALARM_LAMBDA_ERRORS, name),
        alarm_description=f"{name}: {what} invocations failed (error, crash, timeout or "
        f"out of memory) {runbook(ALARM_LAMBDA_ERRORS)}",
        metric=metric,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=operator,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )
    timeout_s = function_timeout_s(fn)
    limit_ms = round(timeout_s * 1000 * DURATION_TIMEOUT_SHARE)
    add_alarm(
        f"{name}{ALARM_LAMBDA_DURATION}",
        c.alarm_name(stack, ALARM_LAMBDA_DURATION, name),
        alarm_description=f"{name}: p99 duration above {DURATION_TIMEOUT_SHARE:.0%} of its "
        f"{timeout_s:g} s timeout {runbook(ALARM_LAMBDA_DURATION)}",
        metric=fn.metric_duration(statistic="p99", period=Duration.minutes(15)),
        threshold=limit_ms,
        evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


def dead_letter_alarm(
    add_alarm: AlarmFactory, scope: Construct, name: str, queue: sqs.Queue
) -> None:
    add_alarm(
        f"{name}{ALARM_DEAD_LETTERS}",
        c.alarm_name(Stack.of(scope).stack_name, ALARM_DEAD_LETTERS, name),
        alarm_description=f"{name}: events in the dead-letter queue (deliveries that failed "
        f"every retry) {runbook(ALARM_DEAD_LETTERS)}",
        metric=queue.metric_approximate_number_of_messages_visible(
            statistic="Maximum", period=PERIOD
        ),
        threshold=0,
        evaluation_periods=1,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )

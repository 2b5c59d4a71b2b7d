"""Dashboard rows beyond the per-workflow and per-function ones: the API, DynamoDB, the
node runner's own metrics (cache hit rate, retries, node duration percentiles) and an
estimate of dollars per day.

The node metrics are the EMF metrics ``stepdag.handlers.observability.PowertoolsObserver``
publishes: namespace ``stepdag``, dimensions ``service``/``workflow``/``node``, names
``CacheHit``/``CacheMiss``/``NodeRetries`` (Count) and ``NodeDuration`` (Milliseconds).

Dollars per day (docs/operations.md#dollars-per-day) is metric math over one-day sums, at
the us-east-1 prices of docs/cost.md:

* Step Functions Standard: $0.025 per 1,000 state transitions. CloudWatch has no
  transition count per state machine, so it is estimated as node-runner invocations x
  ``TRANSITIONS_PER_INVOCATION`` (every Task state is one invocation; Choice, Pass, Map
  and Parallel states add the rest: 34/31, 8/6 and 12/9 in docs/cost.md's examples,
  the largest ratio taken). Express workflows are priced otherwise and not modelled.
* Lambda arm64: $0.0000133334 per GB-second (Duration sum x memory) + $0.20 per 1M
  requests, for every function of the stack.
* DynamoDB on-demand: $0.625 per 1M WRU, $0.125 per 1M RRU (table and indexes).
* API Gateway REST: $3.50 per 1M requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_

from infra import constants as c
from infra.constructs.alarms import PERIOD, table_system_errors, table_throttles

DAY = Duration.days(1)
PRICE_TRANSITION = 0.025 / 1_000
TRANSITIONS_PER_INVOCATION = 1.34
PRICE_LAMBDA_GB_S = 0.0000133334
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_WRU = 0.625 / 1_000_000
PRICE_RRU = 0.125 / 1_000_000
PRICE_API_REQUEST = 3.50 / 1_000_000
NODE_PERCENTILES: tuple[str, ...] = ("p50", "p95", "p99")


def _header(text: str) -> cw.TextWidget:
    return cw.TextWidget(markdown=f"## {text}", width=24, height=1)


def node_metric(
    workflow: str, node: str, metric_name: str, *, statistic: str = "Sum", label: str = ""
) -> cw.Metric:
    """An EMF metric from the node runner: dimensions service, workflow, node."""
    return cw.Metric(
        namespace=c.METRIC_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={
            c.DIMENSION_SERVICE: c.SERVICE_NAME,
            c.DIMENSION_WORKFLOW: workflow,
            c.DIMENSION_NODE: node,
        },
        statistic=statistic,
        period=PERIOD,
        label=label or f"{node} {metric_name}",
    )


def api_widgets(rest_api: apigw.RestApi) -> list[cw.IWidget]:
    return [
        _header("REST API"),
        cw.GraphWidget(
            title="API: requests",
            left=[
                rest_api.metric_count(statistic="Sum", period=PERIOD, label="requests"),
                rest_api.metric_client_error(statistic="Sum", period=PERIOD, label="4XX"),
                rest_api.metric_server_error(statistic="Sum", period=PERIOD, label="5XX"),
            ],
            width=12,
        ),
        cw.GraphWidget(
            title="API: latency (ms)",
            left=[
                rest_api.metric_latency(statistic="p50", period=PERIOD, label="p50"),
                rest_api.metric_latency(statistic="p99", period=PERIOD, label="p99"),
                rest_api.metric_integration_latency(
                    statistic="p99", period=PERIOD, label="integration p99"
                ),
            ],
            width=12,
        ),
    ]


def table_widgets(table: dynamodb.Table, index_names: tuple[str, ...]) -> list[cw.IWidget]:
    return [
        _header("DynamoDB node-state table"),
        cw.GraphWidget(
            title="DynamoDB: consumed capacity units",
            left=[
                table.metric_consumed_read_capacity_units(
                    statistic="Sum", period=PERIOD, label="RRU"
                ),
                table.metric_consumed_write_capacity_units(
                    statistic="Sum", period=PERIOD, label="WRU"
                ),
            ],
            width=8,
        ),
        cw.GraphWidget(
            title="DynamoDB: throttles and system errors",
            left=[table_throttles(table, index_names), table_system_errors(table)],
            width=8,
        ),
        cw.GraphWidget(
            title="DynamoDB: latency (ms)",
            left=[
                table.metric_successful_request_latency(
                    dimensions_map={"TableName": table.table_name, "Operation": op},
                    statistic="p99",
                    period=PERIOD,
                    label=f"{op} p99",
                )
                for op in ("GetItem", "PutItem", "Query")
            ],
            width=8,
        ),
    ]


def node_widgets(workflow: str, nodes: Sequence[str]) -> list[cw.IWidget]:
    """Cache hit rate, retries and p50/p95/p99 duration of each node of one workflow."""
    hits = {f"h{i}": node_metric(workflow, n, "CacheHit") for i, n in enumerate(nodes)}
    misses = {f"m{i}": node_metric(workflow, n, "CacheMiss") for i, n in enumerate(nodes)}
    hit_sum = " + ".join(f"FILL({k}, 0)" for k in hits)
    miss_sum = " + ".join(f"FILL({k}, 0)" for k in misses)
    hit_rate = cw.MathExpression(
        # A period without lookups reads 0 (the label says so), not a division by zero.
        expression=f"IF(({hit_sum}) + ({miss_sum}) > 0, "
        f"100 * ({hit_sum}) / (({hit_sum}) + ({miss_sum})), 0)",
        using_metrics={**hits, **misses},
        label="cache hit rate (%, 0 without lookups)",
        period=PERIOD,
    )
    durations = [
        node_metric(workflow, n, "NodeDuration", statistic=p, label=f"{n} {p}")
        for n in nodes
        for p in NODE_PERCENTILES
    ]
    return [
        cw.GraphWidget(
            title=f"{workflow}: cache hit rate (%)", left=[hit_rate], width=6, left_y_axis=_pct()
        ),
        cw.GraphWidget(
            title=f"{workflow}: node retries",
            left=[node_metric(workflow, n, "NodeRetries", label=n) for n in nodes],
            width=6,
        ),
        cw.GraphWidget(
            title=f"{workflow}: node duration p50/p95/p99 (ms)", left=durations, width=12
        ),
    ]


def _pct() -> cw.YAxisProps:
    return cw.YAxisProps(min=0, max=100)


def cost_expression(
    *,
    node_runners: Mapping[str, lambda_.Function],
    functions: Mapping[str, lambda_.Function],
    table: dynamodb.Table,
    index_names: tuple[str, ...],
    rest_api: apigw.RestApi | None,
    standard: bool,
) -> tuple[cw.MathExpression, dict[str, cw.MathExpression]]:
    """(total $/day, {component: $/day}); see the module docstring for the formula."""
    parts: dict[str, tuple[str, dict[str, cw.IMetric]]] = {}
    if standard:
        runs: dict[str, cw.IMetric] = {
            f"r{i}": fn.metric_invocations(statistic="Sum")
            for i, fn in enumerate(node_runners.values())
        }
        parts["Step Functions"] = (
            f"{_num(PRICE_TRANSITION * TRANSITIONS_PER_INVOCATION)} * ("
            + " + ".join(f"FILL({k}, 0)" for k in runs)
            + ")",
            dict(runs),
        )
    lam_terms: list[str] = []
    lam_metrics: dict[str, cw.IMetric] = {}
    for i, fn in enumerate(functions.values()):
        memory_gb = _memory_mb(fn) / 1024
        lam_metrics[f"d{i}"] = fn.metric_duration(statistic="Sum")
        lam_metrics[f"i{i}"] = fn.metric_invocations(statistic="Sum")
        lam_terms.append(
            f"FILL(d{i}, 0) / 1000 * {_num(memory_gb * PRICE_LAMBDA_GB_S)}"
            f" + FILL(i{i}, 0) * {_num(PRICE_LAMBDA_REQUEST)}"
        )
    parts["Lambda"] = (" + ".join(lam_terms), lam_metrics)
    ddb_metrics: dict[str, cw.IMetric] = {}
    ddb_terms: list[str] = []
    for i, index in enumerate(("", *index_names)):
        dims = {"TableName": table.table_name}
        if index:
            dims["GlobalSecondaryIndexName"] = index
        for kind, price in (("Read", PRICE_RRU), ("Write", PRICE_WRU)):
            key = f"{kind[0].lower()}u{i}"
            ddb_metrics[key] = cw.Metric(
                namespace="AWS/DynamoDB",
                metric_name=f"Consumed{kind}CapacityUnits",
                dimensions_map=dims,
                statistic="Sum",
            )
            ddb_terms.append(f"FILL({key}, 0) * {_num(price)}")
    parts["DynamoDB"] = (" + ".join(ddb_terms), ddb_metrics)
    if rest_api is not None:
        parts["API Gateway"] = (
            f"FILL(api, 0) * {_num(PRICE_API_REQUEST)}",
            {"api": rest_api.metric_count(statistic="Sum")},
        )
    components = {
        name: cw.MathExpression(
            expression=expr, using_metrics=metrics, label=f"{name} $/day", period=DAY
        )
        for name, (expr, metrics) in parts.items()
    }
    ids = {f"c{i}": m for i, m in enumerate(components.values())}
    total = cw.MathExpression(
        expression=" + ".join(ids), using_metrics=ids, label="total $/day", period=DAY
    )
    return total, components


def cost_widgets(
    total: cw.MathExpression, components: Mapping[str, cw.IMetric]
) -> list[cw.IWidget]:
    return [
        _header("Dollars per day (estimate: docs/operations.md#dollars-per-day)"),
        cw.SingleValueWidget(title="$ per day (last day)", metrics=[total], width=6),
        cw.GraphWidget(
            title="$ per day by service",
            left=list(components.values()),
            period=DAY,
            width=18,
            stacked=True,
        ),
    ]


def _num(value: float) -> str:
    """A price as metric math reads it: plain decimals (no exponent notation)."""
    return f"{value:.15f}".rstrip("0")


def _memory_mb(fn: lambda_.Function) -> int:
    cfn = fn.node.default_child
    assert isinstance(cfn, lambda_.CfnFunction)
    memory = cfn.memory_size
    if not isinstance(memory, int):  # every stepdag function sets one (stepdag_function)
        raise ValueError(f"{fn.node.path}: a Lambda function without a memory size")
    return memory

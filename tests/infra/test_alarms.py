"""Alarms that catch every failure (each with its runbook) and the dashboard's rows.

Coverage is checked by what the alarms read, not by their names: every Lambda function's
Errors, Throttles and Duration, every queue's depth, the API's 5XX and latency, the
table's (and each index's) throttles and system errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from infra import constants as c
from infra.constructs import alarms, dashboard
from tests.infra.conftest import Synthesized

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
ANCHOR = re.compile(r"\(runbook: docs/runbooks\.md#([a-z0-9-]+)\)$")


def _alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def _reads(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(namespace, metric name, dimensions, statistic) of every metric an alarm reads."""
    if "MetricName" in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        return [(alarm["Namespace"], alarm["MetricName"], dims, stat)]
    out = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            out.append(
                (metric["Namespace"], metric["MetricName"], dims, query["MetricStat"]["Stat"])
            )
    return out


def _alarms_reading(
    synth: Synthesized, namespace: str, metric: str, **dims: Any
) -> list[dict[str, Any]]:
    return [
        a
        for a in _alarms(synth).values()
        if any(
            ns == namespace and name == metric and all(d.get(k) == v for k, v in dims.items())
            for ns, name, d, _ in _reads(a)
        )
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def runbook_headings() -> set[str]:
    return {
        _slug(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }


def alarms_without_runbook(synth: Synthesized) -> dict[str, str]:
    """{alarm name: its anchor} for every alarm whose runbook link names no section of
    docs/runbooks.md (or "" when it has no link)."""
    headings = runbook_headings()
    missing = {}
    for name, props in _alarms(synth).items():
        match = ANCHOR.search(props["AlarmDescription"])
        if match is None or match.group(1) not in headings:
            missing[name] = match.group(1) if match else ""
    return missing


def test_every_alarm_links_a_runbook_section_that_exists(synth: Synthesized) -> None:
    assert len(_alarms(synth)) > 30
    assert alarms_without_runbook(synth) == {}
    assert {k.lower() for k in alarms.ALARM_KINDS} <= runbook_headings()


def test_every_function_has_errors_throttles_and_near_timeout_alarms(
    synth: Synthesized,
) -> None:
    functions = synth.of_type("AWS::Lambda::Function")
    handlers = {v["Properties"]["Handler"] for v in functions.values()}
    assert {c.NODE_RUNNER_HANDLER, c.API_HANDLER, c.STATUS_HANDLER} <= handlers
    for logical_id, fn in functions.items():
        ref = {"Ref": logical_id}
        for metric in ("Errors", "Throttles"):
            assert _alarms_reading(synth, "AWS/Lambda", metric, FunctionName=ref), (
                logical_id,
                metric,
            )
        (duration,) = _alarms_reading(synth, "AWS/Lambda", "Duration", FunctionName=ref)
        assert duration["ExtendedStatistic"] == "p99"
        timeout_ms = fn["Properties"]["Timeout"] * 1000
        assert 0.8 * timeout_ms <= duration["Threshold"] <= 0.9 * timeout_ms
        assert duration["ComparisonOperator"] == "GreaterThanThreshold"


def test_node_runner_errors_alarm_on_a_rate_the_api_on_any_error(synth: Synthesized) -> None:
    found = _alarms(synth)
    runner = found[c.alarm_name(c.STACK_ID, alarms.ALARM_LAMBDA_ERRORS, "NodeRunner")]
    (expression,) = [m["Expression"] for m in runner["Metrics"] if "Expression" in m]
    assert f">= {alarms.LAMBDA_MIN_INVOCATIONS}" in expression
    assert runner["Threshold"] == alarms.LAMBDA_ERROR_RATE_PCT
    api = found[c.alarm_name(c.STACK_ID, alarms.ALARM_LAMBDA_ERRORS, alarms.API_FUNCTION_NAME)]
    assert (api["MetricName"], api["Statistic"], api["Threshold"]) == ("Errors", "Sum", 1)
    assert api["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_every_queue_has_a_depth_alarm(synth: Synthesized) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    assert len(queues) == 2  # the status recorder's and the etl triggers' dead letters
    for logical_id in queues:
        name = {"Fn::GetAtt": [logical_id, "QueueName"]}
        found = _alarms_reading(
            synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=name
        )
        assert found, logical_id
        for alarm in found:  # alarms as soon as one message is visible
            if alarm["ComparisonOperator"] == "GreaterThanThreshold":
                assert alarm["Threshold"] == 0
            else:
                assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
                assert alarm["Threshold"] == 1


def test_api_alarms_on_5xx_rate_and_p99_latency(synth: Synthesized) -> None:
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    api_name = api["Properties"]["Name"]
    (errors,) = _alarms_reading(synth, "AWS/ApiGateway", "5XXError", ApiName=api_name)
    (expression,) = [m["Expression"] for m in errors["Metrics"] if "Expression" in m]
    assert expression == "IF(FILL(n, 0) >= 10, 100 * FILL(e, 0) / FILL(n, 0), 0)"
    assert errors["Threshold"] == alarms.API_5XX_THRESHOLD_PCT
    (latency,) = _alarms_reading(synth, "AWS/ApiGateway", "Latency", ApiName=api_name)
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == alarms.API_P99_LATENCY_MS


def test_table_alarms_on_throttles_of_table_and_indexes_and_system_errors(
    synth: Synthesized,
) -> None:
    table = {"Ref": next(iter(synth.of_type("AWS::DynamoDB::Table")))}
    (throttles,) = {
        json.dumps(a, sort_keys=True): a
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
        for a in _alarms_reading(synth, "AWS/DynamoDB", metric, TableName=table)
    }.values()
    read = {
        d.get("GlobalSecondaryIndexName", "")
        for _, name, d, _ in _reads(throttles)
        if name == "ReadThrottleEvents"
    }
    assert read == {"", *(n for n, _, _ in c.TABLE_GSIS)}
    (errors,) = _alarms_reading(synth, "AWS/DynamoDB", "SystemErrors", TableName=table)
    operations = {d["Operation"] for _, _, d, _ in _reads(errors)}
    assert operations == set(alarms.TABLE_OPERATIONS)


def test_every_alarm_notifies_the_topic_and_treats_missing_data_as_ok(
    synth: Synthesized,
) -> None:
    topic = next(iter(synth.of_type("AWS::SNS::Topic")))
    for props in _alarms(synth).values():
        assert props["AlarmActions"] == [{"Ref": topic}]
        assert props["OKActions"] == [{"Ref": topic}]
        assert props["TreatMissingData"] == "notBreaching"


# --- dashboard ------------------------------------------------------------------------------


def _dashboard(synth: Synthesized) -> dict[str, Any]:
    (board,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    parts = board["Properties"]["DashboardBody"]["Fn::Join"][1]
    body: dict[str, Any] = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))
    return body


def _widget(body: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return found


def test_dashboard_rows_for_api_dynamodb_cache_retries_and_node_percentiles(
    synth: Synthesized,
) -> None:
    body = _dashboard(synth)
    text = json.dumps(body)
    for metric in ("5XXError", "4XXError", "Latency", "IntegrationLatency"):
        assert f'"AWS/ApiGateway", "{metric}"' in text, metric
    for metric in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "SystemErrors"):
        assert f'"AWS/DynamoDB", "{metric}"' in text, metric
    etl_nodes = synth.stack.workflows["etl"].spec.nodes
    cache = _widget(body, "etl: cache hit rate (%)")["properties"]["metrics"]
    names = [m[1] for m in cache if isinstance(m[0], str)]
    assert names.count("CacheHit") == names.count("CacheMiss") == len(etl_nodes)
    retries = _widget(body, "etl: node retries")["properties"]["metrics"]
    assert [m[1] for m in retries] == ["NodeRetries"] * len(etl_nodes)
    durations = _widget(body, "etl: node duration p50/p95/p99 (ms)")["properties"]["metrics"]
    stats = [(_dims(m)[c.DIMENSION_NODE], m[-1]["stat"]) for m in durations]
    assert stats == [(n, p) for n in etl_nodes for p in dashboard.NODE_PERCENTILES]
    for metric in durations + retries:  # the EMF metrics PowertoolsObserver publishes
        assert metric[0] == c.METRIC_NAMESPACE
        assert _dims(metric) == {
            c.DIMENSION_SERVICE: c.SERVICE_NAME,
            c.DIMENSION_WORKFLOW: "etl",
            c.DIMENSION_NODE: _dims(metric)[c.DIMENSION_NODE],
        }


def _dims(metric: list[Any]) -> dict[str, Any]:
    """A dashboard metric ``[namespace, name, dim, value, ..., {options}]``'s dimensions."""
    return dict(zip(metric[2:-1:2], metric[3:-1:2], strict=True))


def test_dollars_per_day_sums_transitions_lambda_dynamodb_and_api(synth: Synthesized) -> None:
    body = _dashboard(synth)
    metrics = _widget(body, "$ per day (last day)")["properties"]["metrics"]
    expressions = {m[0]["label"]: m[0]["expression"] for m in metrics if "expression" in m[0]}
    assert set(expressions) == {
        "total $/day",
        "Step Functions $/day",
        "Lambda $/day",
        "DynamoDB $/day",
        "API Gateway $/day",
    }
    assert expressions["total $/day"] == "c0 + c1 + c2 + c3"
    # $0.025 per 1,000 transitions, 1.34 transitions per node-runner invocation.
    assert expressions["Step Functions $/day"] == "0.0000335 * (FILL(r0, 0))"
    # Every function: GB-s at $0.0000133334 (512 MB: x 0.5) + $0.20 per 1M requests.
    lam = expressions["Lambda $/day"]
    assert lam.count("* 0.0000002") == len(synth.of_type("AWS::Lambda::Function"))
    assert "FILL(d0, 0) / 1000 * 0.0000066667" in lam
    assert expressions["API Gateway $/day"] == "FILL(api, 0) * 0.0000035"
    assert "0.000000625" in expressions["DynamoDB $/day"]
    assert "0.000000125" in expressions["DynamoDB $/day"]
    assert all(m[-1].get("period") == 86400 for m in metrics)


class _Recorder:
    """A stand-in for Powertools' Logger and Metrics: records metric names and dimensions."""

    def __init__(self) -> None:
        self.metrics: set[str] = set()
        self.dimensions: set[str] = set()

    def add_metric(self, *, name: str, unit: Any, value: float) -> None:
        self.metrics.add(name)

    def add_dimension(self, *, name: str, value: str) -> None:
        self.dimensions.add(name)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        return None

    def info(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_dashboard_reads_the_metrics_the_node_runner_emits(synth: Synthesized) -> None:
    from stepdag.handlers.observability import PowertoolsObserver
    from stepdag.runtime.payloads import NodeRequest

    recorder = _Recorder()
    observer = PowertoolsObserver(recorder, recorder)  # type: ignore[arg-type]
    req = NodeRequest(workflow="etl", node="extract", phase="run", execution="e", attempt=1)
    observer.node_started(req)
    for status, hit in (("SUCCEEDED", True), ("FAILED", False), ("SKIPPED", None)):
        observer.node_finished(req, status, 0.1, cache_hit=hit)
    read = {
        m[1]
        for w in _dashboard(synth)["widgets"]
        for m in w["properties"].get("metrics", [])
        if m and m[0] == c.METRIC_NAMESPACE
    }
    assert read == {"CacheHit", "CacheMiss", "NodeRetries", "NodeDuration", "NodeFailed"}
    assert read <= recorder.metrics
    # Powertools adds "service" itself; the observer sets the other two.
    assert recorder.dimensions == {c.DIMENSION_WORKFLOW, c.DIMENSION_NODE}

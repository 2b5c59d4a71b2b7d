"""Logs, metrics and traces for the node-runner Lambda.

* :class:`PowertoolsObserver` is the runner's ``RunnerObserver``: one structured log line
  and a handful of EMF metrics per node outcome.
* :class:`LazyTracer` builds the Powertools ``Tracer`` on first use, and only when tracing
  can be on: ``Tracer()`` imports ``aws_xray_sdk`` even when it then disables itself, which
  costs ~330 ms of cold start for nothing outside an X-Ray-enabled Lambda.

Nothing here imports the runner or the store at module level: this module is on the
handler's import path, whose cost is every cold start's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.functions import (
    resolve_truthy_env_var_choice,
    sanitize_xray_segment_name,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

    from stepdag.runtime.payloads import NodeRequest

# Payload fields appended to every log line of an invocation (the execution id is the
# correlation id instead: it is what ties the Lambda logs to one Step Functions run).
REQUEST_KEYS = ("workflow", "node", "phase", "attempt", "index")

_STATUS_METRIC = {
    "SUCCEEDED": "NodeSucceeded",
    "FAILED": "NodeFailed",
    "SKIPPED": "NodeSkipped",
}


def request_keys(event: Any) -> dict[str, str | int]:
    """The log keys of a Task payload; tolerant, since a malformed payload must still log."""
    if not isinstance(event, Mapping):
        return {}
    keys: dict[str, str | int] = {}
    for key in REQUEST_KEYS:
        value = event.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            keys[key] = value
    return keys


class PowertoolsObserver:
    """``RunnerObserver`` publishing through a Powertools ``Logger`` and ``Metrics``.

    Metrics carry the dimensions ``workflow`` and ``node`` (bounded cardinality: the
    deployed DAGs' node names), plus the ``service`` Powertools adds; a Map item counts
    as one run of its node.  The handler's ``@metrics.log_metrics`` flushes them, once
    per invocation.
    """

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self.logger = logger
        self.metrics = metrics

    def node_started(self, req: NodeRequest) -> None:
        if req.attempt > 0:
            self._dimensions(req)
            self.metrics.add_metric(name="NodeRetries", unit=MetricUnit.Count, value=1)
        self.logger.debug("node started")

    def node_finished(
        self,
        req: NodeRequest,
        status: str,
        seconds: float,
        *,
        output_bytes: int = 0,
        cache_hit: bool | None = None,
        error: str | None = None,
    ) -> None:
        self._dimensions(req)
        metric = _STATUS_METRIC.get(status)
        if metric is not None:
            self.metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        duration_ms = round(seconds * 1000, 3)
        # A skip is decided without running anything: a 0 ms duration would only drag
        # the node's latency statistics down.
        if status != "SKIPPED":
            self.metrics.add_metric(
                name="NodeDuration", unit=MetricUnit.Milliseconds, value=duration_ms
            )
        if status == "SUCCEEDED":
            self.metrics.add_metric(name="OutputBytes", unit=MetricUnit.Bytes, value=output_bytes)
        if cache_hit is not None:
            name = "CacheHit" if cache_hit else "CacheMiss"
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        fields: dict[str, Any] = {"status": status, "duration_ms": duration_ms}
        if status == "SUCCEEDED":
            fields["output_bytes"] = output_bytes
        if cache_hit is not None:
            fields["cache_hit"] = cache_hit
        if error is not None:
            fields["error"] = error
        # The node's own exception is logged (with traceback) by the app as it propagates.
        self.logger.info("node finished", extra=fields)

    def _dimensions(self, req: NodeRequest) -> None:
        # One node per invocation, and log_metrics clears dimensions after each flush, so
        # setting them here cannot mix nodes within one EMF document.
        self.metrics.add_dimension(name="workflow", value=req.workflow)
        self.metrics.add_dimension(name="node", value=req.node)


class Span(Protocol):
    def annotate(self, key: str, value: str | int | bool) -> None: ...


class _NoSpan:
    def annotate(self, key: str, value: str | int | bool) -> None:
        return None


class _XraySpan:
    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def annotate(self, key: str, value: str | int | bool) -> None:
        if self._subsegment is not None:  # None when X-Ray has no parent segment
            self._subsegment.put_annotation(key, value)


def tracing_possible(environ: Mapping[str, str] | None = None) -> bool:
    """Mirror of Powertools' own rule (``Tracer._is_tracer_disabled``), decided *without*
    importing the X-Ray SDK: off when POWERTOOLS_TRACE_DISABLED is true, and outside a
    Lambda runtime (no LAMBDA_TASK_ROOT) or under SAM CLI / Chalice local emulation."""
    env = os.environ if environ is None else environ
    if resolve_truthy_env_var_choice(env=env.get("POWERTOOLS_TRACE_DISABLED", "false")):
        return False
    if not env.get("LAMBDA_TASK_ROOT"):
        return False
    return not (env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"))


def _powertools_tracer(service: str) -> Tracer:
    from aws_lambda_powertools import Tracer

    # Only botocore is patched: the store's DynamoDB/S3 calls are the I/O worth seeing,
    # and patch_all() would import and wrap a dozen libraries we never use.
    return Tracer(service=service, patch_modules=("botocore",))


class LazyTracer:
    """A Powertools ``Tracer`` created on first use, or never when tracing is off."""

    def __init__(
        self,
        service: str,
        *,
        enabled: bool | None = None,
        factory: Any = _powertools_tracer,
    ) -> None:
        self.service = service
        self.enabled = tracing_possible() if enabled is None else enabled
        self._factory = factory
        self._tracer: Tracer | None = None

    def tracer(self) -> Tracer | None:
        if not self.enabled:
            return None
        if self._tracer is None:
            self._tracer = self._factory(self.service)
        return self._tracer

    @contextmanager
    def node(self, event: Any) -> Iterator[Span]:
        """A subsegment ``## <workflow>.<node>`` around one node invocation, annotated with
        the request keys (searchable in X-Ray); exceptions are recorded on it."""
        tracer = self.tracer()
        if tracer is None:
            yield _NoSpan()
            return
        keys = request_keys(event)
        name = sanitize_xray_segment_name(f"## {keys.get('workflow', '?')}.{keys.get('node', '?')}")
        with tracer.provider.in_subsegment(name=name) as subsegment:
            span = _XraySpan(subsegment)
            for key, value in keys.items():
                span.annotate(key, value)
            yield span

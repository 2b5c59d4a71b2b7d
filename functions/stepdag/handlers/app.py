"""What the node-runner Lambda does per invocation, behind its thin handler.

Everything expensive -- importing the runner and user workflows, pydantic adapters, boto3
and its clients, the X-Ray SDK -- happens on the *first invocation*, once per execution
environment, never at import: the handler module's import is the part of a cold start
that every environment pays, including ones that end up idle (provisioned or proactive
inits), and it keeps ``import stepdag.handlers.node_runner`` cheap to test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from stepdag.handlers.observability import LazyTracer, PowertoolsObserver, request_keys

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

    from stepdag.core.model import Dag
    from stepdag.handlers.settings import Settings
    from stepdag.runtime.runner import NodeRunner
    from stepdag.runtime.store import ExecutionStore

StoreFactory = Callable[["Settings"], "ExecutionStore"]
WorkflowLoader = Callable[["Settings"], "Mapping[str, Dag]"]


def dynamodb_store(settings: Settings, *, pagination_key: bytes | None = None) -> ExecutionStore:
    """The production store: DynamoDB for state, S3 for outputs over the threshold.

    The store creates its boto3 clients itself, on its first request (with botocore's
    standard retry mode); we only tighten the timeouts: botocore's 60 s connect default
    would let one unreachable endpoint eat most of a node's Lambda timeout.
    """
    from datetime import timedelta

    from botocore.config import Config  # type: ignore[import-untyped]

    from stepdag.runtime.dynamodb import DynamoDbStore

    return DynamoDbStore(
        settings.table_name,
        bucket=settings.bucket,
        offload_threshold=settings.offload_threshold,
        retention=None
        if settings.retention_days is None
        else timedelta(days=settings.retention_days),
        boto_config=Config(connect_timeout=3, read_timeout=20, tcp_keepalive=True),
        pagination_key=pagination_key,
    )


def load_workflows(settings: Settings) -> dict[str, Dag]:
    """The deployed DAGs by workflow name: the configured references, else discovery."""
    from stepdag.constants import ENV_WORKFLOW_MODULES
    from stepdag.core.errors import WorkflowLoadError
    from stepdag.core.loader import discover, load_workflow, unique

    refs = settings.workflow_refs()
    if refs:
        loaded = []
        for expected, ref in refs:
            lw = load_workflow(ref)
            if expected is not None and lw.workflow.name != expected:
                # The state machine's payloads name the workflow: a mismatch here would
                # fail every Task later with "unknown workflow".
                raise WorkflowLoadError(
                    f"{ENV_WORKFLOW_MODULES} maps {expected!r} to {ref!r}, "
                    f"which defines workflow {lw.workflow.name!r}"
                )
            loaded.append(lw)
    else:
        loaded = discover(settings.workflows_dir)
    # Two DAGs answering to one name would make payloads ambiguous: the loader's rule.
    dags = {lw.workflow.name: lw.workflow.build() for lw in unique(loaded)}
    if not dags:
        where = [ref for _, ref in refs] or [settings.workflows_dir]
        raise WorkflowLoadError(f"no workflows found in {', '.join(where)}")
    return dags


class NodeRunnerApp:
    """The node runner plus its Powertools wiring, built lazily and reused while warm."""

    def __init__(
        self,
        settings: Settings,
        *,
        logger: Logger,
        metrics: Metrics,
        tracer: LazyTracer | None = None,
        store_factory: StoreFactory = dynamodb_store,
        workflow_loader: WorkflowLoader = load_workflows,
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        self.tracer = tracer or LazyTracer(settings.service_name)
        self._store_factory = store_factory
        self._workflow_loader = workflow_loader
        self._runner: NodeRunner | None = None
        # Lambda sends one event at a time; the lock is for in-process hosts (tests, the
        # moto harness) that call the handler from several threads at once.
        self._lock = threading.Lock()

    def handle(self, event: Any) -> dict[str, Any]:
        self.logger.append_keys(**request_keys(event))
        try:
            runner = self.runner()
            with self.tracer.node(event) as span:
                result = runner.handle(event)
                span.annotate("status", str(result.get("status", "")))
                return result
        except Exception as exc:
            # Logged with the invocation's keys; then re-raised *unchanged*, because
            # Lambda reports type(exc).__name__ as the Step Functions error name, which
            # the compiled Retry/Catch rules match on.
            self.logger.exception("node invocation failed", extra={"error": type(exc).__name__})
            raise

    def runner(self) -> NodeRunner:
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self._build()
        return self._runner

    def _build(self) -> NodeRunner:
        from stepdag.runtime.runner import NodeRunner

        # The tracer first: it patches botocore before the store creates its clients.
        self.tracer.tracer()
        workflows = self._workflow_loader(self.settings)
        store = self._store_factory(self.settings)
        self.logger.debug("node runner ready", extra={"workflows": sorted(workflows)})
        return NodeRunner(
            workflows,
            store,
            observer=PowertoolsObserver(self.logger, self.metrics),
            # A claim's owner names the log stream that holds it: a node stuck RUNNING
            # then points at the logs to read.
            owner_prefix=_log_stream_prefix(),
        )


def _log_stream_prefix() -> str:
    stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
    return f"{stream}/" if stream else ""

"""The status-recorder Lambda: ``stepdag.handlers.status.handler``.

Target of the stack's EventBridge rule for "Step Functions Execution Status Change"
events of its own state machines; records each execution's status in the store through
:class:`stepdag.api.status.StatusRecorder` (rules: docs/status-events.md).  Thin like the
other handlers: settings are validated at import (cold start); the store and the Step
Functions client are built on the first event.  Every log line carries the execution ARN
as its correlation id.  A failure is raised: Lambda retries the event, then sends it to
the dead-letter queue (docs/runbooks.md#statusevents).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepdag.handlers.status_settings import StatusSettings, load_status_settings

if TYPE_CHECKING:
    from stepdag.api.status import StatusRecorder

# Outcome action -> EMF metric.
METRICS = {
    "created": "StatusRecordsAdopted",
    "updated": "StatusRecordsUpdated",
    "ignored": "StatusEventsIgnored",
}


class StatusApp:
    """The recorder over the DynamoDB store, built once, lazily."""

    def __init__(self, settings: StatusSettings, *, logger: Logger, metrics: Metrics) -> None:
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        self._recorder: StatusRecorder | None = None
        self._lock = threading.Lock()

    def recorder(self) -> StatusRecorder:
        if self._recorder is None:
            with self._lock:
                if self._recorder is None:
                    from stepdag.api.status import StatusRecorder, state_machine_name
                    from stepdag.handlers.app import dynamodb_store

                    machines = self.settings.state_machines
                    self._recorder = StatusRecorder(
                        dynamodb_store(self.settings),
                        {state_machine_name(arn): wf for wf, arn in machines.items()},
                    )
        return self._recorder

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        detail = event.get("detail") if isinstance(event, dict) else None
        reported = detail if isinstance(detail, dict) else {}
        keys = {"status": reported.get("status"), "redrive_count": reported.get("redriveCount")}
        self.logger.append_keys(**keys)
        try:
            outcome = self.recorder().handle_event(event)
        except Exception as exc:
            self.logger.exception("status event not recorded", extra={"error": type(exc).__name__})
            raise
        self.metrics.add_metric(name=METRICS[outcome.action], unit=MetricUnit.Count, value=1)
        self.logger.info(
            f"status event {outcome.action}",
            extra={"action": outcome.action, "reason": outcome.reason},
        )
        rec = outcome.record
        return {
            "action": outcome.action,
            "reason": outcome.reason,
            "status": None if rec is None else rec.status.value,
        }


settings = load_status_settings()
logger = Logger(service=settings.service_name, level=settings.log_level)
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
app = StatusApp(settings, logger=logger, metrics=metrics)


@logger.inject_lambda_context(correlation_id_path="detail.executionArn", clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event)

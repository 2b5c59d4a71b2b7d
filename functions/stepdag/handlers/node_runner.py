"""The node-runner Lambda: ``stepdag.handlers.node_runner.handler``.

Thin on purpose: settings are validated at import (cold start), the Powertools decorators
add the correlation id and flush EMF metrics, and one call delegates to the shared
``NodeRunner`` (via ``NodeRunnerApp``, which builds it on first invocation).  A node's
exception propagates unchanged: its class name is the Step Functions error name.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepdag.handlers.app import NodeRunnerApp
from stepdag.handlers.settings import load_settings

settings = load_settings()
logger = Logger(service=settings.service_name, level=settings.log_level)
# Powertools adds `service` to the workflow/node dimensions; the stack's alarms name it.
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)
app = NodeRunnerApp(settings, logger=logger, metrics=metrics)

# Phases that record nothing (a true condition, a Map plan, a gather) have no metrics;
# Powertools would warn about that on every such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")


@logger.inject_lambda_context(correlation_id_path="execution", clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.handle(event)

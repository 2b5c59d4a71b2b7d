"""The API Lambda: ``stepdag.handlers.api.handler`` behind API Gateway (REST, proxy).

Thin like the node runner's: settings are validated at import (cold start); the resolver,
the DynamoDB store, the workflows and the Step Functions client are built on the first
request and reused while warm.  Every log line carries API Gateway's request id as its
correlation id.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepdag.handlers.api_settings import ApiSettings, load_api_settings
from stepdag.handlers.observability import LazyTracer

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver


class ApiApp:
    """The resolver over :class:`StepFunctionsExecutionService`, built once, lazily."""

    def __init__(self, settings: ApiSettings, *, tracer: LazyTracer | None = None) -> None:
        self.settings = settings
        self.tracer = tracer or LazyTracer(settings.service_name)
        self._resolver: APIGatewayRestResolver | None = None
        self._lock = threading.Lock()

    def resolver(self) -> APIGatewayRestResolver:
        if self._resolver is None:
            with self._lock:
                if self._resolver is None:
                    try:
                        self._resolver = self._build()
                    except Exception as exc:
                        # Not cached: the next request tries again.  Meanwhile liveness
                        # answers and readiness says why (a workflow module that fails
                        # to import, a workflow without a state machine), instead of
                        # every request failing the Lambda.
                        logger.exception("the API could not be built")
                        return self._unconfigured(exc)
        return self._resolver

    def _unconfigured(self, exc: Exception) -> APIGatewayRestResolver:
        from stepdag.api.app import build_app
        from stepdag.api.health import UnconfiguredService

        return build_app(UnconfiguredService(exc), cors_origins=self.settings.cors_origins)

    def _build(self) -> APIGatewayRestResolver:
        from stepdag.api.app import build_app
        from stepdag.api.aws import StepFunctionsExecutionService
        from stepdag.handlers.app import dynamodb_store, load_workflows

        self.tracer.tracer()  # patches botocore before any client exists
        service = StepFunctionsExecutionService(
            dynamodb_store(self.settings),
            load_workflows(self.settings),
            self.settings.state_machines,
        )
        return build_app(service, cors_origins=self.settings.cors_origins)


settings = load_api_settings()
logger = Logger(service=settings.service_name, level=settings.log_level)
app = ApiApp(settings)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolver().resolve(event, context)

"""The API Lambda: ``stepdag.handlers.api.handler`` behind API Gateway (REST, proxy).

Thin like the node runner's: settings are validated at import (cold start); the resolver,
the DynamoDB store, the workflows, the pagination key (the stack's Secrets Manager secret)
and the Step Functions client are built on the first request and reused while warm.
Every log line carries API Gateway's request id as its correlation id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepdag.handlers.api_settings import ApiSettings, load_api_settings
from stepdag.handlers.observability import LazyTracer
from stepdag.handlers.settings import SettingsError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from stepdag.runtime.ratelimit import DynamoDbRateLimiter


MIN_KEY_CHARS = 32


def read_pagination_key(secret_arn: str) -> bytes:
    """The secret's value: every instance of the function signs tokens with it, so a
    token one instance hands out is valid on the next request's instance too."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    client = boto3.client(
        "secretsmanager", config=Config(connect_timeout=3, read_timeout=5, tcp_keepalive=True)
    )
    value = str(client.get_secret_value(SecretId=secret_arn).get("SecretString") or "")
    if len(value) < MIN_KEY_CHARS:
        raise SettingsError(
            f"the pagination secret {secret_arn} holds {len(value)} characters; "
            f"a signing key needs at least {MIN_KEY_CHARS}"
        )
    return value.encode()


class ApiApp:
    """The resolver over :class:`StepFunctionsExecutionService`, built once, lazily."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        tracer: LazyTracer | None = None,
        key_reader: Callable[[str], bytes] = read_pagination_key,
    ) -> None:
        self.settings = settings
        self.tracer = tracer or LazyTracer(settings.service_name)
        self.key_reader = key_reader
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
        # The workflows first: a module that does not import is the likeliest failure,
        # and readiness should name it rather than a secret read that came before it.
        workflows = load_workflows(self.settings)
        arn = self.settings.pagination_secret_arn
        key = None if arn is None else self.key_reader(arn)
        service = StepFunctionsExecutionService(
            dynamodb_store(self.settings, pagination_key=key),
            workflows,
            self.settings.state_machines,
        )
        return build_app(
            service,
            cors_origins=self.settings.cors_origins,
            tenancy=self.settings.tenancy,
            rate_limiter=self._rate_limiter(),
        )

    def _rate_limiter(self) -> DynamoDbRateLimiter | None:
        limit = self.settings.rate_limit()
        if limit is None:
            return None
        import boto3
        from botocore.config import Config

        from stepdag.runtime.ratelimit import DynamoDbRateLimiter

        client = boto3.client(
            "dynamodb", config=Config(connect_timeout=3, read_timeout=5, tcp_keepalive=True)
        )
        return DynamoDbRateLimiter(self.settings.table_name, limit, client=client)


# Fail closed at cold start: without the stack's key every instance would sign with its
# own random one, and a token would break whenever the next request hit another instance.
settings = load_api_settings(required=("pagination_secret_arn",))
logger = Logger(service=settings.service_name, level=settings.log_level)
app = ApiApp(settings)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolver().resolve(event, context)

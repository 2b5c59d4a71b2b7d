"""Per-tenant rate limits on the REST API: a resolver middleware over a
:class:`~stepdag.runtime.ratelimit.RateLimiter`.

Every request but the meta routes (health, OpenAPI, docs) takes one token from its
tenant's bucket (callers without a tenant share one bucket).  Answers carry the IETF
draft's headers (draft-ietf-httpapi-ratelimit-headers): ``RateLimit-Policy:
"tenant";q=<burst>;w=<seconds to refill>`` and ``RateLimit: "tenant";r=<remaining>;
t=<seconds until full>``; a refused request is a 429 problem document with
``Retry-After`` (seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from stepdag.api.auth import principal
from stepdag.api.errors import problem
from stepdag.runtime.ratelimit import Decision, RateLimiter

POLICY = "tenant"
NO_TENANT_KEY = "-"  # tenants are non-empty, so this never collides
_EXEMPT_SUFFIXES = ("/health", "/openapi.json", "/docs")


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    limit = decision.limit
    return {
        "RateLimit-Policy": f'"{POLICY}";q={limit.burst};w={limit.window_s}',
        "RateLimit": f'"{POLICY}";r={decision.remaining};t={decision.reset_s}',
    }


def rate_limit_middleware(
    limiter: RateLimiter,
) -> Callable[[APIGatewayRestResolver, Callable[..., Response[Any]]], Response[Any]]:
    def middleware(
        app: APIGatewayRestResolver, next_middleware: Callable[..., Response[Any]]
    ) -> Response[Any]:
        path = app.current_event.path.rstrip("/")
        if path.endswith(_EXEMPT_SUFFIXES) or "/health/" in path:
            return next_middleware(app)
        tenant = principal(app.current_event.raw_event).tenant
        decision = limiter.take(tenant or NO_TENANT_KEY)
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            refused = problem(
                429,
                "rate_limited",
                f"too many requests for this tenant: at most {decision.limit.burst} at once, "
                f"{decision.limit.rate_per_s:g} per second; retry in "
                f"{decision.retry_after_s} s",
            )
            refused.headers.update({**headers, "Retry-After": str(decision.retry_after_s)})
            return refused
        response = next_middleware(app)
        response.headers.update(headers)
        return response

    return middleware

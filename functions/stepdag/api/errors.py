"""API errors and THE mapping from exceptions to problem documents (RFC 9457).

Every route error goes through :func:`problem_response`: a ``StepdagError`` carries its
own ``http_status`` and ``code`` (so a new error class needs no change here); request
validation becomes 400 naming the field; anything else is a 500 with no internals leaked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response

from stepdag.api.models import FieldError, Problem
from stepdag.core.errors import (
    BadRequest,
    Conflict,
    IdempotencyConflict,
    RequestError,
    StepdagError,
)

logger = logging.getLogger("stepdag.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Core/store errors that are about one request field but do not carry it themselves.
_FIELD_OF_CODE = {
    "invalid_pagination_token": "next_token",
    "invalid_input": "input",
    "input_too_large": "input",
    "input_too_deep": "input",
    "not_json": "body",  # an API request's input is parsed from the body: NaN fails there
}


# The caller errors the execution lifecycle raises too live in core (BadRequest, Conflict,
# IdempotencyConflict); the API's own are built on the same base.
ApiError = RequestError


class Forbidden(ApiError):
    http_status = 403
    code = "forbidden"


class NotFound(ApiError):
    http_status = 404
    code = "not_found"


class NodeNotFound(NotFound):
    code = "node_not_found"


class NoOutput(Conflict):
    code = "no_output"


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: Sequence[FieldError] | None = None,
    size: int | None = None,
    limit: int | None = None,
) -> Response[str]:
    body = Problem(
        type=f"urn:stepdag:problem:{code}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
        field=field,
        errors=list(errors) if errors is not None else None,
        size=size,
        limit=limit,
    )
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body.model_dump(exclude_none=True)),
    )


def problem_response(exc: BaseException) -> Response[str]:
    """The one place an exception becomes an HTTP answer."""
    if isinstance(exc, StepdagError):
        status = exc.http_status
        if status >= 500 and status != HTTPStatus.SERVICE_UNAVAILABLE:
            logger.error("request failed: %s", exc, exc_info=exc)
            return problem(status, exc.code, "the request failed; see the service logs")
        field = getattr(exc, "field", None) or _FIELD_OF_CODE.get(exc.code)
        size, limit = getattr(exc, "size", None), getattr(exc, "limit", None)
        return problem(status, exc.code, str(exc), field=field, size=size, limit=limit)
    if isinstance(exc, UnicodeDecodeError):
        # Powertools decodes the body lazily, inside validation: binary garbage lands here.
        return problem(400, "invalid_body", "the request body is not UTF-8 text", field="body")
    logger.error("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "unexpected error; see the service logs")


def validation_problem(errors: Sequence[Any]) -> Response[str]:
    """Powertools' RequestValidationError errors -> 400 naming every offending field.

    400, not FastAPI's 422: for API clients a malformed request is a bad request, and the
    OpenAPI document declares 400 with the problem schema on every route.
    """
    found: list[FieldError] = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ())]
        location = loc[0] if loc else "request"
        name = ".".join(loc[1:]) or location
        found.append(FieldError(field=name, location=location, message=str(err.get("msg", ""))))
    first = found[0] if found else FieldError(field="request", location="request", message="")
    detail = "; ".join(f"{e.location} {e.field}: {e.message}" for e in found) or "invalid request"
    return problem(400, "invalid_request", detail, field=first.field, errors=found)


def openapi_errors(*statuses: int) -> dict[int, Any]:
    """The ``responses`` entries documenting problem documents for these statuses."""
    return {
        s: {
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_CONTENT_TYPE: {"model": Problem}},
        }
        for s in statuses
    }


__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "IdempotencyConflict",
    "NoOutput",
    "NodeNotFound",
    "NotFound",
    "openapi_errors",
    "problem",
    "problem_response",
    "validation_problem",
]

"""The REST API: routes on Powertools' APIGatewayRestResolver, under ``/v1``.

:func:`build_app` wires an :class:`~stepdag.api.service.ExecutionService` into a resolver;
the Lambda handler and ``stepdag serve`` both call ``app.resolve(event, context)``, so the
local server exercises exactly the Lambda code path.  Routes are thin: authorize, call the
service, convert records to the public models.  Errors are raised, never returned: the
exception handlers registered here turn them into problem documents (api/errors.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.shared.json_encoder import Encoder

from stepdag.api.auth import ALL_TENANTS, Principal, Role, Tenancy, principal
from stepdag.api.errors import (
    BadRequest,
    openapi_errors,
    problem,
    problem_response,
    validation_problem,
)
from stepdag.api.health import run_checks
from stepdag.api.limits import rate_limit_middleware
from stepdag.api.models import (
    NAME_PATTERN,
    Execution,
    ExecutionPage,
    ExecutionState,
    ExecutionSummary,
    Liveness,
    Node,
    NodeList,
    NodeOutput,
    Readiness,
    StartExecutionRequest,
    WorkflowGraph,
    WorkflowList,
    WorkflowSummary,
)
from stepdag.api.port import ExecutionService
from stepdag.constants import CORS_HEADERS, CORS_MAX_AGE_S
from stepdag.core.errors import StepdagError
from stepdag.core.inputs import loads
from stepdag.core.status import RunStatus
from stepdag.runtime.ratelimit import RateLimiter

PREFIX = "/v1"
TITLE = "stepdag"
VERSION = "1"

# Path segments: an execution id is an ARN (colons), a name is [A-Za-z0-9_.-].
ExecutionRef = Annotated[
    str, Path(min_length=1, max_length=256, description="execution id or name")
]
WorkflowName = Annotated[str, Path(min_length=1, max_length=80)]
NodeName = Annotated[str, Path(min_length=1, max_length=80)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=NAME_PATTERN,
        description="the same key twice starts one execution (it becomes the execution name)",
    ),
]

_READ = openapi_errors(400, 403, 404, 409)
_WRITE = openapi_errors(400, 403, 404, 409)


def _ok(status: int = 200, *, description: str = "OK") -> dict[int, Any]:
    # No "content": Powertools fills in the schema of the handler's return annotation.
    return {status: {"description": description}}


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    """Exact origins only (never ``*``): the console hosted on S3/CloudFront, say."""
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=list(CORS_HEADERS),
        max_age=CORS_MAX_AGE_S,
    )


def json_body(text: str) -> Any:
    """The request body as strict JSON (:func:`stepdag.core.inputs.loads`: NaN/Infinity
    and nesting too deep are 400s); a number Python will not convert -- more digits than
    ``sys.get_int_max_str_digits()`` (4300), a ValueError that was a 500 -- is an invalid
    request (400) like any other malformed body."""
    try:
        return loads(text, what="the request body")
    except ValueError as exc:  # loads turned JSONDecodeError (a ValueError) into NotJson
        reason = str(exc).split(";")[0]  # drop the advice to raise the interpreter's limit
        error = {"type": "json_invalid", "loc": ("body",), "msg": reason, "input": {}}
        raise RequestValidationError([error]) from None


def build_app(
    service: ExecutionService,
    *,
    cors_origins: Sequence[str] = (),
    tenancy: Tenancy = Tenancy.SINGLE,
    rate_limiter: RateLimiter | None = None,
) -> APIGatewayRestResolver:
    """The resolver; ``cors_origins`` lets a console on those origins call it; with
    ``tenancy=MULTI`` a caller without a tenant is refused on every route but health;
    ``rate_limiter`` limits each tenant's requests (429, api/limits.py)."""
    app = APIGatewayRestResolver(
        enable_validation=True,
        cors=cors_config(cors_origins),
        # Strict JSON both ways: a body with NaN/Infinity is a 400 (not an input the
        # store then refuses), nesting too deep for the parser a 400 (not a 500), and no
        # answer ever carries NaN.
        json_body_deserializer=json_body,
        serializer=partial(json.dumps, separators=(",", ":"), cls=Encoder, allow_nan=False),
    )
    if rate_limiter is not None:
        app.use(middlewares=[rate_limit_middleware(rate_limiter)])
    servers = [Server(url="/")]
    app.enable_swagger(path=f"{PREFIX}/docs", title=TITLE, version=VERSION, servers=servers)

    def caller(role: Role) -> Principal:
        who = principal(app.current_event.raw_event)
        who.require(role, tenancy)
        return who

    # ---------------------------------------------------------------- errors

    @app.exception_handler(StepdagError)  # type: ignore[untyped-decorator]
    def _stepdag_error(exc: StepdagError) -> Response[str]:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        return validation_problem(exc.errors())

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response[str]:
        path = app.current_event.path
        return problem(404, "route_not_found", f"no route {app.current_event.http_method} {path}")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[str]:
        return problem_response(exc)

    # ---------------------------------------------------------------- meta

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[str]:
        body = app.get_openapi_json_schema(title=TITLE, version=VERSION, servers=servers)
        return Response(status_code=200, content_type="application/json", body=body)

    # Liveness: no service call, no role (the gateway may leave it unauthenticated).
    @app.get(
        f"{PREFIX}/health/live", responses=_ok(description="the process answers"), tags=["meta"]
    )
    def health_live() -> Liveness:
        return Liveness()

    ready_responses: dict[int, Any] = {
        200: {"description": "every check passed"},
        503: {
            "description": "a check failed (each check says why)",
            "content": {"application/json": {"model": Readiness}},
        },
    }

    def readiness() -> Response[Readiness]:
        checks = run_checks(service.health_checks())
        ok = all(c.ok for c in checks)
        body = Readiness(status="ok" if ok else "unavailable", checks=checks, **service.health())
        return Response(status_code=200 if ok else 503, content_type="application/json", body=body)

    @app.get(f"{PREFIX}/health/ready", responses=ready_responses, tags=["meta"])
    def health_ready() -> Response[Readiness]:
        return readiness()

    # Today's route, kept: the readiness answer (its status, workflows and store fields
    # as before, now from checks that ran).
    @app.get(f"{PREFIX}/health", responses=ready_responses, tags=["meta"])
    def health() -> Response[Readiness]:
        return readiness()

    # ---------------------------------------------------------------- workflows

    @app.get(f"{PREFIX}/workflows", responses={**_ok(), **openapi_errors(403)}, tags=["workflows"])
    def list_workflows() -> WorkflowList:
        caller(Role.VIEWER)
        return WorkflowList(
            items=[
                WorkflowSummary(name=d.workflow, description=d.description, nodes=len(d.nodes))
                for d in service.workflows()
            ]
        )

    @app.get(f"{PREFIX}/workflows/<name>", responses={**_ok(), **_READ}, tags=["workflows"])
    def get_workflow(name: WorkflowName) -> WorkflowGraph:
        caller(Role.VIEWER)
        dag, definition = service.workflow(name)
        return WorkflowGraph.of(dag, definition)

    @app.post(
        f"{PREFIX}/workflows/<name>/executions",
        responses={
            **_ok(201, description="started"),
            **_ok(200, description="a replay of an Idempotency-Key: the existing execution"),
            **_WRITE,
        },
        tags=["executions"],
    )
    def start_execution(
        name: WorkflowName,
        body: Annotated[StartExecutionRequest, Body()],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ExecutionState]:
        who = caller(Role.OPERATOR)
        run_name = idempotency_key or body.name
        if idempotency_key and body.name and body.name != idempotency_key:
            raise BadRequest(
                "name and Idempotency-Key differ; the key is the execution name", field="name"
            )
        rec, created = service.start(name, body.input, name=run_name, tenant=who.tenant)
        return Response(
            status_code=201 if created else 200,
            content_type="application/json",
            body=ExecutionState.of(rec),
        )

    # ---------------------------------------------------------------- executions

    @app.get(f"{PREFIX}/executions", responses={**_ok(), **_READ}, tags=["executions"])
    def list_executions(
        workflow: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        status: Annotated[RunStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        next_token: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
        tenant: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=128,
                description=f"another tenant's runs, or {ALL_TENANTS!r} for all (admin only)",
            ),
        ] = None,
    ) -> ExecutionPage:
        who = caller(Role.VIEWER)
        page = service.list_executions(
            workflow=workflow,
            status=status,
            tenant=who.listing_tenant(tenant),
            limit=limit,
            next_token=next_token,
        )
        return ExecutionPage(
            items=[ExecutionSummary.of(r) for r in page.items], next_token=page.next_token
        )

    @app.get(f"{PREFIX}/executions/<id>", responses={**_ok(), **_READ}, tags=["executions"])
    def get_execution(id: ExecutionRef) -> Execution:
        who = caller(Role.VIEWER)
        return Execution.of(service.get(id, tenant=who.tenant))

    @app.get(f"{PREFIX}/executions/<id>/nodes", responses={**_ok(), **_READ}, tags=["executions"])
    def list_nodes(id: ExecutionRef) -> NodeList:
        who = caller(Role.VIEWER)
        rec, nodes = service.nodes(id, tenant=who.tenant)
        return NodeList(execution=rec.execution_id, nodes=[Node.of(n) for n in nodes])

    @app.get(
        f"{PREFIX}/executions/<id>/nodes/<node>/output",
        responses={**_ok(), **_READ},
        tags=["executions"],
    )
    def node_output(id: ExecutionRef, node: NodeName) -> NodeOutput:
        who = caller(Role.VIEWER)
        execution_id, output = service.node_output(id, node, tenant=who.tenant)
        return NodeOutput(execution=execution_id, node=node, output=output)

    @app.post(
        f"{PREFIX}/executions/<id>/cancel", responses={**_ok(), **_WRITE}, tags=["executions"]
    )
    def cancel_execution(id: ExecutionRef) -> ExecutionState:
        who = caller(Role.OPERATOR)
        return ExecutionState.of(service.cancel(id, tenant=who.tenant))

    @app.post(
        f"{PREFIX}/executions/<id>/redrive",
        responses={**_ok(202, description="redrive started"), **_WRITE},
        tags=["executions"],
    )
    def redrive_execution(id: ExecutionRef) -> Response[ExecutionState]:
        who = caller(Role.OPERATOR)
        rec = service.redrive(id, tenant=who.tenant)
        return Response(
            status_code=202, content_type="application/json", body=ExecutionState.of(rec)
        )

    @app.post(
        f"{PREFIX}/executions/<id>/rerun",
        responses={**_ok(201, description="the new execution, started"), **_WRITE},
        tags=["executions"],
    )
    def rerun_execution(
        id: ExecutionRef,
        from_: Annotated[str, Query(alias="from", min_length=1, max_length=80)],
        name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    ) -> Response[ExecutionState]:
        who = caller(Role.OPERATOR)
        rec = service.rerun(id, from_, name=name, tenant=who.tenant)
        return Response(
            status_code=201, content_type="application/json", body=ExecutionState.of(rec)
        )

    return app


__all__ = ["PREFIX", "build_app", "cors_config", "json_body"]

"""Request and response bodies of the REST API (pydantic: validated in, validated out).

The API never returns store records directly: these models are the public contract the
OpenAPI document describes, so a new store column does not silently become API surface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from stepdag.core.compile import compile_dag
from stepdag.core.failures import is_failure, located, one_line
from stepdag.core.inputs import EXECUTION_NAME_PATTERN, MAX_NAME_LENGTH
from stepdag.core.model import Dag
from stepdag.core.render import render_tree
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.core.types import describe
from stepdag.runtime.records import ExecutionRecord, NodeRecord

# Step Functions' execution-name rule, as the lifecycle checks it (stepdag.core.inputs).
NAME_PATTERN = EXECUTION_NAME_PATTERN
ExecutionName = Annotated[
    str, Field(pattern=NAME_PATTERN, min_length=1, max_length=MAX_NAME_LENGTH)
]


class StartExecutionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(default=None, description="the execution input (any JSON value)")
    name: ExecutionName | None = Field(
        default=None, description="execution name, unique per workflow (default: a uuid)"
    )


class ExecutionState(BaseModel):
    """An execution without its data: what starts, reruns, redrives and cancels answer,
    so a write never sends a 256 KiB input (or output) back; ``GET`` has them."""

    id: str
    name: str
    workflow: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    message: str | None = Field(
        default=None, description="the error on one line: `errorType: errorMessage`"
    )
    redrive_count: int = 0
    rerun_of: str | None = None
    rerun_from: str | None = None
    tenant: str | None = None

    @classmethod
    def of(cls, rec: ExecutionRecord) -> ExecutionState:
        return cls.model_validate(_state(rec))


class Execution(ExecutionState):
    input: Any = None
    output: Any = None

    @classmethod
    def of(cls, rec: ExecutionRecord) -> Execution:
        return cls.model_validate({**_state(rec), "input": rec.input, "output": rec.output})


def _state(rec: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": rec.execution_id,
        "name": rec.name,
        "workflow": rec.workflow,
        "status": rec.status,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "error": rec.error,
        "cause": rec.cause,
        "message": one_line(rec.error, rec.cause) if rec.error else None,
        "redrive_count": rec.redrive_count,
        "rerun_of": rec.rerun_of,
        "rerun_from": rec.rerun_from,
        "tenant": rec.tenant,
    }


class ExecutionSummary(BaseModel):
    """A list row: no input/output, so a page of 1000 stays small."""

    id: str
    name: str
    workflow: str
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    tenant: str | None = None

    @classmethod
    def of(cls, rec: ExecutionRecord) -> ExecutionSummary:
        return cls(
            id=rec.execution_id,
            name=rec.name,
            workflow=rec.workflow,
            status=rec.status,
            started_at=rec.started_at,
            ended_at=rec.ended_at,
            tenant=rec.tenant,
        )


class ExecutionPage(BaseModel):
    items: list[ExecutionSummary]
    next_token: str | None = Field(
        default=None, description="pass back as next_token for the next page; null: last page"
    )


class Node(BaseModel):
    node: str
    map_index: int | None = None
    status: NodeStatus
    attempt: int = 0
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    cause: str | None = None
    message: str | None = Field(
        default=None,
        description="a failure located on one line: `node 'x' item 1, attempt 2: Type: message`",
    )
    output_bytes: int | None = None
    cache_hit: bool = False
    items: int | None = None
    skip_reason: str | None = None

    @classmethod
    def of(cls, rec: NodeRecord) -> Node:
        return cls(
            node=rec.node,
            map_index=rec.map_index,
            status=rec.status,
            attempt=rec.attempt,
            attempts=rec.attempts,
            started_at=rec.started_at,
            ended_at=rec.ended_at,
            error=rec.error,
            cause=rec.cause,
            message=located(rec) if is_failure(rec.status) else None,
            output_bytes=rec.output_bytes,
            cache_hit=rec.cache_hit,
            items=rec.items,
            skip_reason=rec.skip_reason,
        )


class NodeList(BaseModel):
    execution: str
    nodes: list[Node]


class NodeOutput(BaseModel):
    execution: str
    node: str
    output: Any = None


class WorkflowSummary(BaseModel):
    name: str
    description: str = ""
    nodes: int


class WorkflowList(BaseModel):
    items: list[WorkflowSummary]


class GraphNode(BaseModel):
    name: str
    deps: list[str]
    data_deps: list[str]
    order_deps: list[str]
    returns: str
    map_over: str | None = None
    conditional: bool = False


class WorkflowGraph(BaseModel):
    name: str
    description: str = ""
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    structure: str = Field(description="the compiled structure: ';' sequence, '|' parallel")
    definition: dict[str, Any] = Field(description="the compiled ASL (local Task resource)")

    @classmethod
    def of(cls, dag: Dag, definition: dict[str, Any]) -> WorkflowGraph:
        return cls(
            name=dag.workflow,
            description=dag.description,
            nodes=[
                GraphNode(
                    name=n.name,
                    deps=list(n.deps),
                    data_deps=list(n.data_deps),
                    order_deps=list(n.order_deps),
                    returns=describe(n.returns),
                    map_over=n.options.map_over,
                    conditional=n.is_conditional,
                )
                for n in dag.nodes.values()
            ],
            edges=[(a, b) for a, b in dag.edges],
            structure=render_tree(compile_dag(dag).tree),
            definition=definition,
        )


class Liveness(BaseModel):
    status: str = Field(default="ok", description="always ok: the process answers")


class HealthCheck(BaseModel):
    name: str = Field(description="store, stepfunctions (on AWS), settings")
    ok: bool
    ms: float = Field(description="how long the check took, in milliseconds")
    detail: str = Field(description="what the check saw, or why it failed")


class Readiness(BaseModel):
    status: str = Field(description="ok when every check passed (200), else unavailable (503)")
    workflows: int
    store: str
    checks: list[HealthCheck]


class FieldError(BaseModel):
    field: str
    location: str = Field(description="body, query, path or header")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem document (served as application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = Field(default=None, description="the offending field, when one is")
    size: int | None = Field(
        default=None, description="a limit exceeded: the request's measure (input: bytes)"
    )
    limit: int | None = Field(
        default=None, description="a limit exceeded: the limit (input: bytes; depth: levels)"
    )
    errors: list[FieldError] | None = None

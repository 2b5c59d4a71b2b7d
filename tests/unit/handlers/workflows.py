"""A small workflow exercising every node-runner phase the handler observes."""

from __future__ import annotations

from pydantic import BaseModel

from stepdag import Cache, Workflow

wf = Workflow("obs")


class QuotaExceeded(Exception):
    """A user error whose class name must reach Step Functions unchanged."""


class Params(BaseModel):
    n: int = 3


@wf.node
def source(params: Params) -> list[int]:
    return list(range(params.n))


@wf.node(cache=Cache(ttl=3600))
def total(source: list[int]) -> int:
    return sum(source)


@wf.node(map_over="source")
def square(source: int) -> int:
    return source * source


@wf.node(when=lambda total: total > 1_000)
def big(total: int) -> str:
    return "big"


@wf.node
def explode(total: int) -> int:
    raise QuotaExceeded(f"quota of {total} exceeded")

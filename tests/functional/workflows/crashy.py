"""A workflow for crash tests: slow-ish nodes, a Map, a fan-in, side effects logged.

Every invocation appends ``node[index] token`` to $CRASHY_LOG before working, and puts
the same token in its output: the test can then tell a node that ran again (new token)
from one answered from the store (same token).
"""

from __future__ import annotations

import os
import time
import uuid

from pydantic import BaseModel

from stepdag import Workflow

wf = Workflow("crashy")
DELAY = float(os.environ.get("CRASHY_DELAY", "0.03"))


class Out(BaseModel):
    value: int
    token: str


def work(label: str, value: int) -> Out:
    token = uuid.uuid4().hex
    with open(os.environ["CRASHY_LOG"], "a") as log:
        log.write(f"{label} {token}\n")
    time.sleep(DELAY)
    return Out(value=value, token=token)


@wf.node
def start(params: dict[str, int]) -> list[int]:
    work("start", 0)
    return list(range(params.get("items", 4)))


@wf.node
def left(start: list[int]) -> Out:
    return work("left", sum(start))


@wf.node
def right(start: list[int]) -> Out:
    return work("right", len(start) * 10)


@wf.node(map_over="start", max_concurrency=2)
def each(start: int) -> Out:
    return work(f"each[{start}]", start * start)


@wf.node
def middle(left: Out, right: Out) -> Out:
    return work("middle", left.value + right.value)


@wf.node
def join(middle: Out, each: list[Out]) -> Out:
    return work("join", middle.value + sum(e.value for e in each))


@wf.node
def final(join: Out, left: Out) -> Out:
    return work("final", join.value * 2 + left.value)

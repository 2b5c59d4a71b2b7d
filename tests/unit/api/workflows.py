"""Tiny workflows for the API tests: instant, gated (to cancel mid-run), and flaky."""

from __future__ import annotations

import threading

from stepdag import Workflow

demo = Workflow("api_demo", description="two nodes")


@demo.node
def first(params: dict[str, int]) -> int:
    return params.get("x", 0) + 1


@demo.node
def second(first: int) -> int:
    return first * 2


GATE = threading.Event()
gated = Workflow("api_gated")


@gated.node
def hold(params: dict[str, int]) -> int:
    GATE.wait(10)
    return 1


FAIL = {"on": True}
flaky = Workflow("api_flaky")


@flaky.node
def boom(params: dict[str, int]) -> int:
    if FAIL["on"]:
        raise RuntimeError("boom")
    return 7


ALL = [demo, gated, flaky]

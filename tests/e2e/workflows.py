"""Workflows for the console tests: nodes that block on Events the test releases, a Map
node (item counts), and a node that fails with markup in its message (escaping)."""

from __future__ import annotations

import threading

from stepdag import Retry, Workflow

# One gate per blocking node; a test clears them, then sets one to let that node finish.
GATES = {name: threading.Event() for name in ("extract", "audit", "profile", "hold")}
FAILED_ONCE: set[int] = set()  # console_retry's items that have failed their first attempt
WAIT = 30.0  # a gate nobody releases still ends (the run then fails visibly, never hangs)


def reset() -> None:
    for gate in GATES.values():
        gate.clear()
    FAILED_ONCE.clear()


def release_all() -> None:
    for gate in GATES.values():
        gate.set()


live = Workflow("console_live", description="extract, a Map, two gated checks, publish")


@live.node
def extract(params: dict[str, int]) -> list[int]:
    if not GATES["extract"].wait(WAIT):
        raise TimeoutError("the test never released extract")
    return list(range(params.get("n", 3)))


@live.node(map_over="extract")
def clean(extract: int) -> int:
    return extract * 10


@live.node
def audit(extract: list[int]) -> int:
    if not GATES["audit"].wait(WAIT):
        raise TimeoutError("the test never released audit")
    return len(extract)


@live.node
def profile(extract: list[int]) -> dict[str, int]:
    if not GATES["profile"].wait(WAIT):
        raise TimeoutError("the test never released profile")
    return {"max": max(extract, default=0)}


@live.node
def publish(clean: list[int], audit: int, profile: dict[str, int]) -> int:
    return sum(clean) + audit + profile["max"]


# The message is markup on purpose: the page must show it as text, never run it.
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
broken = Workflow("console_broken", description="fails in its second node")


@broken.node
def fetch(params: dict[str, str]) -> str:
    return params.get("note", "")


@broken.node
def explode(fetch: str) -> int:
    raise RuntimeError(f"bad row {XSS}")


quick = Workflow("console_quick", description="one instant node")


@quick.node
def only(params: dict[str, int]) -> int:
    return params.get("x", 0)


mapfail = Workflow("console_mapfail", description="a Map whose item 2 fails, Lambda-style")


@mapfail.node
def rows() -> list[int]:
    return [0, 1, 2, 3]


@mapfail.node(map_over="rows")
def each(rows: int) -> int:
    if rows == 2:
        raise ValueError('{"errorMessage": "row 2 is \x1b[31mbad", "errorType": "KeyError"}')
    return rows


retrying = Workflow("console_retry", description="a Map item waits for its retry")


@retrying.node
def items() -> list[int]:
    return [0, 1, 2]


# A long interval: the test reads the page while item 1 waits for its second attempt.
@retrying.node(map_over="items", retry=Retry(max_attempts=2, interval=5, errors=("ValueError",)))
def work(items: int) -> int:
    if items == 0 and not GATES["hold"].wait(WAIT):
        raise TimeoutError("the test never released hold")
    if items == 1 and items not in FAILED_ONCE:
        FAILED_ONCE.add(items)
        raise ValueError("first attempt fails")
    return items


ALL = [live, broken, quick, mapfail, retrying]

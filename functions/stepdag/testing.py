"""Helpers for testing workflows and stepdag itself: adjacency-dict DAGs, random DAGs.

    wf = workflow_from_adjacency("diamond", {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]})

Each generated node returns ``{"node": name, "inputs": [...]}`` so tests can check what
every node received.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stepdag.core.model import Workflow

Adjacency = Mapping[str, Sequence[str]]  # node -> its upstream nodes


def node_fn(
    name: str, deps: Sequence[str], body: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """A function named ``name`` whose keyword parameters are exactly ``deps``."""

    def fn(**kwargs: Any) -> Any:
        if body is not None:
            return body(name, kwargs)
        return {"node": name, "inputs": sorted(kwargs)}

    fn.__name__ = fn.__qualname__ = name
    params = [inspect.Parameter(d, inspect.Parameter.KEYWORD_ONLY, annotation=Any) for d in deps]
    fn.__signature__ = inspect.Signature(params, return_annotation=Any)  # type: ignore[attr-defined]
    fn.__annotations__ = dict.fromkeys(deps, Any) | {"return": Any}
    return fn


def workflow_from_adjacency(
    name: str,
    adjacency: Adjacency,
    *,
    body: Callable[[str, dict[str, Any]], Any] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Workflow:
    wf = Workflow(name)
    for node, deps in adjacency.items():
        wf.add_node(node, node_fn(node, deps, body), **dict((options or {}).get(node, {})))
    return wf


def random_dag(
    rng: random.Random, n: int, *, edge_prob: float = 0.25, max_preds: int = 3
) -> dict[str, list[str]]:
    """A random DAG over n nodes in topological order (not series-parallel in general)."""
    adj: dict[str, list[str]] = {}
    names = [f"n{i}" for i in range(n)]
    for j, name in enumerate(names):
        candidates = [names[i] for i in range(j) if rng.random() < edge_prob]
        rng.shuffle(candidates)
        adj[name] = sorted(candidates[:max_preds], key=names.index)
    return adj


def random_sp_dag(rng: random.Random, n: int) -> dict[str, list[str]]:
    """A random series-parallel DAG with exactly n nodes (recursive series/parallel merges)."""
    counter = iter(range(n))

    def build(size: int) -> tuple[dict[str, list[str]], list[str], list[str]]:
        if size == 1:
            name = f"n{next(counter)}"
            return {name: []}, [name], [name]
        left = rng.randint(1, size - 1)
        a, a_src, a_snk = build(left)
        b, b_src, b_snk = build(size - left)
        if rng.random() < 0.5:  # series: every sink of a feeds every source of b
            for s in b_src:
                b[s] = sorted({*b[s], *a_snk})
            return {**a, **b}, a_src, b_snk
        return {**a, **b}, a_src + b_src, a_snk + b_snk

    adj, _, _ = build(n)
    order = sorted(adj, key=lambda k: int(k[1:]))
    return {k: sorted(adj[k], key=lambda x: int(x[1:])) for k in order}


def random_durations(
    rng: random.Random, nodes: Sequence[str], low: float = 1.0, high: float = 10.0
) -> dict[str, float]:
    return {n: float(rng.randint(int(low), int(high))) for n in nodes}

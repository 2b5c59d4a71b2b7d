"""Graph functions and the series-parallel decomposition (incl. hypothesis properties)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepdag.core.graph import (
    Leaf,
    Par,
    Seq,
    critical_path,
    find_cycle,
    is_series_parallel,
    level_decompose,
    makespan,
    sp_decompose,
    topo_order,
    tree_edges_ok,
)
from stepdag.testing import random_dag, random_sp_dag

N_SHAPE = {"A": [], "B": [], "C": ["A"], "D": ["A", "B"]}


def test_topo_order_is_deterministic_and_stable() -> None:
    adj = {"c": ["a"], "a": [], "b": [], "d": ["b", "c"]}
    # ready nodes are taken in declaration order: c (declared first) as soon as a is done
    assert topo_order(adj) == ["a", "c", "b", "d"]


def test_find_cycle_none_for_dag() -> None:
    assert find_cycle({"a": [], "b": ["a"]}) is None
    assert find_cycle({"a": ["a"]}) == ["a"]


def test_diamond_is_exact() -> None:
    adj = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    tree = sp_decompose(adj)
    assert tree == Seq((Leaf("a"), Par((Leaf("b"), Leaf("c"))), Leaf("d")))
    assert is_series_parallel(adj)


def test_transitive_edges_do_not_break_series_parallel() -> None:
    # a->c is implied by a->b->c; the reduction removes it, so this is a plain chain.
    adj = {"a": [], "b": ["a"], "c": ["a", "b"]}
    assert sp_decompose(adj) == Seq((Leaf("a"), Leaf("b"), Leaf("c")))


def test_independent_components_run_in_parallel() -> None:
    adj = {"a": [], "b": ["a"], "x": [], "y": ["x"]}
    assert sp_decompose(adj) == Par((Seq((Leaf("a"), Leaf("b"))), Seq((Leaf("x"), Leaf("y")))))


def test_n_shape_is_not_series_parallel_but_ordered() -> None:
    tree = sp_decompose(N_SHAPE)
    assert not is_series_parallel(N_SHAPE)
    assert tree_edges_ok(tree, N_SHAPE)
    assert sorted(tree_leaves(tree)) == ["A", "B", "C", "D"]


def test_makespan_and_critical_path() -> None:
    adj = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    w = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}
    assert critical_path(adj, w) == 7.0
    assert makespan(sp_decompose(adj), w) == 7.0
    assert makespan(level_decompose(adj), w) == 7.0


def test_level_baseline_adds_waiting_on_skewed_chains() -> None:
    # a->b and c->d->e: levels force b to wait for c (and d for b).
    adj = {"a": [], "b": ["a"], "c": [], "d": ["c"], "e": ["d"]}
    w = {"a": 1.0, "b": 9.0, "c": 9.0, "d": 1.0, "e": 1.0}
    assert makespan(sp_decompose(adj), w) == critical_path(adj, w) == 11.0
    assert makespan(level_decompose(adj), w) == 19.0


def tree_leaves(tree: object) -> list[str]:
    from stepdag.core.graph import leaves

    return list(leaves(tree))  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30))
def test_property_sp_dags_are_exact(seed: int, n: int) -> None:
    rng = random.Random(seed)
    adj = random_sp_dag(rng, n)
    tree = sp_decompose(adj)
    assert sorted(tree_leaves(tree)) == sorted(adj)
    assert tree_edges_ok(tree, adj)
    assert is_series_parallel(adj)
    durations = {k: float(rng.randint(1, 10)) for k in adj}
    assert makespan(tree, durations) == critical_path(adj, durations)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), p=st.floats(0.05, 0.6))
def test_property_any_dag_is_ordered_and_complete(seed: int, n: int, p: float) -> None:
    rng = random.Random(seed)
    adj = random_dag(rng, n, edge_prob=p)
    tree = sp_decompose(adj)
    leaves = tree_leaves(tree)
    assert sorted(leaves) == sorted(adj) and len(leaves) == len(set(leaves))  # exactly once
    assert tree_edges_ok(tree, adj)  # never before a dependency
    durations = {k: float(rng.randint(1, 10)) for k in adj}
    assert makespan(tree, durations) >= critical_path(adj, durations)


@pytest.mark.parametrize("n", [100, 1000])
def test_large_graphs_decompose(n: int) -> None:
    adj = random_dag(random.Random(n), n, edge_prob=3 / n * 2)
    tree = sp_decompose(adj)
    assert tree_edges_ok(tree, adj)

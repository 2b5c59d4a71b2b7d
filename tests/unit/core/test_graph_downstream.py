"""``downstream``: what a rerun from a node runs again (pure; ``reusable_nodes`` in the
runtime filters the stored outputs with it)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepdag.core.graph import ancestor_sets, downstream
from stepdag.testing import random_dag

N_SHAPE = {"A": [], "B": [], "C": ["A"], "D": ["A", "B"]}


def test_downstream_is_the_node_and_everything_that_depends_on_it() -> None:
    assert downstream(N_SHAPE, "A") == {"A", "C", "D"}
    assert downstream(N_SHAPE, "B") == {"B", "D"}
    assert downstream(N_SHAPE, "D") == {"D"}


def test_downstream_of_an_unknown_node_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        downstream(N_SHAPE, "Z")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 25), st.floats(0.05, 0.6))
def test_property_downstream_is_closed_under_successors(seed: int, n: int, p: float) -> None:
    preds = random_dag(random.Random(seed), n, edge_prob=p)
    anc = ancestor_sets(preds)
    for node in preds:
        again = downstream(preds, node)
        # Every node that depends on one in the set is in it; nothing else but the node.
        assert all(m in again for m in preds if anc[m] & again)
        assert all(m == node or node in anc[m] for m in again)

"""Pure graph functions over ``{node: predecessors}`` mappings.

The interesting part is ``sp_decompose``: Step Functions can only express
series-parallel structure (a sequence of states, ``Parallel`` branches, ``Map``), so the
compiler turns every DAG into a series-parallel *tree*. For series-parallel DAGs the
tree is exact — no node ever waits for a node it does not depend on. For the others
(the smallest is the "N": A→C, A→D, B→D) some waiting must be added; the decomposition
adds it where it costs the least critical-path time. See docs/asl-mapping.md.

Sets of nodes are Python ints used as bitsets over the topological index, which keeps
ancestor queries cheap on 10,000-node graphs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

Preds = Mapping[str, Sequence[str]]


# ---------------------------------------------------------------- basic queries


def find_cycle(preds: Preds) -> list[str] | None:
    """One dependency cycle in flow order (each node feeds the next), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(preds, white)
    for root in preds:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        color[root] = grey
        path.append(root)
        while stack:
            node, i = stack[-1]
            deps = [d for d in preds[node] if d in color]
            if i < len(deps):
                stack[-1] = (node, i + 1)
                dep = deps[i]
                if color[dep] == grey:
                    cycle = path[path.index(dep) :]
                    return list(reversed(cycle))  # walked against the flow: reverse it
                if color[dep] == white:
                    color[dep] = grey
                    path.append(dep)
                    stack.append((dep, 0))
            else:
                color[node] = black
                path.pop()
                stack.pop()
    return None


def topo_order(preds: Preds) -> list[str]:
    """Deterministic topological order (Kahn; ties broken by declaration order)."""
    index = {n: i for i, n in enumerate(preds)}
    indeg = {n: len(set(preds[n])) for n in preds}
    succs: dict[str, list[str]] = {n: [] for n in preds}
    for n, ps in preds.items():
        for p in set(ps):
            succs[p].append(n)
    import heapq

    ready = [(index[n], n) for n, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for s in succs[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(ready, (index[s], s))
    if len(order) != len(preds):
        raise ValueError(f"graph has a cycle: {find_cycle(preds)}")
    return order


def ancestor_sets(preds: Preds) -> dict[str, frozenset[str]]:
    order = topo_order(preds)
    out: dict[str, frozenset[str]] = {}
    for n in order:
        acc: set[str] = set()
        for p in preds[n]:
            acc.add(p)
            acc |= out[p]
        out[n] = frozenset(acc)
    return out


def downstream(preds: Preds, node: str) -> frozenset[str]:
    """``node`` and every node that depends on it, directly or not (what a rerun from
    ``node`` runs again)."""
    if node not in preds:
        raise KeyError(node)
    anc = ancestor_sets(preds)
    return frozenset(n for n in preds if node in anc[n]) | {node}


def critical_path(preds: Preds, weights: Mapping[str, float] | None = None) -> float:
    """Length of the longest weighted path (the best possible makespan)."""
    finish: dict[str, float] = {}
    for n in topo_order(preds):
        start = max((finish[p] for p in preds[n]), default=0.0)
        finish[n] = start + (1.0 if weights is None else weights[n])
    return max(finish.values(), default=0.0)


# ---------------------------------------------------------------- the SP tree


@dataclass(frozen=True, slots=True)
class Leaf:
    node: str


@dataclass(frozen=True, slots=True)
class Seq:
    parts: tuple[Tree, ...]


@dataclass(frozen=True, slots=True)
class Par:
    branches: tuple[Tree, ...]


Tree = Leaf | Seq | Par


def leaves(tree: Tree) -> Iterable[str]:
    if isinstance(tree, Leaf):
        yield tree.node
    else:
        for child in tree.parts if isinstance(tree, Seq) else tree.branches:
            yield from leaves(child)


def makespan(tree: Tree, durations: Mapping[str, float]) -> float:
    """Finish time of the tree when every node takes ``durations[node]``."""
    if isinstance(tree, Leaf):
        return durations[tree.node]
    if isinstance(tree, Seq):
        return sum(makespan(p, durations) for p in tree.parts)
    return max(makespan(b, durations) for b in tree.branches)


def tree_edges_ok(tree: Tree, preds: Preds) -> bool:
    """Every dependency is ordered by the tree (a dependency never runs in parallel/after)."""
    pos: dict[str, tuple[int, ...]] = {}

    def walk(t: Tree, path: tuple[int, ...]) -> None:
        if isinstance(t, Leaf):
            pos[t.node] = path
        elif isinstance(t, Seq):
            for i, p in enumerate(t.parts):
                walk(p, (*path, 2 * i))
        else:
            for i, b in enumerate(t.branches):
                walk(b, (*path, -1 - i))

    walk(tree, ())
    for n, ps in preds.items():
        for p in ps:
            a, b = pos[p], pos[n]
            k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
            # ordered iff they first diverge inside a Seq with p's part earlier
            if k is None or a[k] < 0 or b[k] < 0 or a[k] >= b[k]:
                return False
    return True


# ---------------------------------------------------------------- decomposition


class _Graph:
    """Indexed view used by the decomposition: topo index, reduced edges, ancestor bits."""

    def __init__(self, preds: Preds, weights: Mapping[str, float] | None) -> None:
        self.names = topo_order(preds)
        idx = {n: i for i, n in enumerate(self.names)}
        self.w = [1.0 if weights is None else float(weights[n]) for n in self.names]
        full = [sorted({idx[p] for p in preds[n]}) for n in self.names]
        self.anc = [0] * len(self.names)
        for v, ps in enumerate(full):
            acc = 0
            for p in ps:
                acc |= self.anc[p] | (1 << p)
            self.anc[v] = acc
        # Transitive reduction: p is redundant for v when it is an ancestor of another pred.
        self.pred: list[list[int]] = []
        self.succ: list[list[int]] = [[] for _ in self.names]
        for v, ps in enumerate(full):
            union = 0
            for q in ps:
                union |= self.anc[q]
            kept = [p for p in ps if not (union >> p) & 1]
            self.pred.append(kept)
            for p in kept:
                self.succ[p].append(v)


def sp_decompose(preds: Preds, weights: Mapping[str, float] | None = None) -> Tree:
    """Series-parallel tree for any DAG; exact whenever the DAG is series-parallel."""
    if not preds:
        raise ValueError("empty graph")
    g = _Graph(preds, weights)
    return _build(g, list(range(len(g.names))))


def level_decompose(preds: Preds) -> Tree:
    """The naive baseline: run the DAG level by level (every level waits for the previous)."""
    level: dict[str, int] = {}
    for n in topo_order(preds):
        level[n] = 1 + max((level[p] for p in preds[n]), default=-1)
    layers: dict[int, list[str]] = {}
    for n, lv in level.items():
        layers.setdefault(lv, []).append(n)
    parts = [_par([Leaf(n) for n in layers[k]]) for k in sorted(layers)]
    return parts[0] if len(parts) == 1 else Seq(tuple(parts))


def is_series_parallel(preds: Preds) -> bool:
    return _exact(sp_decompose(preds), preds)


def _exact(tree: Tree, preds: Preds) -> bool:
    """The tree adds no ordering beyond the DAG's own (checked on the transitive closure).

    Checking consecutive parts of every Seq suffices: ancestry is transitive.
    """
    anc = ancestor_sets(preds)

    def ok(t: Tree) -> bool:
        if isinstance(t, Leaf):
            return True
        children = t.parts if isinstance(t, Seq) else t.branches
        if isinstance(t, Seq):
            for before, after in itertools.pairwise(children):
                earlier = set(leaves(before))
                if not all(earlier <= anc[n] for n in leaves(after)):
                    return False
        return all(ok(c) for c in children)

    return ok(tree)


def _par(trees: list[Tree]) -> Tree:
    return trees[0] if len(trees) == 1 else Par(tuple(trees))


def _seq(trees: list[Tree]) -> Tree:
    flat: list[Tree] = []
    for t in trees:
        flat.extend(t.parts if isinstance(t, Seq) else (t,))
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def _components(g: _Graph, nodes: list[int]) -> list[list[int]]:
    member = set(nodes)
    seen: set[int] = set()
    comps: list[list[int]] = []
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        stack, comp = [start], []
        while stack:
            v = stack.pop()
            comp.append(v)
            for u in (*g.pred[v], *g.succ[v]):
                if u in member and u not in seen:
                    seen.add(u)
                    stack.append(u)
        comps.append(sorted(comp))
    return comps


def _build(g: _Graph, nodes: list[int]) -> Tree:
    """Recursive decomposition of a convex node set (sorted by topological index)."""
    if len(nodes) == 1:
        return Leaf(g.names[nodes[0]])
    comps = _components(g, nodes)
    if len(comps) > 1:
        return _par([_build(g, c) for c in comps])
    member = set(nodes)
    est: dict[int, float] = {}
    for v in nodes:  # topological order, so preds come first
        est[v] = max((est[p] + g.w[p] for p in g.pred[v] if p in member), default=0.0)
    bl: dict[int, float] = {}
    for v in reversed(nodes):
        bl[v] = g.w[v] + max((bl[s] for s in g.succ[v] if s in member), default=0.0)
    cp = max(est[v] + g.w[v] for v in nodes)
    cuts = _exact_cuts(g, nodes, est)
    if cuts:
        parts, prev = [], 0
        by_est = sorted(nodes, key=lambda v: (est[v], v))
        for k in [*cuts, len(by_est)]:
            parts.append(sorted(by_est[prev:k]))
            prev = k
        return _seq([_build(g, p) for p in parts])
    s1, s2 = _best_cut(g, nodes, est, bl, cp)
    return _seq([_build(g, s1), _build(g, s2)])


def _exact_cuts(g: _Graph, nodes: list[int], est: dict[int, float]) -> list[int]:
    """Positions (in est order) where every earlier node is an ancestor of every later one.

    For a cut to be exact its threshold t must equal the finish of everything before it
    (no idle gap) and the nodes starting exactly at t — the sources of the later part —
    must have all earlier nodes as ancestors; every later node descends from one of them.
    """
    by_est = sorted(nodes, key=lambda v: (est[v], v))
    cuts: list[int] = []
    s1_mask, finish, i = 0, 0.0, 0
    while i < len(by_est):
        t = est[by_est[i]]
        j = i
        while j < len(by_est) and est[by_est[j]] == t:
            j += 1
        if i > 0 and t == finish and all((s1_mask & ~g.anc[v]) == 0 for v in by_est[i:j]):
            cuts.append(i)
        for v in by_est[i:j]:
            s1_mask |= 1 << v
            finish = max(finish, est[v] + g.w[v])
        i = j
    return cuts


def _best_cut(
    g: _Graph, nodes: list[int], est: dict[int, float], bl: dict[int, float], cp: float
) -> tuple[list[int], list[int]]:
    """No exact cut exists: choose the down-set split that adds the least waiting.

    Candidates are the threshold cuts of the ASAP schedule (by earliest start) and of the
    ALAP schedule (by latest start). Each candidate's cost is the critical path it
    forces, CP(before) + CP(after); ties go to the cut that delays the fewest node-seconds
    (sum over later nodes of how much later than ASAP they may start).
    """
    candidates: dict[frozenset[int], None] = {}
    schedules: tuple[Callable[[int], float], ...] = (lambda v: est[v], lambda v: cp - bl[v])
    for key in schedules:
        ordered = sorted(nodes, key=lambda v: (key(v), v))
        for i in range(1, len(ordered)):
            if key(ordered[i]) != key(ordered[i - 1]):
                candidates.setdefault(frozenset(ordered[:i]), None)
    best: tuple[float, float, int] | None = None
    best_cut: frozenset[int] | None = None
    for cand in candidates:
        cp1 = max(est[v] + g.w[v] for v in cand)
        later = [v for v in nodes if v not in cand]
        cost = cp1 + max(bl[v] for v in later)
        delay = sum(max(0.0, cp1 - est[v]) for v in later)
        score = (cost, delay, abs(len(cand) - len(later)))
        if best is None or score < best:
            best, best_cut = score, cand
    assert best_cut is not None  # a connected set of >= 2 nodes has a threshold cut
    s1 = sorted(best_cut)
    return s1, [v for v in nodes if v not in best_cut]

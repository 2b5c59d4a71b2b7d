"""Text and Mermaid renderings of a DAG (pure; the CLI and docs use them)."""

from __future__ import annotations

from stepdag.core import types as T
from stepdag.core.graph import Leaf, Par, Seq, Tree, topo_order
from stepdag.core.model import Dag, Node


def _label(node: Node) -> str:
    tags = []
    if node.is_map:
        tags.append(f"map over {node.options.map_over}")
    if node.is_conditional:
        tags.append("when")
    if node.options.retry is not None:
        tags.append(f"retry x{node.options.retry.max_attempts}")
    if node.options.cache is not None:
        tags.append("cached")
    return node.name + (f" [{', '.join(tags)}]" if tags else "")


def render_text(dag: Dag, tree: Tree | None = None) -> str:
    lines = [f"workflow {dag.workflow}" + (f" — {dag.description}" if dag.description else "")]
    for name in topo_order(dag.preds):
        node = dag[name]
        deps = ", ".join(node.deps) or "(start)"
        lines.append(f"  {_label(node):<48} <- {deps}   -> {T.describe(node.returns)}")
    if tree is not None:
        lines.append("")
        lines.append("compiled structure (sequence ; parallel |):")
        lines.append("  " + render_tree(tree))
    return "\n".join(lines)


def render_tree(tree: Tree) -> str:
    if isinstance(tree, Leaf):
        return tree.node
    if isinstance(tree, Seq):
        return " ; ".join(
            f"({render_tree(p)})" if isinstance(p, Seq) else render_tree(p) for p in tree.parts
        )
    assert isinstance(tree, Par)
    return "[" + " | ".join(render_tree(b) for b in tree.branches) + "]"


def render_mermaid(dag: Dag) -> str:
    lines = ["flowchart TD"]
    for name, node in dag.nodes.items():
        text = _label(node).replace('"', "'")
        if node.is_map:
            lines.append(f'  {name}[["{text}"]]')
        elif node.is_conditional:
            lines.append(f'  {name}{{{{"{text}"}}}}')
        else:
            lines.append(f'  {name}["{text}"]')
    for name, node in dag.nodes.items():
        for dep in node.data_deps:
            lines.append(f"  {dep} --> {name}")
        for dep in node.order_deps:
            if dep not in node.data_deps:
                lines.append(f"  {dep} -.-> {name}")
    return "\n".join(lines) + "\n"

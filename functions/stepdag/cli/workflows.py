"""``stepdag validate``, ``compile``, ``graph``: commands on a workflow's definition.

The loader and the compiler are imported inside the commands: ``stepdag --help`` and the
run commands load neither (start-up).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from stepdag.cli.app import EXIT_FAILED, err, out
from stepdag.cli.args import WorkflowArg


def validate(workflow: WorkflowArg) -> None:
    """Validate a workflow definition and report every problem at once."""
    from stepdag.core.loader import load_workflow

    loaded = load_workflow(workflow)
    dag = loaded.workflow.build()
    out.print(
        f"ok: workflow {dag.workflow!r} is valid ({len(dag.nodes)} nodes, {len(dag.edges)} edges)"
    )


def compile_cmd(
    workflows: Annotated[
        list[str] | None, typer.Argument(help="workflows to compile (default: statemachines/*)")
    ] = None,
    *,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write one ASL here")
    ] = None,
    check: Annotated[bool, typer.Option(help="fail if a committed .asl.json is stale")] = False,
    directory: Annotated[Path, typer.Option(help="where to discover workflows")] = Path(
        "statemachines"
    ),
    strategy: Annotated[str, typer.Option(help="sp (default) or levels")] = "sp",
    query_language: Annotated[
        str | None,
        typer.Option("--query-language", help="JSONPath or JSONata (default: each workflow's own)"),
    ] = None,
) -> None:
    """Compile workflows to Amazon States Language beside their modules (<name>.asl.json)."""
    from stepdag.core.compile import compile_dag
    from stepdag.core.errors import InputValidationError
    from stepdag.core.loader import discover, load_workflow, unique
    from stepdag.core.model import QUERY_LANGUAGES

    if query_language is not None and query_language not in QUERY_LANGUAGES:
        raise InputValidationError(
            f"--query-language must be JSONPath or JSONata, not {query_language!r}"
        )

    loaded = unique(load_workflow(w) for w in workflows) if workflows else discover(directory)
    if output is not None and len(loaded) != 1:
        raise typer.BadParameter("-o/--output takes exactly one workflow")
    stale = []
    for lw in loaded:
        dag = lw.workflow.build()
        compiled = compile_dag(
            dag,
            strategy="levels" if strategy == "levels" else "sp",
            query_language=query_language,
        )
        text = compiled.to_json()
        for warning in compiled.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", markup=True)
        target = output or _asl_path(lw.source, dag.workflow)
        if check:
            if not target.is_file() or target.read_text() != text:
                stale.append(str(target))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        out.print(f"compiled {dag.workflow!r} -> {target} ({len(text):,} bytes)")
    if stale:
        err.print("stale compiled ASL (run `stepdag compile`):\n  " + "\n  ".join(stale))
        raise typer.Exit(EXIT_FAILED)
    if check:
        out.print(f"ok: {len(loaded)} compiled definitions are up to date")


def _asl_path(source: Path | None, name: str) -> Path:
    folder = source.parent if source is not None else Path("statemachines")
    return folder / f"{name}.asl.json"


def graph(
    workflow: WorkflowArg,
    format: Annotated[str, typer.Option("--format", "-f", help="text or mermaid")] = "text",
) -> None:
    """Draw a workflow's DAG (and, as text, the structure it compiles to)."""
    from stepdag.core.compile import compile_dag
    from stepdag.core.loader import load_workflow
    from stepdag.core.render import render_mermaid, render_text

    dag = load_workflow(workflow).workflow.build()
    if format == "mermaid":
        sys.stdout.write(render_mermaid(dag))
    elif format == "text":
        out.print(render_text(dag, compile_dag(dag).tree))
    else:
        raise typer.BadParameter(f"unknown format {format!r}; use text or mermaid")


__all__ = ["compile_cmd", "graph", "validate"]

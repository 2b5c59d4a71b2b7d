"""The ``stepdag`` command line. Commands delegate to the core; errors never show tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from stepdag.core.errors import StepdagError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="stepdag",
    help="Typed Python DAGs compiled to AWS Step Functions, runnable locally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# emoji=False: rich would render ``:x:`` (or ``:rocket:``) inside an ARN or a name as an
# emoji -- user text is printed as it is.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_INVALID = 2
EXIT_FAILED = 1


def friendly(fn: F) -> F:
    """Print stepdag errors as plain messages and exit non-zero (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StepdagError as exc:
            # escape(): messages contain [check-names] that rich would read as markup
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(EXIT_INVALID) from None

    return wrapper  # type: ignore[return-value]


WorkflowArg = Annotated[str, typer.Argument(help="package.module:attr or path/file.py:attr")]


@app.command()
@friendly
def validate(workflow: WorkflowArg) -> None:
    """Validate a workflow definition and report every problem at once."""
    from stepdag.core.loader import load_workflow

    loaded = load_workflow(workflow)
    dag = loaded.workflow.build()
    out.print(
        f"ok: workflow {dag.workflow!r} is valid ({len(dag.nodes)} nodes, {len(dag.edges)} edges)"
    )


@app.command("compile")
@friendly
def compile_cmd(
    workflows: Annotated[
        list[str] | None, typer.Argument(help="workflows to compile (default: statemachines/*)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write one ASL here")
    ] = None,
    check: Annotated[bool, typer.Option(help="fail if a committed .asl.json is stale")] = False,
    directory: Annotated[Path, typer.Option(help="where to discover workflows")] = Path(
        "statemachines"
    ),
    strategy: Annotated[str, typer.Option(help="sp (default) or levels")] = "sp",
) -> None:
    """Compile workflows to Amazon States Language beside their modules (<name>.asl.json)."""
    from stepdag.core.compile import compile_dag
    from stepdag.core.loader import discover, load_workflow

    loaded = [load_workflow(w) for w in workflows] if workflows else discover(directory)
    if output is not None and len(loaded) != 1:
        raise typer.BadParameter("-o/--output takes exactly one workflow")
    stale = []
    for lw in loaded:
        dag = lw.workflow.build()
        compiled = compile_dag(dag, strategy="levels" if strategy == "levels" else "sp")
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


@app.command()
@friendly
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


def main() -> None:
    import stepdag.cli.runs  # noqa: F401 - registers the run/inspect commands on `app`
    from stepdag.cli import serve as _serve  # noqa: F401 - registers `serve` (REST API)
    from stepdag.cli import trigger as _trigger  # noqa: F401 - registers `trigger` (events)

    app()


if __name__ == "__main__":
    main()

"""``stepdag run``, ``resume``, ``rerun``, ``executions …`` and ``asl run`` (local engine)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from stepdag.cli.main import EXIT_FAILED, app, friendly, out
from stepdag.cli.views import execution_view, node_table, status_style, timeline
from stepdag.core.errors import InputValidationError, StepdagError, WorkflowLoadError

executions = typer.Typer(help="Inspect executions.", no_args_is_help=True)
asl = typer.Typer(help="Run any ASL definition on the local interpreter.", no_args_is_help=True)
app.add_typer(executions, name="executions")
app.add_typer(asl, name="asl")


def home() -> Path:
    return Path(os.environ.get("STEPDAG_HOME", ".stepdag"))


def _store() -> Any:
    from stepdag.runtime.engine import default_store

    return default_store(home())


def _engine(workflow_refs: list[str] | None = None) -> Any:
    """An engine with the given workflows, or every workflow found under statemachines/."""
    from stepdag.core.loader import discover, load_workflow
    from stepdag.runtime.engine import LocalEngine

    engine = LocalEngine(_store())
    if workflow_refs:
        for ref in workflow_refs:
            engine.register(load_workflow(ref).workflow)
    elif Path("statemachines").is_dir():
        for lw in discover("statemachines"):
            engine.register(lw.workflow)
    return engine


def parse_json_arg(value: str | None, what: str) -> Any:
    """``JSON`` or ``@file``; errors say which argument and where the JSON broke."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InputValidationError(f"{what}: no such file {str(path)!r}")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValidationError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _watch(engine: Any, execution_id: str, run: Any) -> Any:
    """Run ``run()`` while a live table shows node states (polled from the store)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["record"] = run()
        except BaseException as exc:  # re-raised on the main thread
            result["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    live_ok = out.is_terminal and not os.environ.get("STEPDAG_NO_LIVE")
    if live_ok:
        with Live(
            node_table(engine.store.list_nodes(execution_id)),
            console=out,
            refresh_per_second=8,
            transient=True,
        ) as live:
            while worker.is_alive():
                worker.join(0.12)
                live.update(node_table(engine.store.list_nodes(execution_id)))
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["record"]


@app.command()
@friendly
def run(
    workflow: Annotated[str, typer.Argument(help="package.module:attr or path/file.py:attr")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON or @file")] = None,
    name: Annotated[str | None, typer.Option(help="execution name (unique per workflow)")] = None,
) -> None:
    """Run a workflow locally with a live view of node states; exit 0 only on success."""
    from stepdag.core.loader import load_workflow

    engine = _engine([])
    dag = engine.register(load_workflow(workflow).workflow)
    rec = engine.create(dag, parse_json_arg(input, "--input"), name=name)
    out.print(f"execution {rec.name} ({dag.workflow}) started")
    final = _watch(engine, rec.execution_id, lambda: engine.execute(rec))
    _finish(engine, final)


def _finish(engine: Any, final: Any) -> None:
    out.print(execution_view(final, engine.store.list_nodes(final.execution_id)))
    if final.status.value != "SUCCEEDED":
        raise typer.Exit(EXIT_FAILED)


@app.command()
@friendly
def resume(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    workflow: Annotated[
        list[str] | None, typer.Option(help="workflow reference(s) to load")
    ] = None,
) -> None:
    """Continue a failed or interrupted execution; completed nodes are not re-run."""
    engine = _engine(workflow)
    rec = engine.store.get_execution(execution)
    out.print(f"resuming {rec.name} ({rec.workflow}), redrive #{rec.redrive_count + 1}")
    final = _watch(engine, rec.execution_id, lambda: engine.resume(rec.execution_id))
    _finish(engine, final)


@app.command()
@friendly
def rerun(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    from_node: Annotated[str, typer.Option("--from", help="re-run this node and its dependents")],
    name: Annotated[str | None, typer.Option(help="name of the new execution")] = None,
    workflow: Annotated[
        list[str] | None, typer.Option(help="workflow reference(s) to load")
    ] = None,
) -> None:
    """New execution reusing stored outputs of everything not downstream of --from."""
    engine = _engine(workflow)
    final = engine.rerun(execution, from_node, name=name)
    _finish(engine, final)


# ---------------------------------------------------------------- executions


@executions.command("list")
@friendly
def list_executions(
    workflow: Annotated[str | None, typer.Option(help="only this workflow")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED, FAILED, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    next_token: Annotated[str | None, typer.Option(help="from a previous page")] = None,
) -> None:
    """List executions, newest first."""
    from stepdag.core.status import RunStatus

    if status is not None and status.upper() not in RunStatus.__members__:
        raise InputValidationError(
            f"--status must be one of {', '.join(RunStatus.__members__)}, got {status!r}"
        )
    page = _store().list_executions(
        workflow=workflow,
        status=RunStatus(status.upper()) if status else None,
        limit=limit,
        next_token=next_token,
    )
    table = Table(box=None, pad_edge=False)
    for col in ("NAME", "WORKFLOW", "STATUS", "STARTED", "DURATION"):
        table.add_column(col)
    for rec in page.items:
        dur = (rec.ended_at - rec.started_at).total_seconds() if rec.ended_at else None
        table.add_row(
            rec.name,
            rec.workflow,
            status_style(rec.status.value),
            rec.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            "-" if dur is None else f"{dur:.2f}s",
        )
    out.print(table)
    if page.next_token:
        out.print(f"more: --next-token {page.next_token}")


@executions.command("show")
@friendly
def show_execution(execution: Annotated[str, typer.Argument(help="execution id or name")]) -> None:
    """One execution: nodes with status, attempts, durations, errors, and a timeline."""
    store = _store()
    rec = store.get_execution(execution)
    nodes = store.list_nodes(rec.execution_id)
    out.print(execution_view(rec, nodes))
    out.print(timeline(rec, nodes))


@executions.command("output")
@friendly
def execution_output(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    node: Annotated[str | None, typer.Argument(help="one node's output instead")] = None,
) -> None:
    """Print the execution's output (or one node's) as JSON on stdout."""
    from stepdag.runtime.records import NodeKey

    store = _store()
    rec = store.get_execution(execution)
    if node is None:
        if rec.status.value != "SUCCEEDED":
            raise StepdagError(f"execution {rec.name!r} is {rec.status.value}; it has no output")
        value = rec.output
    else:
        nrec = store.get_node(NodeKey(rec.execution_id, node))
        if nrec is None or nrec.status.value != "SUCCEEDED":
            state = "never ran" if nrec is None else nrec.status.value
            raise StepdagError(f"node {node!r} of {rec.name!r} has no output ({state})")
        value = nrec.output
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- asl run


@asl.command("run")
def asl_run(
    definition: Annotated[Path, typer.Argument(help="an ASL JSON file")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON or @file")] = None,
    handlers: Annotated[
        str | None,
        typer.Option(help="module:attr — a callable(resource, parameters) or a dict of them"),
    ] = None,
) -> None:
    """Run an ASL file; print one JSON object {status, output, error, cause}.

    The contract: stdout carries exactly that object, exit 0 when status is SUCCEEDED,
    1 for any other run result, 2 when the definition or input is invalid (then status
    is "INVALID" and error/cause say why).
    """
    try:
        from stepdag.asl import StateMachine

        raw = parse_json_arg(input, "--input") if input is not None else {}
        if not definition.is_file():
            raise InputValidationError(f"no such definition file {str(definition)!r}")
        sm = StateMachine(definition.read_text(), name=definition.stem)
        handler = _load_handlers(handlers) if handlers else None
        result = sm.execute(raw, task_handler=handler, name="asl-run").to_contract()
    except Exception as exc:  # the contract holds even for invalid input
        name = type(exc).__name__
        result = {"status": "INVALID", "output": None, "error": name, "cause": str(exc)}
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
        raise typer.Exit(2) from None
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    if result["status"] != "SUCCEEDED":
        raise typer.Exit(EXIT_FAILED)


def _load_handlers(ref: str) -> Any:
    import importlib

    mod, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise WorkflowLoadError(f"cannot load handlers {ref!r}: {exc}") from None
    if isinstance(obj, dict):
        table = obj

        def dispatch(resource: str, parameters: Any, ctx: Any) -> Any:
            fn = table.get(resource)
            if fn is None:
                raise LookupError(f"no handler for resource {resource!r}")
            return fn(parameters)

        return dispatch
    return lambda resource, parameters, ctx: obj(resource, parameters)

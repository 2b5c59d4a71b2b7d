"""``stepdag run``, ``redrive``/``resume``, ``cancel``, ``rerun``, ``executions …``, ``asl run``.

Every command but ``rerun`` and ``asl run`` takes ``--remote`` and goes through a
:class:`~stepdag.cli.remote.Client`: the same command, the same views, on the local
store, the REST API or AWS.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live

from stepdag.cli.client import Client
from stepdag.cli.main import EXIT_FAILED, app, err, friendly, out
from stepdag.cli.remote import (
    RegionOpt,
    RemoteOpt,
    StackOpt,
    Target,
    TokenOpt,
    WorkflowsOpt,
    connect,
    is_workflow_ref,
    load_workflows,
)
from stepdag.cli.views import execution_list, execution_view, node_table, timeline
from stepdag.core.errors import InputValidationError, StepdagError, WorkflowLoadError
from stepdag.core.status import RunStatus
from stepdag.runtime.records import ExecutionRecord, NodeRecord

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


def _target(
    remote: str | None,
    token: str | None,
    region: str | None,
    stack: str | None,
    workflows: list[str] | None = None,
) -> Target:
    return Target(remote, token, region, stack, tuple(workflows or ()))


def client_for(target: Target, workflows: list[Any] | None = None) -> Client:
    """``workflows``: the target's references, already loaded (see ``connect``)."""
    return connect(target, home(), workflows)


class Interrupted(typer.Exit):
    """Ctrl-C while watching: exit 130 without waiting for anything."""

    def __init__(self) -> None:
        super().__init__(130)


@contextmanager
def session(client: Client) -> Iterator[Client]:
    """Close ``client`` when the command ends: after a local run's thread has written its
    last records, or at once when Ctrl-C stopped the watching (:class:`Interrupted`)."""
    interrupted = False
    try:
        yield client
    except Interrupted:
        interrupted = True
        raise
    except KeyboardInterrupt:  # Ctrl-C outside watch() (while starting, say)
        interrupted = True
        err.print("interrupted; `stepdag executions list` shows where the run is")
        raise Interrupted() from None
    finally:
        client.close(wait=not interrupted)


NO_WAIT_LOCAL = (
    "--no-wait needs --remote: a local run lives in this process; use `stepdag serve` + "
    "--remote http://127.0.0.1:8000 to start runs in the background"
)


def refuse_local_no_wait(target: Target, wait: bool) -> None:
    """A local run is a thread of this process: returning at once would end it with the
    process (after ``close`` blocked on it), leaving the execution RUNNING forever."""
    if not wait and target.is_local:
        raise InputValidationError(NO_WAIT_LOCAL)


def watch(
    client: Client, execution_id: str, *, in_process: bool = False
) -> tuple[ExecutionRecord, list[NodeRecord]]:
    """Poll the execution until it ends, showing its node table live on a terminal.

    The same loop serves every target: locally the run is a background thread of this
    process (the service's, ``in_process``), remotely it is Step Functions or a server's
    thread.  Ctrl-C stops watching at once (:class:`Interrupted`): a remote run goes on;
    a local one stops with this process, and the message says how to continue it.
    """
    interval = float(os.environ.get("STEPDAG_POLL_SECONDS") or client.poll_seconds)
    live_ok = out.is_terminal and not os.environ.get("STEPDAG_NO_LIVE")
    rec: ExecutionRecord | None = None
    try:
        # Inside the try: Ctrl-C during the first read is as much "stop watching" as
        # any later one (it once escaped here and close() then waited for the run).
        rec, nodes = client.nodes(execution_id)
        if not live_ok:
            while not rec.is_terminal:
                time.sleep(interval)
                rec, nodes = client.nodes(execution_id)
            return rec, nodes
        with Live(node_table(nodes), console=out, refresh_per_second=8, transient=True) as live:
            while not rec.is_terminal:
                time.sleep(interval)
                rec, nodes = client.nodes(execution_id)
                live.update(node_table(nodes))
        return rec, nodes
    except KeyboardInterrupt:
        name = rec.name if rec is not None else execution_id
        state = rec.status.value if rec is not None else "RUNNING"
        if in_process:
            err.print(
                f"stopped: {name} stays {state} (its run lived in this process); "
                f"continue it with `stepdag redrive {name}` (completed nodes are not re-run)"
            )
        else:
            err.print(f"stopped watching; {name} is still {state} ({client.label})")
        raise Interrupted() from None


def finish(rec: ExecutionRecord, nodes: list[NodeRecord]) -> None:
    out.print(execution_view(rec, nodes))
    if rec.status is not RunStatus.SUCCEEDED:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@friendly
def run(
    workflow: Annotated[
        str, typer.Argument(help="package.module:attr, path/file.py[:attr], or a workflow name")
    ],
    *,
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON or @file")] = None,
    name: Annotated[str | None, typer.Option(help="execution name (unique per workflow)")] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="retries with the same key start one execution (the key is its name)"),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="--no-wait: start, print the id, return (needs --remote)")
    ] = True,
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """Start a run and show its node states live until it ends; exit 0 only on success."""
    target = _target(remote, token, region, stack, [workflow] if is_workflow_ref(workflow) else [])
    refuse_local_no_wait(target, wait)
    payload = parse_json_arg(input, "--input")
    loaded = load_workflows(target.workflows) if target.workflows else None
    wf_name = loaded[0].name if loaded else workflow
    with session(client_for(target, loaded)) as client:
        rec, created = client.start(wf_name, payload, name=name, idempotency_key=idempotency_key)
        verb = "started" if created else "already exists (same name and input): not started again"
        out.print(f"execution {rec.name} ({rec.workflow}) {verb}")
        if not wait:
            out.print(f"id {rec.execution_id}")
            return
        finish(*watch(client, rec.execution_id, in_process=target.is_local))


@app.command()
@friendly
def redrive(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    *,
    wait: Annotated[
        bool, typer.Option(help="--no-wait: redrive and return (needs --remote)")
    ] = True,
    workflow: WorkflowsOpt = None,
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """Continue a failed, aborted or interrupted execution; completed nodes are not re-run."""
    target = _target(remote, token, region, stack, workflow)
    refuse_local_no_wait(target, wait)
    with session(client_for(target)) as client:
        rec = client.redrive(execution)
        out.print(f"redriving {rec.name} ({rec.workflow}), redrive #{rec.redrive_count}")
        if wait:
            finish(*watch(client, rec.execution_id, in_process=target.is_local))


@app.command()
@friendly
def resume(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    workflow: WorkflowsOpt = None,
) -> None:
    """Local alias of ``redrive`` (the local engine's name for it)."""
    redrive(
        execution, wait=True, workflow=workflow, remote=None, token=None, region=None, stack=None
    )


@app.command()
@friendly
def cancel(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """Stop a running execution (StopExecution on AWS); it ends ABORTED."""
    client = client_for(_target(remote, token, region, stack))
    rec = client.cancel(execution)
    _, nodes = client.nodes(rec.execution_id)
    out.print(execution_view(rec, nodes))


@app.command()
@friendly
def rerun(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    from_node: Annotated[str, typer.Option("--from", help="re-run this node and its dependents")],
    name: Annotated[str | None, typer.Option(help="name of the new execution")] = None,
    workflow: WorkflowsOpt = None,
) -> None:
    """New execution reusing stored outputs of everything not downstream of --from."""
    engine = _engine(workflow)
    final = engine.rerun(execution, from_node, name=name)
    finish(final, engine.store.list_nodes(final.execution_id))


# ---------------------------------------------------------------- executions


@executions.command("list")
@friendly
def list_executions(
    *,
    workflow: Annotated[str | None, typer.Option(help="only this workflow")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED, FAILED, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    next_token: Annotated[str | None, typer.Option(help="from a previous page")] = None,
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """List executions, newest first."""
    if status is not None and status.upper() not in RunStatus.__members__:
        raise InputValidationError(
            f"--status must be one of {', '.join(RunStatus.__members__)}, got {status!r}"
        )
    page = client_for(_target(remote, token, region, stack)).list_executions(
        workflow=workflow,
        status=RunStatus(status.upper()) if status else None,
        limit=limit,
        next_token=next_token,
    )
    out.print(execution_list(page.items))
    if page.next_token:
        out.print(f"more: --next-token {page.next_token}")


@executions.command("show")
@friendly
def show_execution(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """One execution: nodes with status, attempts, durations, errors, and a timeline."""
    rec, nodes = client_for(_target(remote, token, region, stack)).nodes(execution)
    out.print(execution_view(rec, nodes))
    out.print(timeline(rec, nodes))


@executions.command("output")
@friendly
def execution_output(
    execution: Annotated[str, typer.Argument(help="execution id or name")],
    node: Annotated[str | None, typer.Argument(help="one node's output instead")] = None,
    *,
    remote: RemoteOpt = None,
    token: TokenOpt = None,
    region: RegionOpt = None,
    stack: StackOpt = None,
) -> None:
    """Print the execution's output (or one node's) as JSON on stdout."""
    client = client_for(_target(remote, token, region, stack))
    if node is None:
        rec = client.get(execution)
        if rec.status is not RunStatus.SUCCEEDED:
            raise StepdagError(f"execution {rec.name!r} is {rec.status.value}; it has no output")
        value = rec.output
    else:
        value = client.node_output(execution, node)
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
    machine_type: Annotated[
        str,
        typer.Option(
            "--type", help="STANDARD (fails at 25,000 history events) or EXPRESS (5-minute limit)"
        ),
    ] = "STANDARD",
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
        sm = StateMachine(
            definition.read_text(), name=definition.stem, machine_type=machine_type.upper()
        )
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


# `logs` and `replay` live in their own modules; importing them registers them on `app`.
from stepdag.cli import logs as _logs  # noqa: E402, F401
from stepdag.cli import replay as _replay  # noqa: E402, F401

"""``stepdag executions list|show|output``: reading executions on any target."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stepdag.cli.app import out
from stepdag.cli.args import ExecutionArg
from stepdag.cli.client import NoOutput
from stepdag.cli.remote import Target
from stepdag.cli.target import client_for, target_options
from stepdag.cli.views import execution_list, execution_view, timeline
from stepdag.core.errors import InputValidationError
from stepdag.core.inputs import dumps
from stepdag.core.status import RunStatus


@target_options
def list_executions(
    *,
    workflow: Annotated[str | None, typer.Option(help="only this workflow")] = None,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED, FAILED, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    next_token: Annotated[str | None, typer.Option(help="from a previous page")] = None,
    target: Target,
) -> None:
    """List executions, newest first."""
    if status is not None and status.upper() not in RunStatus.__members__:
        raise InputValidationError(
            f"--status must be one of {', '.join(RunStatus.__members__)}, got {status!r}"
        )
    page = client_for(target).list_executions(
        workflow=workflow,
        status=RunStatus(status.upper()) if status else None,
        limit=limit,
        next_token=next_token,
    )
    out.print(execution_list(page.items))
    if page.next_token:
        out.print(f"more: --next-token {page.next_token}")


@target_options
def show_execution(
    execution: ExecutionArg,
    *,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="every failure's full message and cause")
    ] = False,
    target: Target,
) -> None:
    """One execution: nodes with status, attempts, durations, errors, and a timeline."""
    rec, nodes = client_for(target).nodes(execution)
    out.print(execution_view(rec, nodes, verbose=verbose))
    out.print(timeline(rec, nodes))


@target_options
def execution_output(
    execution: ExecutionArg,
    node: Annotated[str | None, typer.Argument(help="one node's output instead")] = None,
    *,
    target: Target,
) -> None:
    """Print the execution's output (or one node's) as JSON on stdout."""
    client = client_for(target)
    if node is None:
        rec = client.get(execution)
        if rec.status is not RunStatus.SUCCEEDED:
            raise NoOutput(f"execution {rec.name!r} is {rec.status.value}; it has no output")
        value = rec.output
    else:
        value = client.node_output(execution, node)
    sys.stdout.write(dumps(value, "the output", indent=2, sort_keys=True) + "\n")


__all__ = ["execution_output", "list_executions", "show_execution"]

"""``stepdag run``, ``redrive``/``resume``, ``cancel``, ``rerun``: starting and stopping runs.

Every command takes the target options (``cli/target.py``) and goes through a
:class:`~stepdag.cli.client.Client`: the same command, the same views, on the local
store, the REST API or AWS -- and the same rules, the services' (``api/service.py``,
``api/aws.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from stepdag.cli.app import out
from stepdag.cli.args import ExecutionArg, parse_json_arg
from stepdag.cli.remote import Target, is_workflow_ref, load_workflows
from stepdag.cli.session import finish, refuse_local_no_wait, session, watch
from stepdag.cli.target import WorkflowsOpt, client_for, target_options
from stepdag.cli.views import execution_view
from stepdag.core.inputs import check_execution_name, check_input

WaitOpt = Annotated[
    bool, typer.Option(help="--no-wait: start, print the id, return (needs --remote)")
]


@target_options
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
    wait: WaitOpt = True,
    target: Target,
) -> None:
    """Start a run and show its node states live until it ends; exit 0 only on success."""
    target = replace(target, workflows=(workflow,) if is_workflow_ref(workflow) else ())
    refuse_local_no_wait(target, wait)
    payload = parse_json_arg(input, "--input")
    # The start rules, before anything is loaded, stored or sent (any target).
    check_input(payload, "--input")
    for value, field in ((name, "name"), (idempotency_key, "idempotency key")):
        if value is not None:
            check_execution_name(value, field=field)
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


@target_options
def redrive(
    execution: ExecutionArg,
    *,
    wait: Annotated[
        bool, typer.Option(help="--no-wait: redrive and return (needs --remote)")
    ] = True,
    workflow: WorkflowsOpt = None,
    target: Target,
) -> None:
    """Continue a failed, aborted or interrupted execution; completed nodes are not re-run."""
    target = replace(target, workflows=tuple(workflow or ()))
    refuse_local_no_wait(target, wait)
    with session(client_for(target)) as client:
        rec = client.redrive(execution)
        out.print(f"redriving {rec.name} ({rec.workflow}), redrive #{rec.redrive_count}")
        if wait:
            finish(*watch(client, rec.execution_id, in_process=target.is_local))


def resume(execution: ExecutionArg, workflow: WorkflowsOpt = None) -> None:
    """Local alias of ``redrive`` (the local engine's name for it)."""
    redrive(execution, wait=True, workflow=workflow)


@target_options
def cancel(execution: ExecutionArg, *, target: Target) -> None:
    """Stop a running execution (StopExecution on AWS); it ends ABORTED."""
    client = client_for(target)
    rec = client.cancel(execution)
    _, nodes = client.nodes(rec.execution_id)
    out.print(execution_view(rec, nodes))


@target_options
def rerun(
    execution: ExecutionArg,
    from_node: Annotated[str, typer.Option("--from", help="re-run this node and its dependents")],
    name: Annotated[str | None, typer.Option(help="name of the new execution")] = None,
    *,
    wait: WaitOpt = True,
    workflow: WorkflowsOpt = None,
    target: Target,
) -> None:
    """New execution reusing stored outputs of everything not downstream of --from."""
    target = replace(target, workflows=tuple(workflow or ()))
    refuse_local_no_wait(target, wait)
    with session(client_for(target)) as client:
        rec = client.rerun(execution, from_node, name=name)
        out.print(
            f"execution {rec.name} ({rec.workflow}) started: rerun of {execution} "
            f"from node {from_node!r}"
        )
        if not wait:
            out.print(f"id {rec.execution_id}")
            return
        finish(*watch(client, rec.execution_id, in_process=target.is_local))


__all__ = ["cancel", "redrive", "rerun", "resume", "run"]

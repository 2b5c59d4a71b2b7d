"""``stepdag replay EXECUTION NODE``: run one node again, here, on its recorded inputs.

The recorded run is read from wherever it lives (``--remote``: the local store, the
REST API, or DynamoDB + S3 for a production run); the workflow code comes from the
local checkout.  The replay writes nothing to the recorded execution (see
``runtime/replay.py``): it is a read-only debugging run.
"""

from __future__ import annotations

import pdb
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

import stepdag
from stepdag.cli.app import EXIT_FAILED, out
from stepdag.cli.args import ExecutionArg
from stepdag.cli.remote import Target, load_workflows, require_workflow
from stepdag.cli.target import WorkflowsOpt, client_for, target_options
from stepdag.cli.views import log_view
from stepdag.core.failures import clean
from stepdag.core.inputs import dumps
from stepdag.runtime.replay import ReplayResult, replay_node

_SHOWN = 2_000  # characters of one input shown; replay is for reading, not dumping


def _short(value: Any) -> str:
    text = dumps(value, "the input", default=str, sort_keys=True)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + f"… ({len(text):,} chars)"


def user_traceback(exc: BaseException) -> str:
    """The traceback without stepdag's own frames (runner, replay): the node's code."""
    package = Path(stepdag.__file__).resolve().parent
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not Path(f.filename).resolve().is_relative_to(package)
    ]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    return "".join(lines + traceback.format_exception_only(exc)).rstrip()


def show_result(result: ReplayResult) -> None:
    where = result.node if result.index is None else f"{result.node}[{result.index}]"
    out.print(Text(f"replay of {where} from {result.execution.name}", style="bold"))
    for name, value in result.inputs.items():
        out.print(Text(f"  input {clean(name)} = {_short(value)}"))
    out.print(Text(result.verification, style="dim"))
    # The failure's own line would repeat the traceback printed below.
    logs = [e for e in result.logs if e.get("message") != "node invocation failed"]
    if logs:
        out.print(Text("logs", style="bold"))
        out.print(log_view(logs))
    if result.error is not None:
        tb = user_traceback(result.error)
        failed = f"FAILED: {type(result.error).__name__}: {result.error}"
        out.print(Text(clean(failed, newlines=True), style="bold red"))
        out.print(Text(clean(tb, newlines=True), style="red"))
        return
    if result.status != "SUCCEEDED":
        out.print(Text(f"{result.status}: {clean(result.skip_reason or '')}"))
        return
    out.print(Text("output (validated against the return type)", style="bold"))
    # Text, not markup: an output holding "[red]" is data (the dump escapes controls).
    out.print(
        Text(dumps(result.output, "the replayed output", indent=2, sort_keys=True, default=str))
    )
    if result.same_output is not None:
        same = "the same as" if result.same_output else "DIFFERENT from"
        out.print(Text(f"output is {same} the recorded output", style="dim"))


@target_options
def replay(
    execution: ExecutionArg,
    node: Annotated[str, typer.Argument(help="the node to run again")],
    *,
    index: Annotated[int | None, typer.Option(min=0, help="the Map item to replay")] = None,
    debug: Annotated[bool, typer.Option("--pdb", help="run the node under pdb")] = False,
    workflow: WorkflowsOpt = None,
    target: Target,
) -> None:
    """Re-run one node locally with the exact inputs recorded for it; records nothing.

    Prints the rebuilt inputs, the node's logs, and its output (or error and traceback);
    exit 1 when the node fails.
    """
    loaded = load_workflows(workflow or [])  # once: the client's and the replay's code
    client = client_for(replace(target, workflows=tuple(workflow or ())), loaded)
    rec = client.get(execution)
    dags = {wf.name: wf.build() for wf in loaded}
    dag = require_workflow(dags, rec.workflow)
    call = _under_pdb if debug else None
    result = replay_node(dag, rec, node, client, index=index, call=call)
    show_result(result)
    if result.error is not None or result.status == "FAILED":
        raise typer.Exit(EXIT_FAILED)


def _under_pdb(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``pdb.runcall`` that leaves Ctrl-C alone: pdb's default installs its own SIGINT
    handler for good, which would outlive the replay in a longer-lived process."""
    return pdb.Pdb(nosigint=True).runcall(fn, *args, **kwargs)


__all__ = ["replay", "show_result"]

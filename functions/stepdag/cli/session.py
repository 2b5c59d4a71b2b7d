"""A command's time with a client: watching a run to its end, and closing the client.

Shared by every command that starts a run (``run``, ``redrive``, ``rerun``, ``trigger``):
the same loop on every target, and the same Ctrl-C rules (exit 130 at once).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.live import Live

from stepdag.cli.app import EXIT_FAILED, Interrupted, err, out
from stepdag.cli.client import Client
from stepdag.cli.remote import Target
from stepdag.cli.views import execution_view, live_view
from stepdag.core.errors import InputValidationError
from stepdag.core.status import RunStatus
from stepdag.runtime.records import ExecutionRecord, NodeRecord


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
    """Poll the execution until it ends, showing its node table live on a terminal (a
    Map's item counts and every failure's one line, updated on each poll).

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
        with Live(live_view(rec, nodes), console=out, refresh_per_second=8, transient=True) as live:
            while not rec.is_terminal:
                time.sleep(interval)
                rec, nodes = client.nodes(execution_id)
                live.update(live_view(rec, nodes), refresh=True)  # every poll is shown
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
    """Show the ended execution; exit 1 unless it succeeded."""
    out.print(execution_view(rec, nodes))
    if rec.status is not RunStatus.SUCCEEDED:
        raise typer.Exit(EXIT_FAILED)


__all__ = ["NO_WAIT_LOCAL", "finish", "refuse_local_no_wait", "session", "watch"]

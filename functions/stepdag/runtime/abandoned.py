"""Ending the node attempts an execution left behind when it ended without them.

On AWS nothing inside a run sees its Tasks abandoned: Step Functions times a Task out
(or a branch fails, or the run is stopped) and the Lambda runs on.  Its late result is
refused by the store once the attempt's deadline has passed (``claim_node``), but a
Lambda that is still running keeps its node RUNNING.  When the execution's terminal
status is recorded (``api/status.py``), :func:`end_running_nodes` ends every attempt still
RUNNING: TIMED_OUT when it had a deadline and it passed or the run failed on a timeout,
else FAILED ``States.Abandoned``; whatever the attempt returns afterwards is refused.

Pure store logic (no interpreter, no AWS library): the API Lambda imports it.
"""

from __future__ import annotations

from datetime import datetime

from stepdag.core.model import Node
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import REDRIVE_STRIDE
from stepdag.runtime.store import TIMEOUT_ERROR, ExecutionStore


def timeout_message(node: Node, attempt: int, index: int | None) -> str:
    """The cause recorded when ``attempt`` (0-based, within its redrive) of ``node`` --
    or of its Map item ``index`` -- runs past the node's ``timeout``."""
    retry = node.options.retry
    of = 1 if retry is None else retry.attempts_for(TIMEOUT_ERROR)
    where = repr(node.name) if index is None else f"{node.name!r} item {index}"
    seconds = float(node.options.timeout or 0)
    return f"node {where} timed out after {seconds:.1f} s (attempt {attempt + 1} of {of})"


def end_running_nodes(
    store: ExecutionStore,
    execution_id: str,
    *,
    status: RunStatus,
    error: str | None,
    now: datetime,
) -> int:
    """End every RUNNING node (and Map item) of an execution that ended ``status``;
    returns how many were ended.  A SUCCEEDED run left none behind: nothing is read."""
    if status is RunStatus.SUCCEEDED or not status.is_terminal:
        return 0
    ended = 0
    for node in store.list_nodes(execution_id, include_items=True):
        if node.status is not NodeStatus.RUNNING:
            continue
        where = (
            repr(node.node) if node.map_index is None else f"{node.node!r} item {node.map_index}"
        )
        attempt = node.attempt % REDRIVE_STRIDE + 1
        timed_out = node.deadline is not None and (
            node.past_deadline(now) or error == TIMEOUT_ERROR
        )
        if timed_out:
            cause = f"node {where} timed out (attempt {attempt})"
        else:
            cause = (
                f"node {where} was still running (attempt {attempt}) when the execution "
                f"ended {status.value}; its result will be discarded"
            )
        rec = store.abandon_node(
            node.key, attempt=node.attempt, timed_out=timed_out, cause=cause, now=now
        )
        ended += rec is not None
    return ended

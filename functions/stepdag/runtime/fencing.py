"""What the local engine does with the Task attempts its interpreter gave up on.

The store fences each attempt of a node with a ``timeout`` (``claim_node``'s deadline):
past it, the attempt's completion is refused and the node recorded TIMED_OUT.  That
covers an attempt that finishes late; this module covers the one that never finishes
before the execution ends: it is ended in the store at once (TIMED_OUT if it ran out of
time, else FAILED ``States.Abandoned``), so no node stays RUNNING in a finished
execution and whatever it returns later is refused.  Its thread cannot be killed: the
node function runs on until it returns; a cooperative one can watch ``ctx.cancelled``.
"""

from __future__ import annotations

from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus
from stepdag.runtime.records import NodeKey
from stepdag.runtime.runner import REDRIVE_STRIDE, NodeRequest, timeout_message
from stepdag.runtime.runs import LocalRun
from stepdag.runtime.store import ExecutionStore

# The interpreter's timer starts as it spawns the Task's thread, our clock when that
# thread calls the handler: an abandoned attempt this close to its timeout timed out.
TIMER_SLACK_S = 0.25


def abandon_in_flight(store: ExecutionStore, dag: Dag, run: LocalRun, status: str) -> int:
    """End, in the store, every attempt of ``run`` still in flight after its interpreter
    ended with ``status``; returns how many were ended."""
    ended = 0
    for flight in run.in_flight():
        req = NodeRequest.from_payload(flight.payload)
        if req.phase not in ("run", "item", "gather") or req.node not in dag.nodes:
            continue  # the other phases claim nothing: nothing is RUNNING on their behalf
        node = dag[req.node]
        timeout = flight.ctx.timeout_seconds
        timed_out = timeout is not None and flight.elapsed >= timeout - TIMER_SLACK_S
        if timed_out:
            cause = timeout_message(node, req)
        else:
            cause = (
                f"node {node.name!r} was still running (attempt {req.attempt + 1}) when the "
                f"execution ended {status}; its result will be discarded"
            )
        redrive = req.redrive if req.redrive is not None else run.record.redrive_count
        rec = store.abandon_node(
            NodeKey(req.execution, req.node, req.index),
            attempt=redrive * REDRIVE_STRIDE + req.attempt,
            timed_out=timed_out,
            cause=cause,
        )
        ended += rec is not None
    return ended


def timeout_cause(store: ExecutionStore, execution_id: str) -> str:
    """The cause of an execution that failed on ``States.Timeout``: the node that timed
    out last, its timeout and its attempt (Step Functions records an empty cause)."""
    timed_out = [
        n
        for n in store.list_nodes(execution_id, include_items=True)
        if n.status is NodeStatus.TIMED_OUT and n.cause
    ]
    if not timed_out:
        return ""
    last = max(timed_out, key=lambda n: (n.ended_at is not None, n.ended_at))
    return last.cause or ""

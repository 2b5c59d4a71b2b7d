"""Fencing on the local engine: abandoned Task attempts, and one driver per execution.

The store fences each attempt of a node with a ``timeout`` (``claim_node``'s deadline):
past it, the attempt's completion is refused and the node recorded TIMED_OUT.  That
covers an attempt that finishes late; this module covers the one that never finishes
before the execution ends: it is ended in the store at once (TIMED_OUT if it ran out of
time, else FAILED ``States.Abandoned``), so no node stays RUNNING in a finished
execution and whatever it returns later is refused.  Its thread cannot be killed: the
node function runs on until it returns; a cooperative one can watch ``ctx.cancelled``.

Each run also holds its execution's lease (``store_leases.py``) while it lives, renewed
by :class:`LeaseKeeper`: a resume or redrive from another process is refused (409) while
it lives, and takes the lease over at once when its process is gone (kill -9).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from stepdag.core.errors import Conflict
from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus
from stepdag.runtime.abandoned import timeout_message
from stepdag.runtime.payloads import NodeRequest
from stepdag.runtime.records import REDRIVE_STRIDE, ExecutionRecord, NodeKey
from stepdag.runtime.runs import LocalRun
from stepdag.runtime.store import ExecutionStore, LeaseHeld

logger = logging.getLogger("stepdag.engine")

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
            cause = timeout_message(node, req.attempt, req.index)
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


# -- the execution lease: one driver per execution -------------------------------------------

LEASE_S = 30.0
"""How long a run's lease lasts unless renewed: how long a crashed process on another
host blocks a resume (one on this host is superseded at once: its pid is gone)."""
RENEW_S = LEASE_S / 3


def lease_owner() -> str:
    """An owner id naming this process (host, pid) and one engine in it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead(owner: str) -> bool:
    """Whether ``owner`` (a :func:`lease_owner`) names a process of this host that is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def hold(store: ExecutionStore, rec: ExecutionRecord, owner: str) -> None:
    """Take (or renew) ``rec``'s lease for ``owner``, superseding a holder whose process
    is gone; a live holder elsewhere is a :class:`Conflict` (409) saying so."""
    current = store.get_lease(rec.execution_id)
    dead = current.owner if current is not None and _dead(current.owner) else None
    try:
        store.acquire_lease(rec.execution_id, owner=owner, seconds=LEASE_S, supersede=dead)
    except LeaseHeld as held:
        holder = held.lease.owner.rsplit(":", 1)[0].replace(":", " pid ")
        raise Conflict(
            f"execution {rec.name!r} is running in another process ({holder}); "
            "wait for it to end, or cancel it first"
        ) from None


class LeaseKeeper:
    """Renews the leases of an engine's live runs every :data:`RENEW_S`, in one daemon
    thread that runs while there are runs."""

    def __init__(self, store: ExecutionStore, owner: str, live: Callable[[], list[str]]) -> None:
        self.store, self.owner, self._live = store, owner, live
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="stepdag-leases", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(RENEW_S)
            with self._lock:
                ids = self._live()
                if not ids:
                    self._thread = None
                    return
            for execution_id in ids:
                try:
                    self.store.acquire_lease(execution_id, owner=self.owner, seconds=LEASE_S)
                except Exception:  # the run goes on; a resume may now be let in
                    logger.exception("could not renew the lease of %s", execution_id)

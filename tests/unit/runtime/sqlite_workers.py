"""Child-process entry points for the SQLite multi-process tests.

Kept out of the test module so a spawned child imports only stepdag, not pytest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def claim_and_complete(path: str, owner: str, start: Event, results: Queue[Any]) -> None:
    """Wait for the start signal, then race the other processes for the same node."""
    store = SqliteStore(path)
    key = NodeKey("exec-mp", "hot")
    store.get_node(key)  # open the connection before the race, not during it
    start.wait(timeout=30)
    claim = store.claim_node(key, attempt=0, owner=owner, lease_seconds=60, now=T0)
    completed = False
    if claim.acquired:
        store.complete_node(key, owner=owner, output={"by": owner, "pid": os.getpid()}, now=T0)
        completed = True
    results.put((owner, claim.acquired, completed))
    store.close()


def complete_then_die(path: str) -> None:
    """Complete a node, then SIGKILL ourselves: no close(), no checkpoint, no atexit."""
    store = SqliteStore(path)
    key = NodeKey("exec-kill", "n")
    store.claim_node(key, attempt=0, owner="doomed", lease_seconds=60, now=T0)
    store.complete_node(key, owner="doomed", output={"survives": True, "n": 12345}, now=T0)
    # Die holding the write lock mid-transaction: the kernel drops the lock, and the
    # uncommitted row must never become visible.
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("INSERT INTO cache (key, output, created_at) VALUES ('uncommitted', '1', 0)")
    os.kill(os.getpid(), signal.SIGKILL)

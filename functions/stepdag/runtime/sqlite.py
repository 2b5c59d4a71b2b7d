"""SQLite backend for the local engine: one file, safe across threads and processes.

Concurrency model
-----------------
* WAL journal: readers never block the writer and vice versa.
* One connection per thread, opened lazily (sqlite3 connections must not be shared
  between threads mid-transaction); connections are also re-opened after ``fork``.
* Every read-modify-write runs in ``BEGIN IMMEDIATE``: the write lock is taken *before*
  the read, so two claimers can never both read "unclaimed".  A deferred transaction
  would upgrade read->write and fail with SQLITE_BUSY without waiting on the busy handler.
* ``busy_timeout`` makes contenders (threads or processes) wait for the lock.

Durability
----------
``synchronous=NORMAL`` in WAL mode: a transaction is durable against *process* crashes
(SIGKILL, OOM) as soon as COMMIT returns -- the frames are in the WAL file, in the OS page
cache, and every later reader sees them.  Only an OS crash or power loss can lose the
last few commits (the database is never corrupted).  That is the right trade for a local
engine: it removes an fsync per claim and per completion, which would otherwise
dominate the per-node overhead.  Pass ``synchronous="FULL"`` for power-loss durability.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from stepdag.core.errors import StoreError
from stepdag.runtime.records import Item, NodeKey
from stepdag.runtime.sqlite_schema import (
    ADD_NODE,
    EXECUTION_COLS,
    GET_NODE,
    PUT_CACHE,
    PUT_NODE,
    SCHEMA_VERSION,
    UPDATABLE,
    WHOLE,
    cursor_after,
    listing_sql,
    migrate,
    node_from_row,
    node_params,
)
from stepdag.runtime.store import (
    ExecutionStore,
    NodeDecision,
    StoreUnavailable,
)


class _Lease:
    """Binds a connection to the thread holding this object in its thread-local storage.

    When the thread ends its locals are dropped, ``__del__`` runs (CPython frees them at
    once) and the connection goes back to the idle pool. Opening a connection costs ~2 ms
    (connect + PRAGMAs); the interpreter starts a thread per execution and per Parallel
    branch, so without reuse that cost would dominate small workflows.
    """

    __slots__ = ("conn", "pid", "pool")

    def __init__(self, conn: sqlite3.Connection, pool: _Pool) -> None:
        self.conn, self.pool, self.pid = conn, pool, os.getpid()

    def __del__(self) -> None:
        if self.pid != os.getpid():  # never touch a parent's connection in a forked child
            return
        if self.pool.closed:
            with suppress(sqlite3.Error):
                self.conn.close()
        else:
            self.pool.idle.append(self.conn)  # deque.append is atomic: safe from any thread


class _Pool:
    """Idle connections of one store, and whether the store was closed.

    ``close()`` closes only idle connections and the caller's own: closing a connection
    another thread may be executing on can crash the sqlite3 module. The others are
    closed by their lease when their thread ends.
    """

    __slots__ = ("closed", "idle")

    def __init__(self) -> None:
        self.idle: deque[sqlite3.Connection] = deque()
        self.closed = False


class _Local(threading.local):
    lease: _Lease | None = None


# One writer lock per database file per process. SQLite allows one writer at a time; when
# threads of one process contend for it, SQLite's busy handler makes the losers *sleep*
# (1, 2, 5, 10 … ms back-off), which wrecks Map/Parallel throughput. Queuing them on a
# Python lock first hands the write lock over as soon as it is free (re-entrant: opening
# a connection may migrate the schema inside a write). Other processes still meet at
# SQLite's lock and busy_timeout.
_WRITER_LOCKS: dict[str, threading.RLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(key: str) -> threading.RLock:
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(key)
        if lock is None:
            lock = _WRITER_LOCKS[key] = threading.RLock()
        return lock


def _reset_writer_locks() -> None:  # a forked child must not inherit a held lock
    _WRITER_LOCKS.clear()


os.register_at_fork(after_in_child=_reset_writer_locks)


class SqliteStore(ExecutionStore):
    """The local store.  ``path`` is created (with parent directories) on first use."""

    def __init__(
        self,
        path: str | Path = ".stepdag/stepdag.db",
        *,
        busy_timeout: float = 30.0,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], datetime] | None = None,
        pagination_key: bytes | None = None,
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            # Each thread has its own connection, so ":memory:" would give each thread
            # its own empty database.  Use a file (a tmp_path one in tests).
            raise ValueError("SqliteStore needs a file path, not an in-memory/URI database")
        super().__init__(clock=clock, pagination_key=pagination_key)
        self._init_kwargs: dict[str, Any] = {
            "busy_timeout": busy_timeout,
            "synchronous": synchronous,
            "clock": clock,
            "pagination_key": pagination_key,
        }
        self.path = Path(path)
        self._lock_key = os.path.abspath(self.path)
        self._busy_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._local = _Local()
        self._lock = threading.Lock()
        self._pool = _Pool()
        self._schema_ready = False
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (e.g. handed to a spawned worker): the copy opens its own connections.
        return (partial(SqliteStore, self.path, **self._init_kwargs), ())

    # -- connections ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        local = self._local
        lease = local.lease
        # A connection inherited through fork() must not be used by the child: it shares
        # the parent's file locks.  Open a fresh one instead (never close the inherited one).
        if lease is not None and lease.pid == os.getpid():
            return lease.conn
        try:
            conn = self._pool.idle.pop()  # one a finished thread gave back
        except IndexError:
            with self._errors("open database"):
                conn = self._open()
        local.lease = _Lease(conn, self._pool)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new database to WAL. SQLite answers SQLITE_BUSY at once (no busy
        handler) when another connection holds a lock during the switch — e.g. two
        Parallel branches opening a fresh file together — so serialise it in-process and
        retry across processes until busy_timeout. Once in WAL the mode persists and
        this is a no-op."""
        deadline = time.monotonic() + self._busy_ms / 1000
        delay = 0.001
        while True:
            try:
                with _writer_lock(self._lock_key):
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.  check_same_thread=False
        # only so close() can close every thread's connection; each one is used by its
        # own thread alone.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        self._enable_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        with self._lock:
            if not self._schema_ready:
                self._migrate(conn)
                self._schema_ready = True
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the schema idempotently; refuse a database from a newer stepdag."""
        with _writer_lock(self._lock_key):
            migrate(conn, self.path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with _writer_lock(self._lock_key):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Translate sqlite3 errors at the adapter boundary, chained for debugging."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:  # OSError: creating the directory
            raise self._translate(exc, operation) from exc

    def _translate(self, exc: Exception, operation: str) -> StoreError:
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
            return StoreUnavailable(f"{operation} on {self.path}: {message}")
        return StoreError(f"{operation} on {self.path} failed: {message}")

    def close(self) -> None:
        # Never close a connection another thread may be executing on (that can crash
        # the sqlite3 module): close the idle ones and our own; every other thread gets
        # StoreError on its next call and its lease closes its connection when the thread
        # ends. The thread-local leases are kept, not replaced: dropping them would run
        # their finalisers, and so close those connections, right now.
        with self._lock:
            self._closed = True
            pool = self._pool
            pool.closed = True
        lease = self._local.lease
        if lease is not None and lease.pid == os.getpid():
            self._local.lease = None  # its finaliser closes the connection
        while pool.idle:
            with suppress(sqlite3.Error):  # best effort: the store is going away anyway
                pool.idle.pop().close()

    # -- executions ----------------------------------------------------------------------

    def _insert_execution(self, item: Item) -> Item | None:
        names = ", ".join(f":{c.strip()}" for c in EXECUTION_COLS.split(","))
        with self._errors("create execution"), _writer_lock(self._lock_key):
            conn = self._conn()
            try:
                # Constant column names; every value is a bound parameter.
                sql = f"INSERT INTO executions ({EXECUTION_COLS}) VALUES ({names})"  # nosec B608
                conn.execute(sql, item)
            except sqlite3.IntegrityError:
                row = conn.execute(
                    "SELECT * FROM executions WHERE execution_id = ? "
                    "OR (workflow = ? AND name = ?) LIMIT 1",
                    (item["execution_id"], item["workflow"], item["name"]),
                ).fetchone()
                if row is None:  # not a uniqueness conflict after all
                    raise
                return dict(row)
        return None

    def _get_execution(self, execution_id: str) -> Item | None:
        with self._errors("get execution"):
            row = (
                self._conn()
                .execute("SELECT * FROM executions WHERE execution_id = ?", (execution_id,))
                .fetchone()
            )
        return None if row is None else dict(row)

    def _find_executions_by_name(self, name: str, workflow: str | None) -> list[Item]:
        sql, params = "SELECT * FROM executions WHERE name = ?", [name]
        if workflow is not None:
            sql, params = sql + " AND workflow = ?", [name, workflow]
        with self._errors("get execution"):
            return [dict(r) for r in self._conn().execute(sql, params).fetchall()]

    def _update_execution(
        self,
        execution_id: str,
        changes: Item,
        expected: frozenset[str] | None,
        *,
        redrive_count: int | None = None,
    ) -> tuple[Item | None, Item | None]:
        assert set(changes) <= UPDATABLE  # column names come from the base, never users
        sets = ", ".join(f"{c} = ?" for c in changes)
        sql = f"UPDATE executions SET {sets} WHERE execution_id = ?"  # nosec B608
        params: list[Any] = [*changes.values(), execution_id]
        if expected is not None:
            sql += f" AND status IN ({', '.join('?' * len(expected))})"
            params.extend(sorted(expected))
        if redrive_count is not None:
            sql += " AND redrive_count = ?"
            params.append(redrive_count)
        with self._errors("update execution"), _writer_lock(self._lock_key):
            conn = self._conn()
            # One statement, so atomic without an explicit transaction; fetchall()
            # finishes it (and so commits) before we look at the result.
            rows = conn.execute(sql + " RETURNING *", params).fetchall()
            if rows:
                return dict(rows[0]), None
            current = conn.execute(
                "SELECT * FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        return None, None if current is None else dict(current)

    def _query_executions(
        self,
        *,
        workflow: str | None,
        status: str | None,
        tenant: str | None,
        limit: int,
        cursor: Any,
    ) -> tuple[list[Item], Any]:
        sql, params = listing_sql(
            workflow=workflow, status=status, tenant=tenant, limit=limit, cursor=cursor
        )
        with self._errors("list executions"):
            rows = [dict(r) for r in self._conn().execute(sql, params).fetchall()]
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, cursor_after(rows[-1])

    # -- nodes ---------------------------------------------------------------------------

    def _transact_node(
        self, key: NodeKey, decide: NodeDecision, cache_item: Item | None = None
    ) -> tuple[bool, Item | None]:
        # The hot path (two of these per node run): spelled out instead of the _errors and
        # _write context managers, which together cost as much as the SQL here.
        index = WHOLE if key.map_index is None else key.map_index
        conn = self._conn()
        try:
            self_lock = _writer_lock(self._lock_key)
            self_lock.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(GET_NODE, (key.execution_id, key.node, index)).fetchone()
                current = None if row is None else node_from_row(row)
                new = decide(current)
                if new is not None:
                    conn.execute(PUT_NODE, node_params(new))
                    if cache_item is not None:
                        conn.execute(PUT_CACHE, cache_item)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self_lock.release()
        except sqlite3.Error as exc:
            raise self._translate(exc, f"write node {key}") from exc
        return (False, current) if new is None else (True, new)

    def _get_node(self, key: NodeKey) -> Item | None:
        index = WHOLE if key.map_index is None else key.map_index
        with self._errors(f"get node {key}"):
            row = self._conn().execute(GET_NODE, (key.execution_id, key.node, index)).fetchone()
        return None if row is None else node_from_row(row)

    def _query_nodes(
        self, execution_id: str, *, nodes: Collection[str] | None, include_items: bool
    ) -> list[Item]:
        sql = "SELECT * FROM nodes WHERE execution_id = ?"  # nosec B608
        params: list[Any] = [execution_id]
        if nodes is not None:
            names = list(nodes)
            sql += f" AND node IN ({', '.join('?' * len(names))})"
            params.extend(names)
        if not include_items:
            sql += f" AND map_index = {WHOLE}"
        sql += " ORDER BY node, map_index"
        with self._errors("list nodes"):
            rows = self._conn().execute(sql, params).fetchall()
        return [node_from_row(r) for r in rows]

    def _insert_nodes_if_absent(self, items: Sequence[Item]) -> int:
        if not items:
            return 0
        with self._errors("copy nodes"), self._write() as conn:
            before = conn.total_changes
            conn.executemany(ADD_NODE, [node_params(i) for i in items])
            return conn.total_changes - before

    # -- history -------------------------------------------------------------------------

    def _append_events(self, execution_id: str, rows: Sequence[tuple[int, str]]) -> int:
        with self._errors("append events"), self._write() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO events (execution_id, id, body) VALUES (?, ?, ?)",
                [(execution_id, event_id, body) for event_id, body in rows],
            )
            return conn.total_changes - before

    def _get_events(self, execution_id: str, after_id: int, limit: int | None) -> list[str]:
        sql = "SELECT body FROM events WHERE execution_id = ? AND id > ? ORDER BY id LIMIT ?"
        with self._errors("get events"):
            rows = self._conn().execute(sql, (execution_id, after_id, limit or -1)).fetchall()
        return [r[0] for r in rows]

    # -- leases --------------------------------------------------------------------------

    def _get_lease(self, execution_id: str) -> Item | None:
        with self._errors("get lease"):
            row = (
                self._conn()
                .execute("SELECT * FROM leases WHERE execution_id = ?", (execution_id,))
                .fetchone()
            )
        return None if row is None else dict(row)

    def _swap_lease(self, execution_id: str, new: Item | None, expected: Item | None) -> bool:
        with self._errors("write lease"), self._write() as conn:
            row = conn.execute(
                "SELECT * FROM leases WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            if (None if row is None else dict(row)) != expected:
                return False
            if new is None:
                conn.execute("DELETE FROM leases WHERE execution_id = ?", (execution_id,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO leases (execution_id, owner, expires_at) "
                    "VALUES (:execution_id, :owner, :expires_at)",
                    new,
                )
            return True

    # -- cache ---------------------------------------------------------------------------

    def _get_cache(self, key: str) -> Item | None:
        with self._errors("get cache entry"):
            row = self._conn().execute("SELECT * FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(row)

    def _put_cache(self, item: Item) -> None:
        with self._errors("put cache entry"), _writer_lock(self._lock_key):
            self._conn().execute(PUT_CACHE, item)


__all__ = ["SCHEMA_VERSION", "SqliteStore"]

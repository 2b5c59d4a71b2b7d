"""The SQLite store's schema and rows: DDL, migration, statements, row <-> item, listing.

Pure SQL and row mapping; ``SqliteStore`` (``sqlite.py``) owns the connections, the
locking and the transactions these run in.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

from stepdag.core.errors import StoreError
from stepdag.runtime.errors import InvalidPaginationToken
from stepdag.runtime.records import Item

SCHEMA_VERSION: Final = 2

# map_index is part of the primary key; NULLs are distinct in SQLite keys, so the node's
# own record is stored as -1 (items are >= 0, which also sorts it first).
WHOLE: Final = -1

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    error TEXT,
    cause TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    redrive_count INTEGER NOT NULL DEFAULT 0,
    rerun_of TEXT,
    rerun_from TEXT,
    tenant TEXT,
    definition_sha TEXT,
    UNIQUE (workflow, name)
);
CREATE INDEX IF NOT EXISTS executions_by_time
    ON executions (started_at DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_by_workflow
    ON executions (workflow, started_at DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_by_status
    ON executions (status, started_at DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_by_tenant
    ON executions (tenant, started_at DESC, execution_id DESC);
CREATE INDEX IF NOT EXISTS executions_by_name ON executions (name);
-- A rowid table (not WITHOUT ROWID): outputs can be megabytes, and large rows belong in
-- a rowid b-tree with overflow pages.
CREATE TABLE IF NOT EXISTS nodes (
    execution_id TEXT NOT NULL,
    node TEXT NOT NULL,
    map_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    owner TEXT,
    lease_expires_at INTEGER,
    started_at INTEGER,
    ended_at INTEGER,
    error TEXT,
    cause TEXT,
    output TEXT,
    output_bytes INTEGER,
    cache_key TEXT,
    cache_hit INTEGER NOT NULL,
    items INTEGER,
    skip_reason TEXT,
    deadline INTEGER,
    version INTEGER NOT NULL,
    PRIMARY KEY (execution_id, node, map_index)
);
CREATE TABLE IF NOT EXISTS events (
    execution_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_id, id)
);
CREATE TABLE IF NOT EXISTS leases (
    execution_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    output TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
"""

EXECUTION_COLS: Final = (
    "execution_id, name, workflow, status, input, output, error, cause, started_at, "
    "ended_at, redrive_count, rerun_of, rerun_from, tenant, definition_sha"
)
NODE_COLS: Final = (
    "execution_id",
    "node",
    "map_index",
    "status",
    "attempt",
    "attempts",
    "owner",
    "lease_expires_at",
    "started_at",
    "ended_at",
    "error",
    "cause",
    "output",
    "output_bytes",
    "cache_key",
    "cache_hit",
    "items",
    "skip_reason",
    "deadline",
    "version",
)
PUT_NODE: Final = (
    f"INSERT OR REPLACE INTO nodes ({', '.join(NODE_COLS)}) "
    f"VALUES ({', '.join(':' + c for c in NODE_COLS)})"
)
ADD_NODE: Final = PUT_NODE.replace("OR REPLACE", "OR IGNORE", 1)
GET_NODE: Final = "SELECT * FROM nodes WHERE execution_id = ? AND node = ? AND map_index = ?"
PUT_CACHE: Final = (
    "INSERT OR REPLACE INTO cache (key, output, created_at, expires_at) "
    "VALUES (:key, :output, :created_at, :expires_at)"
)
UPDATABLE: Final = frozenset({"status", "output", "error", "cause", "ended_at", "redrive_count"})


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema idempotently, in one write transaction (the caller holds the
    writer lock); refuse a database from a newer stepdag."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {row[0]}; this stepdag supports "
                f"up to {SCHEMA_VERSION} -- upgrade stepdag"
            )
        columns = {r[1] for r in conn.execute("PRAGMA table_info(nodes)")}
        if "deadline" not in columns:  # version 1: nodes had no attempt deadline
            conn.execute("ALTER TABLE nodes ADD COLUMN deadline INTEGER")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- rows <-> items --------------------------------------------------------------------------


def node_from_row(row: sqlite3.Row) -> Item:
    item = dict(row)
    if item["map_index"] == WHOLE:
        item["map_index"] = None
    item["cache_hit"] = bool(item["cache_hit"])
    return item


def node_params(item: Item) -> Item:
    index = item["map_index"]
    return {**item, "map_index": WHOLE if index is None else index}


# -- listing: newest first, keyset pagination ------------------------------------------------


def listing_sql(
    *, workflow: str | None, status: str | None, tenant: str | None, limit: int, cursor: Any
) -> tuple[str, list[Any]]:
    """The SELECT for one page of executions after ``cursor`` (a :func:`cursor_after`
    value, or None), one row more than ``limit``: that row tells whether another page
    exists, so the last page never hands out a token that leads to an empty page."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("workflow", workflow), ("status", status), ("tenant", tenant)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if cursor is not None:
        if not (
            isinstance(cursor, list)
            and len(cursor) == 2
            and isinstance(cursor[0], int)
            and isinstance(cursor[1], str)
        ):
            raise InvalidPaginationToken("next_token does not hold a SQLite position")
        where.append("(started_at, execution_id) < (?, ?)")
        params.extend(cursor)
    sql = "SELECT * FROM executions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, execution_id DESC LIMIT ?"
    params.append(limit + 1)
    return sql, params


def cursor_after(row: Item) -> list[Any]:
    """The position after ``row`` in the listing's order."""
    return [row["started_at"], row["execution_id"]]

"""SqliteStore: the shared store contract, plus what only a file database must prove."""

from __future__ import annotations

import multiprocessing
import pickle
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepdag.core.errors import StoreError
from stepdag.core.status import NodeStatus
from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SCHEMA_VERSION, SqliteStore
from tests.contract.store_contract import T0, StoreContract, execution, run_node
from tests.unit.runtime import sqlite_workers


class TestSqliteContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteStore]:
        store = SqliteStore(tmp_path / "state" / "stepdag.db")
        yield store
        store.close()


def test_database_settings_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        store.create_execution(execution())
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)
    raw.close()
    # Re-opening runs the idempotent migration again and keeps the data.
    with SqliteStore(path) as again:
        assert again.get_execution("exec-1").workflow == "etl"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SqliteStore(path) as store:
        store.create_execution(execution())
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with SqliteStore(path) as store, pytest.raises(StoreError, match="upgrade stepdag"):
        store.get_execution("exec-1")


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    key = NodeKey("exec-1", "n")
    with SqliteStore(path) as store:
        store.create_execution(execution())
        run_node(store, key, {"kept": True})
    raw = sqlite3.connect(path)  # what stepdag 1 left: no attempt deadlines
    raw.execute("ALTER TABLE nodes DROP COLUMN deadline")
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with SqliteStore(path) as store:
        assert store.get_node(key).output == {"kept": True}  # type: ignore[union-attr]
        claim = store.claim_node(
            NodeKey("exec-1", "m"), attempt=0, owner="a", lease_seconds=9, deadline_seconds=1
        )
        assert claim.acquired and claim.record.deadline is not None
    raw = sqlite3.connect(path)
    version = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    raw.close()
    assert version == (str(SCHEMA_VERSION),)


def test_closed_store_refuses_use(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_execution("x")


def test_sqlite_errors_are_translated_and_chained(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    store = SqliteStore(blocker / "s.db")
    with pytest.raises(StoreError) as info:
        store.get_execution("x")
    assert info.value.__cause__ is not None


def test_store_pickles_by_path_and_refuses_memory(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db", busy_timeout=2) as store:
        store.create_execution(execution())
        with pickle.loads(pickle.dumps(store)) as copy:
            assert copy.path == store.path and copy.get_execution("exec-1").workflow == "etl"
    with pytest.raises(ValueError, match="file path"):
        SqliteStore(":memory:")


def test_each_thread_gets_its_own_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    # The connections themselves, all four threads alive at once: an id() of a finished
    # thread's (collected) connection can be reused by the next one, which made this flaky.
    seen: list[object] = []
    together = threading.Barrier(4)

    def grab() -> None:
        conn = store._conn()
        assert store._conn() is conn
        seen.append(conn)
        together.wait(timeout=10)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 4
    store.close()


def test_processes_racing_for_one_node_one_wins(tmp_path: Path) -> None:
    # A fresh file: the children also race to create the schema (first use in parallel).
    path = str(tmp_path / "mp.db")
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=sqlite_workers.claim_and_complete, args=(path, f"p{i}", start, results))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    winners = [owner for owner, acquired, _ in outcomes if acquired]
    assert len(winners) == 1
    assert [owner for owner, _, completed in outcomes if completed] == winners
    with SqliteStore(path) as store:
        rec = store.get_node(NodeKey("exec-mp", "hot"))
    assert rec is not None and rec.output["by"] == winners[0] and rec.attempts == 1


def test_completed_output_survives_sigkill(tmp_path: Path) -> None:
    path = str(tmp_path / "kill.db")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=sqlite_workers.complete_then_die, args=(path,))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == -9  # really killed, not a clean exit
    with SqliteStore(path, busy_timeout=5) as store:
        rec = store.get_node(NodeKey("exec-kill", "n"))
        assert rec is not None and rec.status is NodeStatus.SUCCEEDED
        assert rec.output == {"survives": True, "n": 12345}
        assert store.cache_get("uncommitted", now=T0) is None
        # The dead process's write lock is gone: we can write at once.
        run_node(store, NodeKey("exec-kill", "after"), 1)


def test_concurrent_first_opens_of_a_fresh_database(tmp_path: Path) -> None:
    """Regression: threads opening a brand-new file together raced on the switch to WAL
    (SQLite answers SQLITE_BUSY at once there); 26 of 200 rounds failed before the fix."""
    for round_ in range(40):
        store = SqliteStore(tmp_path / f"fresh{round_}.db")
        errors: list[BaseException] = []
        gate = threading.Barrier(4)

        def open_and_list() -> None:
            gate.wait()
            try:
                store.list_executions()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_and_list) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store.close()
        assert not errors, errors[0]

"""Pagination tokens cannot be forged: no key in the source, a per-home key file locally."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from stepdag.runtime.dynamodb import DynamoDbStore, create_table
from stepdag.runtime.engine import default_store
from stepdag.runtime.errors import InvalidPaginationToken
from stepdag.runtime.pagination import KEY_FILE, PaginationKeyError, home_key
from stepdag.runtime.records import ExecutionRecord, make_page_token
from stepdag.runtime.sqlite import SqliteStore
from stepdag.runtime.store import ExecutionStore

OLD_SOURCE_KEY = b"stepdag/pagination/v1"  # the constant every install used to share
KEY = b"k" * 32
UNSCOPED: list[str | None] = [None, None, None]  # list_executions' scope with no filters


def _store(kind: str, tmp_path: Path, key: bytes | None) -> Iterator[ExecutionStore]:
    if kind == "sqlite":
        with SqliteStore(tmp_path / "s.db", pagination_key=key) as s:
            yield s
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "pages")
        yield DynamoDbStore("pages", client=client, pagination_key=key)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExecutionStore]:
    yield from _store(request.param, tmp_path, KEY)


@pytest.fixture(params=["sqlite", "dynamodb"])
def keyless_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExecutionStore]:
    """A store built without a key, as every caller built them before."""
    yield from _store(request.param, tmp_path, None)


def fill(store: ExecutionStore, n: int = 3) -> None:
    for i in range(n):
        store.create_execution(
            ExecutionRecord(
                execution_id=f"arn:aws:states:local:0:execution:wf:r{i}",
                workflow="wf",
                name=f"r{i}",
                started_at=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
            )
        )


def test_a_token_forged_with_the_old_source_key_is_refused(
    keyless_store: ExecutionStore,
) -> None:
    store = keyless_store
    fill(store)
    # Before: this token passed the MAC, and its position reached SQLite as an int too
    # large for an INTEGER -- an OverflowError, i.e. a 500 at the API.
    for cursor in ([10**30, "x"], {"index": "GSI1", "key": {}}, [1, "x"]):
        forged = make_page_token(cursor, UNSCOPED, OLD_SOURCE_KEY)
        with pytest.raises(InvalidPaginationToken, match="corrupted or forged"):
            store.list_executions(limit=1, next_token=forged)


@pytest.mark.parametrize("big", [2**63, -(2**63) - 1, 10**30])
def test_an_out_of_range_position_is_a_bad_token_even_when_signed(
    store: ExecutionStore, big: int
) -> None:
    """Defence in depth should the key leak: never an OverflowError from the backend."""
    fill(store)
    signed = make_page_token([big, "x"], UNSCOPED, KEY)
    with pytest.raises(InvalidPaginationToken, match="out of range"):
        store.list_executions(limit=1, next_token=signed)
    nested = make_page_token({"index": "GSI1", "key": {"a": [big]}}, UNSCOPED, KEY)
    with pytest.raises(InvalidPaginationToken, match="out of range"):
        store.list_executions(limit=1, next_token=nested)


def test_a_store_without_a_key_never_accepts_another_stores_tokens(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "a.db") as a, SqliteStore(tmp_path / "a.db") as b:
        fill(a)
        token = a.list_executions(limit=1).next_token
        assert token is not None
        assert len(a.list_executions(limit=1, next_token=token).items) == 1
        with pytest.raises(InvalidPaginationToken):
            b.list_executions(limit=1, next_token=token)  # random per-instance keys


def test_the_home_key_file_is_private_stable_and_shared_by_the_homes_stores(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    key = home_key(home)
    path = home / KEY_FILE
    assert len(key) == 32 and home_key(home) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in home.iterdir()] == [KEY_FILE]  # no temporary file left
    other = home_key(tmp_path / "other")
    assert other != key
    # The CLI prints a token in one process and reads it in the next: same home, same key.
    with default_store(home) as first:
        fill(first, 2)
        token = first.list_executions(limit=1).next_token
    assert token is not None
    with default_store(home) as second:
        assert [r.name for r in second.list_executions(limit=1, next_token=token).items] == ["r0"]
    with default_store(tmp_path / "other") as foreign, pytest.raises(InvalidPaginationToken):
        foreign.list_executions(limit=1, next_token=token)


def test_a_truncated_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(PaginationKeyError, match=r"pagination.key.*at least 16 bytes.*found 5"):
        home_key(tmp_path)

"""The backend half of the execution store: the hooks a backend implements, and the codec
between records and the items those hooks move.

:class:`StoreBackend` is the base of :class:`~stepdag.runtime.store.ExecutionStore` (the
template: its public methods hold the rules) and of nothing else.  A backend subclasses
``ExecutionStore`` and implements the abstract ``_`` hooks below; they move *items*
(``records.Item``): flat ``dict``s of column name -> stored value (``str``/``int``/
``bool``/``None``; JSON already encoded, datetimes as integer epoch microseconds, enums as
values, ``map_index`` ``int | None``).  A backend therefore never sees a datetime or a
Python payload, and maps an item onto a SQLite row or a DynamoDB item mechanically.  It
translates its own exceptions into :class:`~stepdag.core.errors.StoreError` subclasses,
chained ``from exc``.

What lives here besides the hooks is what turns records into items and back: JSON
encoding (:func:`dumps`), large-payload offloading (``_offload``/``_load``, overridable)
and the signed pagination tokens that wrap a backend's listing cursor.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Final, Self, TypeAlias

from stepdag.runtime.errors import InvalidPaginationToken, InvalidPayload
from stepdag.runtime.records import (
    ExecutionRecord,
    Item,
    NodeKey,
    NodeRecord,
    execution_from_item,
    execution_to_item,
    make_page_token,
    node_from_item,
    read_page_token,
    require_aware,
)

NodeDecision: TypeAlias = Callable[[Item | None], Item | None]
"""Given the node's current item (None: absent), the item to write, or None to write nothing."""

# A position in a cursor is a SQLite INTEGER or a DynamoDB string: a larger int in a
# token is not ours, and would reach the backend as an OverflowError (a 500).
_CURSOR_INT_RANGE: Final = range(-(2**63), 2**63)


class Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = Unset.UNSET
"""Marks an argument as "not given" where None is a real value."""


def dumps(value: Any, what: str) -> str:
    """Compact, key-sorted JSON: equal values give equal bytes (hashing, dedup, diffs).

    ASCII-only output so the string always encodes (lone surrogates in user strings would
    otherwise fail in the backend) and its length is its size in bytes.
    """
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidPayload(f"{what} is not a JSON value: {exc}") from exc


class StoreBackend(ABC):
    """The hooks a store backend implements and the item codec; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        pagination_key: bytes | None = None,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        # Never a constant: a key in the source lets anyone forge tokens.  Without one,
        # a random key makes tokens valid in this process only; callers that hand tokens
        # across processes pass a shared one (a per-home key file locally, see
        # runtime/pagination.py; the stack's secret on AWS).
        self._token_key = pagination_key or secrets.token_bytes(32)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 -- optional hook, most backends need it
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- large payloads: backends may override -------------------------------------------

    def _offload(self, key: str, blob: str) -> str:
        """Return what to store for ``blob`` (at location ``key``): the blob itself, or a
        reference a backend can ``_load`` (e.g. an S3 URI for > 64 KB on DynamoDB).
        Called *before* the write; an offloaded blob whose write then loses a race is an
        orphan the backend's storage lifecycle must tolerate."""
        return blob

    def _load(self, ref: str) -> str:
        """Inverse of ``_offload``: the JSON text for a stored value."""
        return ref

    # -- backend hooks -------------------------------------------------------------------

    @abstractmethod
    def _insert_execution(self, item: Item) -> Item | None:
        """Insert unless ``execution_id`` or (``workflow``, ``name``) exists; then return
        the existing item and write nothing."""

    @abstractmethod
    def _get_execution(self, execution_id: str) -> Item | None: ...

    @abstractmethod
    def _find_executions_by_name(self, name: str, workflow: str | None) -> list[Item]: ...

    @abstractmethod
    def _update_execution(
        self,
        execution_id: str,
        changes: Item,
        expected: frozenset[str] | None,
        *,
        redrive_count: int | None = None,
    ) -> tuple[Item | None, Item | None]:
        """Apply ``changes`` iff the item exists, ``expected`` is None or holds its status,
        and ``redrive_count`` is None or equals its redrive count.  Returns (updated item,
        None) or (None, current item or None)."""

    @abstractmethod
    def _query_executions(
        self,
        *,
        workflow: str | None,
        status: str | None,
        tenant: str | None,
        limit: int,
        cursor: Any,
    ) -> tuple[list[Item], Any]:
        """At most ``limit`` items after ``cursor`` (None: from the newest), ordered by
        (started_at, execution_id) descending, and a JSON-able cursor for the next page
        (None when there is none).  The base signs the cursor; reject a malformed one
        with InvalidPaginationToken."""

    @abstractmethod
    def _transact_node(
        self, key: NodeKey, decide: NodeDecision, cache_item: Item | None = None
    ) -> tuple[bool, Item | None]:
        """Atomic read-modify-write of one node: read its item, call ``decide(current)``;
        if that returns an item, write it -- and ``cache_item`` -- in the same transaction.
        Returns (written, item now stored).  ``decide`` is pure and may be called again
        (optimistic backends retry it after a lost compare-and-swap on ``version``);
        exceptions it raises must propagate unchanged, writing nothing."""

    @abstractmethod
    def _get_node(self, key: NodeKey) -> Item | None: ...

    @abstractmethod
    def _query_nodes(
        self, execution_id: str, *, nodes: Collection[str] | None, include_items: bool
    ) -> list[Item]:
        """Node items of an execution (only ``nodes`` if given), ordered by node, then
        map_index with the node's own item (None) first."""

    @abstractmethod
    def _insert_nodes_if_absent(self, items: Sequence[Item]) -> int:
        """Insert each item unless its key exists; returns how many were inserted."""

    @abstractmethod
    def _append_events(self, execution_id: str, rows: Sequence[tuple[int, str]]) -> int:
        """Insert (id, json) rows, ignoring ids already stored; returns how many were new."""

    @abstractmethod
    def _get_events(self, execution_id: str, after_id: int, limit: int | None) -> list[str]: ...

    @abstractmethod
    def _get_cache(self, key: str) -> Item | None: ...

    @abstractmethod
    def _put_cache(self, item: Item) -> None: ...

    # -- clock, codec, pagination tokens -------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        at = self._clock() if now is None else now
        require_aware(at, "now")
        return at

    @staticmethod
    def _blank(key: NodeKey) -> NodeRecord:
        return NodeRecord(execution_id=key.execution_id, node=key.node, map_index=key.map_index)

    @staticmethod
    def _node_location(key: NodeKey) -> str:
        index = "-" if key.map_index is None else str(key.map_index)
        return f"nodes/{key.execution_id}/{key.node}/{index}"

    def _encode_opt(self, location: str, value: Any) -> str | None:
        if value is None:
            return None
        return self._offload(location, dumps(value, location))

    def _decode(self, stored: str | None) -> Any:
        return None if stored is None else json.loads(self._load(stored))

    def _execution_item(self, rec: ExecutionRecord) -> Item:
        where = f"executions/{rec.execution_id}"
        return execution_to_item(
            rec,
            input=self._encode_opt(f"{where}/input", rec.input),
            output=self._encode_opt(f"{where}/output", rec.output),
        )

    def _execution_record(self, item: Item) -> ExecutionRecord:
        return execution_from_item(
            item, input=self._decode(item["input"]), output=self._decode(item["output"])
        )

    def _node_record(
        self, item: Item, *, load: bool = True, output: Any = Unset.UNSET
    ) -> NodeRecord:
        """``load=False`` leaves ``output`` None (decisions never need it); ``output=``
        supplies an already-decoded value."""
        if output is Unset.UNSET:
            output = self._decode(item["output"]) if load else None
        return node_from_item(item, output=output)

    def _page_token(self, cursor: Any, scope: list[str | None]) -> str:
        """A backend's listing cursor as an opaque token, signed, valid for ``scope``."""
        return make_page_token(cursor, scope, self._token_key)

    def _read_token(self, token: str, scope: list[str | None]) -> Any:
        try:
            cursor = read_page_token(token, scope, self._token_key)
        except ValueError as exc:
            raise InvalidPaginationToken(f"next_token is not valid here: {exc}") from None
        if not _ints_in_range(cursor):
            raise InvalidPaginationToken("next_token is not valid here: a position out of range")
        return cursor


def _ints_in_range(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return True
    if isinstance(value, int):
        return value in _CURSOR_INT_RANGE
    if isinstance(value, list):
        return all(_ints_in_range(v) for v in value)
    if isinstance(value, dict):
        return all(_ints_in_range(v) for v in value.values())
    return False

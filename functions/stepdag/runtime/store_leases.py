"""Execution leases: which process drives an execution (runs, resumes, redrives it).

A lease is one small item per execution -- holder (``owner``) and expiry -- written by
compare-and-swap, so of two processes that try to drive one execution at once exactly
one gets it; the other is refused with :class:`LeaseHeld` (409, a one-line message).
It expires on its own: a holder that dies stops renewing it, and whoever comes next
takes it over (or at once, with ``supersede=`` naming a holder it knows to be dead).

:class:`LeaseRules` holds the rules and sits between the backend hooks
(:class:`~stepdag.runtime.store_backend.StoreBackend`) and the rest of the template
(:class:`~stepdag.runtime.store.ExecutionStore`); backends implement ``_get_lease`` and
``_swap_lease``.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Final

from stepdag.runtime.errors import LeaseHeld, StoreUnavailable
from stepdag.runtime.records import Item, Lease, lease_from_item, lease_to_item
from stepdag.runtime.store_backend import StoreBackend

# A compare-and-swap lost to another writer is retried on the item it left.
_MAX_SWAPS: Final = 8


class LeaseRules(StoreBackend):
    """The lease half of the store template; see the module docstring."""

    def acquire_lease(
        self,
        execution_id: str,
        *,
        owner: str,
        seconds: float,
        now: datetime | None = None,
        supersede: str | None = None,
    ) -> Lease:
        """Hold (or renew) the lease of ``execution_id`` for ``seconds``: granted when it
        is free, expired, already ``owner``'s or held by ``supersede``; otherwise
        :class:`LeaseHeld` naming the holder (``exc.lease``)."""
        if not owner:
            raise ValueError("owner must be a non-empty string")
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        at = self._now(now)
        wanted = Lease(
            execution_id=execution_id, owner=owner, expires_at=at + timedelta(seconds=seconds)
        )
        for _ in range(_MAX_SWAPS):
            current = self.get_lease(execution_id)
            free = current is None or current.expires_at <= at
            if current is not None and not free and current.owner not in (owner, supersede):
                raise LeaseHeld(
                    f"execution {execution_id!r} is being driven by {current.owner} "
                    f"(lease until {current.expires_at.isoformat(timespec='seconds')})",
                    current,
                )
            expected = None if current is None else lease_to_item(current)
            if self._swap_lease(execution_id, lease_to_item(wanted), expected):
                return wanted
        raise StoreUnavailable(f"lease of {execution_id!r}: gave up after {_MAX_SWAPS} conflicts")

    def release_lease(self, execution_id: str, *, owner: str) -> bool:
        """Give the lease up if ``owner`` holds it; False (nothing written) otherwise."""
        for _ in range(_MAX_SWAPS):
            current = self.get_lease(execution_id)
            if current is None or current.owner != owner:
                return False
            if self._swap_lease(execution_id, None, lease_to_item(current)):
                return True
        raise StoreUnavailable(f"lease of {execution_id!r}: gave up after {_MAX_SWAPS} conflicts")

    def get_lease(self, execution_id: str) -> Lease | None:
        """The lease as stored (possibly expired), or None."""
        item = self._get_lease(execution_id)
        return None if item is None else lease_from_item(item)

    @abstractmethod
    def _get_lease(self, execution_id: str) -> Item | None: ...

    @abstractmethod
    def _swap_lease(self, execution_id: str, new: Item | None, expected: Item | None) -> bool:
        """Atomically replace the lease item with ``new`` (None: delete it) iff the stored
        one equals ``expected`` (None: there is none); whether it was replaced."""


__all__ = ["LeaseHeld", "LeaseRules"]

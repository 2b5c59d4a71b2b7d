"""Per-tenant rate limits: a token bucket, kept as GCRA (the generic cell rate algorithm).

GCRA stores one number per key, the *theoretical arrival time* ``tat``: a request at
``now`` is allowed iff ``max(tat, now) + T - now <= tau`` (``T = 1/rate``, the emission
interval; ``tau = burst * T``), and then ``tat = max(tat, now) + T``.  It is exactly a
token bucket of ``burst`` tokens refilled at ``rate`` per second, with no refill
bookkeeping -- which is what lets DynamoDB keep it with single conditional updates,
shared by every API instance (:class:`DynamoDbRateLimiter`); :class:`MemoryRateLimiter`
is the one-process version (``stepdag serve``, tests).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from stepdag.constants import PK, SK, TTL_ATTRIBUTE
from stepdag.runtime.aws import aws_errors, error_code


@dataclass(frozen=True)
class Limit:
    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, not {self}")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate_per_s

    @property
    def tolerance(self) -> float:
        return self.burst * self.interval

    @property
    def window_s(self) -> int:
        """Seconds for a drained bucket to fill again (the RateLimit-Policy window)."""
        return max(1, math.ceil(self.tolerance))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # requests that would be allowed right now, after this one
    reset_s: int  # seconds until the bucket is full again
    retry_after_s: int  # when refused: seconds until one request is allowed (>= 1)
    limit: Limit


def decide(limit: Limit, tat: float | None, now: float) -> tuple[Decision, float | None]:
    """(decision, the new tat or None when refused) for a request at ``now``."""
    start = now if tat is None else max(tat, now)
    new_tat = start + limit.interval
    if new_tat - now > limit.tolerance + 1e-9:
        wait = new_tat - limit.tolerance - now
        reset = math.ceil(start - now)
        return Decision(False, 0, reset, max(1, math.ceil(wait)), limit), None
    return _allowed(limit, new_tat, now), new_tat


def _allowed(limit: Limit, new_tat: float, now: float) -> Decision:
    remaining = math.floor((limit.tolerance - (new_tat - now)) / limit.interval + 1e-9)
    return Decision(True, max(0, remaining), math.ceil(new_tat - now), 0, limit)


class RateLimiter(Protocol):
    limit: Limit

    def take(self, key: str) -> Decision: ...


class MemoryRateLimiter:
    """GCRA in this process."""

    def __init__(self, limit: Limit, *, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> Decision:
        with self._lock:
            now = self._clock()
            decision, tat = decide(self.limit, self._tats.get(key), now)
            if tat is not None:
                self._tats[key] = tat
            return decision


_ATTEMPTS = 3


class DynamoDbRateLimiter:
    """GCRA in the execution table (item ``PK = RATE#<key>``, ``SK = RATE``), one or two
    conditional ``UpdateItem`` calls per request and never a read:

    1. busy bucket: ``tat += T`` if ``now < tat <= now + tau - T`` -- allowed;
    2. idle bucket (or no item): ``tat = now + T`` if ``tat <= now`` or absent -- allowed;
    3. the busy condition false with ``tat > now``: ``tat > now + tau - T`` -- refused,
       the wait from the ``tat`` the failed condition returns; the idle condition false
       (another request wrote first): back to 1.

    The item expires (TTL) once the bucket is full again, so idle tenants cost nothing.
    """

    def __init__(
        self,
        table: str,
        limit: Limit,
        *,
        client: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.limit = limit
        self._client = client
        self._clock = clock

    def take(self, key: str) -> Decision:
        now = self._clock()
        item_key = {PK: {"S": f"RATE#{key}"}, SK: {"S": "RATE"}}
        interval = self.limit.interval
        with aws_errors("rate limit"):
            for _ in range(_ATTEMPTS):
                busy, tat = self._update(
                    item_key,
                    "SET tat = tat + :t, #ttl = :ttl",
                    "tat > :now AND tat <= :edge",
                    {":t": interval, ":now": now, ":edge": now + self.limit.tolerance - interval},
                    now,
                )
                if busy and tat is not None:
                    return _allowed(self.limit, tat, now)
                if tat is not None and tat > now:  # the bucket has no room: refused
                    return decide(self.limit, tat, now)[0]
                idle, tat = self._update(
                    item_key,
                    "SET tat = :new, #ttl = :ttl",
                    "attribute_not_exists(tat) OR tat <= :now",
                    {":new": now + interval, ":now": now},
                    now,
                )
                if idle and tat is not None:
                    return _allowed(self.limit, tat, now)
                # Another request found the bucket idle between our two calls and wrote
                # first: nothing was taken, so try the busy path again.
        # Only under a storm of such interleavings: refuse rather than over-admit.
        return Decision(False, 0, math.ceil(self.limit.tolerance), 1, self.limit)

    def _update(
        self,
        item_key: dict[str, Any],
        update: str,
        condition: str,
        values: dict[str, float],
        now: float,
    ) -> tuple[bool, float | None]:
        """(applied, tat after the update -- or, if the condition failed, the stored one)."""
        expires = math.ceil(now + self.limit.tolerance) + 60
        try:
            answer = self._client.update_item(
                TableName=self.table,
                Key=item_key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    **{k: {"N": f"{v:.6f}"} for k, v in values.items()},
                    ":ttl": {"N": str(expires)},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item") or {}
            return False, float(old["tat"]["N"]) if "tat" in old else None
        return True, float(answer["Attributes"]["tat"]["N"])

"""The per-tenant token bucket under real conditional-update semantics (DynamoDB Local):
concurrent requests never take more than the bucket holds."""

from __future__ import annotations

import threading
from typing import Any

from stepdag.runtime.ratelimit import DynamoDbRateLimiter, Limit

LIMIT = Limit(rate_per_s=2, burst=4)


def test_concurrent_requests_never_exceed_the_burst(ddb: Any, table: str) -> None:
    for round_ in range(10):
        limiter = DynamoDbRateLimiter(table, LIMIT, client=ddb, clock=lambda: 1_800_000_000.0)
        results: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(12)

        def take(key: str = f"tenant-{round_}") -> None:
            start.wait()
            allowed = limiter.take(key).allowed
            with lock:
                results.append(allowed)

        threads = [threading.Thread(target=take) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False] * 8 + [True] * 4, round_

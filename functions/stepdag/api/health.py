"""Health probes: liveness (this process answers) and readiness (what it needs answers).

A service names its readiness checks (:meth:`~stepdag.api.port.ExecutionService.health_checks`):
each is a callable that returns a short detail or raises.  :func:`run_checks` runs them at
once, each on its own thread, and gives every one the same deadline, so an unreachable
dependency (botocore retries a connection for many seconds) costs the probe
:data:`CHECK_TIMEOUT_S` at most and never hides the answers of the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from stepdag.api.models import HealthCheck

Check = Callable[[], str]
"""A readiness check: returns what it saw (one short line); raising means it failed."""

CHECK_TIMEOUT_S = 5.0
_DETAIL_MAX = 300  # characters: a probe's answer, not a log


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def _timed(check: Check) -> tuple[bool, str, float]:
    began = time.perf_counter()
    try:
        ok, detail = True, check()
    except Exception as exc:  # a failed check is an answer, not an error of the probe
        ok, detail = False, _one_line(exc)
    return ok, detail, (time.perf_counter() - began) * 1000


def run_checks(checks: Mapping[str, Check]) -> list[HealthCheck]:
    """Every check's result, in the order given, each with its latency in ms."""
    if not checks:
        return []
    timeout = CHECK_TIMEOUT_S
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="stepdag-health")
    try:
        futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
        deadline = time.monotonic() + timeout
        results = []
        for name, future in futures.items():
            try:
                ok, detail, ms = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                ok, detail, ms = False, f"no answer within {timeout * 1000:.0f} ms", timeout * 1000
            results.append(HealthCheck(name=name, ok=ok, ms=round(ms, 2), detail=detail))
        return results
    finally:
        pool.shutdown(wait=False)  # a hung check finishes (or times out) on its own


__all__ = ["CHECK_TIMEOUT_S", "Check", "run_checks"]

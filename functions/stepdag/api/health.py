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
from typing import Any, NoReturn

from stepdag.api.models import HealthCheck
from stepdag.core.errors import StepdagError
from stepdag.core.model import Dag
from stepdag.runtime.records import ExecutionRecord, NodeRecord, Page

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


class NotConfigured(StepdagError):
    """The API could not be built from its configuration (a workflow module that does
    not import, say): every route but the health probes answers this 503."""

    http_status = 503
    code = "not_configured"


class UnconfiguredService:
    """The ExecutionService of an API whose real one could not be built: liveness still
    answers, readiness fails its ``settings`` check with the reason, the rest is 503."""

    def __init__(self, problem: BaseException) -> None:
        self.problem = _one_line(problem)

    def _refuse(self) -> NoReturn:
        raise NotConfigured(f"the API is not configured: {self.problem}")

    def workflows(self) -> list[Dag]:
        self._refuse()

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        self._refuse()

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        self._refuse()

    def get(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        self._refuse()

    def list_executions(self, **kwargs: Any) -> Page[ExecutionRecord]:
        self._refuse()

    def nodes(self, ref: str, *, tenant: str | None) -> tuple[ExecutionRecord, list[NodeRecord]]:
        self._refuse()

    def node_output(self, ref: str, node: str, *, tenant: str | None) -> tuple[str, Any]:
        self._refuse()

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        self._refuse()

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        self._refuse()

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord:
        self._refuse()

    def health(self) -> dict[str, Any]:
        return {"workflows": 0, "store": "none"}

    def health_checks(self) -> dict[str, Check]:
        return {"settings": self._refuse}


__all__ = ["CHECK_TIMEOUT_S", "Check", "NotConfigured", "UnconfiguredService", "run_checks"]

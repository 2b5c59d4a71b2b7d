"""The node runner's wire format and its observer port.

:class:`NodeRequest` is a Task payload ``{workflow, node, phase, execution, attempt[,
index][, params]}`` parsed and checked (the Lambda handler, the local engine and the
fencing code read it); :class:`RunnerObserver` is where logs, metrics and traces plug in
(the Lambda handler's Powertools observer). Split from ``runner.py`` so that module stays
about the node's code path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stepdag.core.errors import StepdagInvalidInput

PHASES = ("run", "condition", "plan", "item", "gather", "record_failure")
MISSING: Any = object()
"""``params`` absent from the payload (``None`` is a value)."""


@dataclass(frozen=True, slots=True)
class NodeRequest:
    workflow: str
    node: str
    phase: str
    execution: str
    attempt: int
    index: int | None = None
    params: Any = MISSING
    error: str | None = None
    cause: str | None = None
    # Set by the local engine, which knows it; absent on AWS (read from the store).
    redrive: int | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> NodeRequest:
        """Parse and check a Task payload; a malformed one is an input error, not a crash."""
        problems = []
        for key in ("workflow", "node", "execution"):
            if not isinstance(payload.get(key), str) or not payload.get(key):
                problems.append(f"{key!r} must be a non-empty string")
        phase = payload.get("phase", "run")
        if phase not in PHASES:
            problems.append(f"'phase' must be one of {', '.join(PHASES)}, got {phase!r}")
        attempt = payload.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            problems.append(f"'attempt' must be an int >= 0, got {attempt!r}")
        index = payload.get("index")
        if phase == "item" and (not isinstance(index, int) or index < 0):
            problems.append(f"'index' must be an int >= 0 for phase 'item', got {index!r}")
        if problems:
            raise StepdagInvalidInput("invalid node-runner payload: " + "; ".join(problems))
        return cls(
            workflow=payload["workflow"],
            node=payload["node"],
            phase=phase,
            execution=payload["execution"],
            attempt=attempt,
            index=index if phase == "item" else None,
            params=payload.get("params", MISSING),
            error=payload.get("error"),
            cause=payload.get("cause"),
            redrive=payload.get("redrive"),
        )


class RunnerObserver(Protocol):
    """Hooks for logs/metrics/traces (the Lambda handler plugs Powertools in here)."""

    def node_started(self, req: NodeRequest) -> None: ...
    def node_finished(
        self,
        req: NodeRequest,
        status: str,
        seconds: float,
        *,
        output_bytes: int = 0,
        cache_hit: bool | None = None,
        error: str | None = None,
    ) -> None: ...


class NullObserver:
    def node_started(self, req: NodeRequest) -> None:
        return None

    def node_finished(
        self,
        req: NodeRequest,
        status: str,
        seconds: float,
        *,
        output_bytes: int = 0,
        cache_hit: bool | None = None,
        error: str | None = None,
    ) -> None:
        return None


__all__ = ["MISSING", "PHASES", "NodeRequest", "NullObserver", "RunnerObserver"]

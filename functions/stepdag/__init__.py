"""stepdag: typed Python DAGs compiled to AWS Step Functions, runnable locally.

The supported surface: the authoring names below (``Workflow``, ``Retry``, ``Cache`` …),
the errors, and -- loaded on first use, so ``import stepdag`` (which every node-runner
Lambda does) stays small -- ``run``/``connect`` and their handles from
:mod:`stepdag.client`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stepdag.core.errors import (
    CompileError,
    DagValidationError,
    InputValidationError,
    StepdagError,
    WorkflowLoadError,
)
from stepdag.core.model import Cache, Jitter, Retry, UpstreamSkipped, Workflow

if TYPE_CHECKING:
    from stepdag.client import Deployment, Run, RunTimeout, connect, run

__version__ = "0.1.0"

_CLIENT_NAMES = frozenset({"Deployment", "Run", "RunTimeout", "connect", "run"})


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from stepdag import client

        return getattr(client, name)
    raise AttributeError(f"module 'stepdag' has no attribute {name!r}")


__all__ = [
    "Cache",
    "CompileError",
    "DagValidationError",
    "Deployment",
    "InputValidationError",
    "Jitter",
    "Retry",
    "Run",
    "RunTimeout",
    "StepdagError",
    "UpstreamSkipped",
    "Workflow",
    "WorkflowLoadError",
    "__version__",
    "connect",
    "run",
]

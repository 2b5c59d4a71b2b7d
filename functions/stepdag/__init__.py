"""stepdag: typed Python DAGs compiled to AWS Step Functions, runnable locally."""

from __future__ import annotations

from stepdag.core.errors import (
    CompileError,
    DagValidationError,
    InputValidationError,
    StepdagError,
    WorkflowLoadError,
)
from stepdag.core.model import Cache, Jitter, Retry, UpstreamSkipped, Workflow

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CompileError",
    "DagValidationError",
    "InputValidationError",
    "Jitter",
    "Retry",
    "StepdagError",
    "UpstreamSkipped",
    "Workflow",
    "WorkflowLoadError",
    "__version__",
]

"""Execution input checks: pure, so every entry point (local engine, the Step Functions
service in the API Lambda) rejects bad input before anything is recorded or started."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stepdag.core.errors import InputValidationError
from stepdag.core.model import PARAMS, Dag


def validate_input(dag: Dag, input: Any) -> None:
    """Fail fast, before anything runs, when the input does not fit any ``params`` type."""
    try:
        json.dumps(input, allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN/Infinity, sets, objects: not storable JSON
        raise InputValidationError(
            f"workflow {dag.workflow!r}: execution input is not JSON ({exc})"
        ) from None
    for node in dag.nodes.values():
        param = node.param(PARAMS)
        if param is None:
            continue
        try:
            TypeAdapter(param.annotation).validate_python(input)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or '(input)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InputValidationError(
                f"workflow {dag.workflow!r}: execution input rejected by node {node.name!r} "
                f"(parameter {PARAMS!r}): {details}"
            ) from None


__all__ = ["validate_input"]

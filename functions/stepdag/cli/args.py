"""Arguments several commands share: a workflow reference, an execution, a JSON value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from stepdag.core.errors import InputValidationError

WorkflowArg = Annotated[str, typer.Argument(help="package.module:attr or path/file.py:attr")]
ExecutionArg = Annotated[str, typer.Argument(help="execution id or name")]


def parse_json_arg(value: str | None, what: str) -> Any:
    """``JSON`` or ``@file``; errors say which argument and where the JSON broke."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InputValidationError(f"{what}: no such file {str(path)!r}")
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputValidationError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


__all__ = ["ExecutionArg", "WorkflowArg", "parse_json_arg"]

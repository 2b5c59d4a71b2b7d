"""Arguments several commands share: a workflow reference, an execution, a JSON value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

import typer

from stepdag.core.errors import InputValidationError
from stepdag.core.inputs import MAX_INPUT_BYTES, InputTooLarge, loads

WorkflowArg = Annotated[str, typer.Argument(help="package.module:attr or path/file.py:attr")]
ExecutionArg = Annotated[str, typer.Argument(help="execution id or name")]

MAX_FILE_BYTES: Final = 16 * MAX_INPUT_BYTES
"""A JSON ``@file`` larger than this (4 MiB) is refused from its size, unread: a value
within the 256 KiB input limit fits in it with room for indentation and ``\\u`` escapes
(at most 6 bytes of file per byte of compact JSON), and reading a 31 MB file only to
refuse it would take hundreds of MB."""


def parse_json_arg(value: str | None, what: str) -> Any:
    """``JSON`` or ``@file``, strict (no NaN/Infinity); errors say which argument and
    where the JSON broke."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise InputValidationError(f"{what}: no such file {str(path)!r}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputTooLarge(
                f"{what}: {str(path)!r} is {size:,} bytes; an execution input is at most "
                f"{MAX_INPUT_BYTES:,} bytes of JSON, and a file over {MAX_FILE_BYTES:,} "
                "bytes is not read to find out",
                size=size,
                limit=MAX_INPUT_BYTES,
            )
        text = path.read_text()
    return loads(text, what)


__all__ = ["MAX_FILE_BYTES", "ExecutionArg", "WorkflowArg", "parse_json_arg"]

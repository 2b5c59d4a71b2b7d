"""Step Functions' quotas that every layer enforces, written once: the name rule (what
the interpreter, every entry point and the OpenAPI document check an execution or state
machine name against) and the payload size (execution input, state input/output, task
results).

"Names of state machines, executions, and activity tasks must not exceed 80 characters
... and must not contain: whitespace, wildcard characters (? *), bracket characters
(< > { } [ ]), special characters (" # % \\ ^ | ~ ` $ & , ; : /), control characters
(\\u0000 - \\u001f or \\u007f - \\u009f)" (StartExecution's ``name``). Standard library
only, so the interpreter can import it without the rest of the core.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 80
# "Maximum input or output size for a task, state, or execution: 256 KiB of data as a
# UTF-8 encoded string" (a hard quota).
MAX_PAYLOAD_BYTES: Final = 256 * 1024

# Escapes in the syntax Python's re, JSON Schema (ECMA 262) and pydantic-core's Rust
# regex all read alike, so one pattern serves the check and the OpenAPI document.
_FORBIDDEN: Final = r'\s<>{}\[\]?*"#%\\^|~`$&,;:/\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF'
EXECUTION_NAME_PATTERN: Final = rf"^[^{_FORBIDDEN}]{{1,{MAX_NAME_LENGTH}}}$"
"""The rule as a regular expression (all but surrogates and U+10FFFF, which no HTTP
header or Rust string can carry; :func:`name_problem` adds them)."""
_BAD_CHAR: Final = re.compile(rf"[{_FORBIDDEN}\ud800-\udfff\U0010FFFF]")


def name_problem(kind: str, name: str) -> str | None:
    """Why ``name`` is not a valid ``kind`` name (one line: which character, where), or None."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"{kind} must be 1-{MAX_NAME_LENGTH} characters, got {len(name)}"
    bad = _BAD_CHAR.search(name)
    if bad is not None:
        return (
            f"{kind} {name!r}: {bad.group()!r} at position {bad.start() + 1} is not allowed "
            "(Step Functions refuses whitespace, control characters and "
            '< > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : /)'
        )
    return None


__all__ = ["EXECUTION_NAME_PATTERN", "MAX_NAME_LENGTH", "MAX_PAYLOAD_BYTES", "name_problem"]

"""Definition problems as Step Functions reports them: a code, a message, a location.

``CreateStateMachine`` fails with ``Invalid State Machine Definition: '<CODE>: <message>
at <location>, ...'`` and ``ValidateStateMachineDefinition`` returns the same diagnostics
one by one (``code``, ``message``, ``location`` such as ``/States/FailState/ErrorPath``).
The validators write each problem as ``<location>: <message>`` with AWS's ``/``-separated
location relative to the definition (``States/P/Branches[0]/States/B/Next``); the code is
derived from the message here, once, so no validator has to know the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

SCHEMA_VALIDATION_FAILED: Final = "SCHEMA_VALIDATION_FAILED"
INVALID_JSON_DESCRIPTION: Final = "INVALID_JSON_DESCRIPTION"
MISSING_TRANSITION_TARGET: Final = "MISSING_TRANSITION_TARGET"
MISSING_END_STATE: Final = "MISSING_END_STATE"
DUPLICATE_STATE_NAME: Final = "DUPLICATE_STATE_NAME"
INVALID_STATE_NAME: Final = "INVALID_STATE_NAME"
INVALID_LABEL_NAME: Final = "INVALID_LABEL_NAME"
INVALID_JSONATA_EXPRESSION: Final = "INVALID_JSONATA_EXPRESSION"
UNSUPPORTED_JSONATA_EXPRESSION: Final = "UNSUPPORTED_JSONATA_EXPRESSION"

# A location-less problem of the whole definition (JSON syntax, size, no terminal state).
ROOT: Final = "definition"

_BARE: Final = re.compile(r"(?:is|are|must|cannot|may) ")
# Message openings of the non-schema codes, in the wording the validators use (AWS's).
_CODES: Final = (
    (re.compile(r"Missing 'Next' target: "), MISSING_TRANSITION_TARGET),
    (re.compile(r"State \".*\" is not reachable\.$"), MISSING_TRANSITION_TARGET),
    (re.compile(r"Workflow has no terminal state$"), MISSING_END_STATE),
    (re.compile(r"Duplicate State name: "), DUPLICATE_STATE_NAME),
    (re.compile(r"State name "), INVALID_STATE_NAME),
    (re.compile(r"Label "), INVALID_LABEL_NAME),
    (re.compile(r"invalid JSON: "), INVALID_JSON_DESCRIPTION),
    (re.compile(r"Reference to '.*' at the top level "), UNSUPPORTED_JSONATA_EXPRESSION),
    (re.compile(r"JSONata expression does not parse: "), INVALID_JSONATA_EXPRESSION),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One ``ValidateStateMachineDefinitionDiagnostic`` (severity is always ERROR here)."""

    code: str
    message: str
    location: str | None
    severity: str = "ERROR"

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location is not None else ""
        return f"{self.code}: {self.message}{where}"


def diagnostic(problem: str) -> Diagnostic:
    """``"<location>: <message>"`` → the diagnostic AWS would report."""
    where, sep, message = problem.partition(": ")
    if not sep:
        where, message = ROOT, problem
    code = next((c for pattern, c in _CODES if pattern.match(message)), SCHEMA_VALIDATION_FAILED)
    if code == INVALID_JSONATA_EXPRESSION:
        message = message.removeprefix("JSONata expression does not parse: ")
    if code == INVALID_JSON_DESCRIPTION:
        message = message.removeprefix("invalid JSON: ")
    location = None if where == ROOT else "/" + where.lstrip("/")
    if _BARE.match(message):
        # "must be ..." names its field, as AWS's messages do.
        field = re.sub(r"\[\d+\]$", "", where.rsplit("/", 1)[-1]) or "definition"
        message = f"The field '{field}' {message}"
    return Diagnostic(code, message, location)


def diagnostics(problems: Iterable[str]) -> list[Diagnostic]:
    return [diagnostic(p) for p in problems]


def aws_message(found: Iterable[Diagnostic]) -> str:
    """The ``InvalidDefinition`` message ``CreateStateMachine`` answers with."""
    return "Invalid State Machine Definition: '" + ", ".join(str(d) for d in found) + "'"


__all__ = [
    "DUPLICATE_STATE_NAME",
    "INVALID_JSONATA_EXPRESSION",
    "INVALID_JSON_DESCRIPTION",
    "MISSING_END_STATE",
    "MISSING_TRANSITION_TARGET",
    "ROOT",
    "SCHEMA_VALIDATION_FAILED",
    "UNSUPPORTED_JSONATA_EXPRESSION",
    "Diagnostic",
    "aws_message",
    "diagnostic",
    "diagnostics",
]

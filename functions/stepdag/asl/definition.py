"""A definition as Step Functions takes it in: ``CreateStateMachine`` refuses it with every
problem at once, ``ValidateStateMachineDefinition`` lists them as diagnostics."""

from __future__ import annotations

import json
from typing import Any

from stepdag.asl.diagnostics import ROOT, diagnostics
from stepdag.asl.errors import to_json
from stepdag.asl.quotas import definition_size_problem
from stepdag.asl.validate import validate_definition


def load_definition(definition: Any) -> tuple[Any, list[str]]:
    """The definition parsed (from JSON text or as given) and every problem with it, in
    the order Step Functions checks: the 1 MiB quota, JSON syntax, then the language."""
    try:
        text = definition if isinstance(definition, str) else to_json(definition)
    except (TypeError, ValueError):
        text = None  # not JSON at all: validate_definition says why
    too_big = definition_size_problem(text) if text is not None else None
    if too_big is not None:
        return None, [too_big]
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            return None, [f"{ROOT}: invalid JSON: {exc}"]
    return definition, validate_definition(definition)


def validate_state_machine_definition(definition: Any) -> dict[str, Any]:
    """What ``ValidateStateMachineDefinition`` answers: ``result`` OK or FAIL and the
    ``diagnostics`` (severity, code, message, location when there is one)."""
    found = diagnostics(load_definition(definition)[1])
    return {
        "result": "FAIL" if found else "OK",
        "diagnostics": [
            {"severity": d.severity, "code": d.code, "message": d.message}
            | ({"location": d.location} if d.location is not None else {})
            for d in found
        ],
        "truncated": False,
    }


__all__ = ["load_definition", "validate_state_machine_definition"]

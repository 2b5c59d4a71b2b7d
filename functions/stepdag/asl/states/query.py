"""What a state's query language adds to its I/O: JSONata templates and ``Assign``.

JSONata states replace the five JSONPath fields with ``Arguments`` and ``Output``
(templates whose ``{% %}`` strings are expressions over ``$states`` and the workflow
variables); both query languages can ``Assign`` variables. Every expression of one
state sees the variables as they were when the state was entered: ``Assign`` and
``Output`` are evaluated from the same bindings, and the assignments take effect as
the state exits.
"""

from __future__ import annotations

from typing import Any, Final

from stepdag.asl import jsonata, payload
from stepdag.asl.runtime import Frame

JSONATA: Final = "JSONata"
JSONPATH: Final = "JSONPath"
NOTHING: Final = object()


def node(raw: dict[str, Any], key: str, field: str | None = None) -> jsonata.Node | None:
    """The compiled JSONata template of ``raw[key]`` (None when absent)."""
    if key not in raw:
        return None
    return jsonata.compile_template(raw[key], field or key)


def jsonpath_assign(raw: dict[str, Any], where: str) -> payload.Node | None:
    """A JSONPath ``Assign`` block: a payload template (``name.$`` keys take paths)."""
    if "Assign" not in raw:
        return None
    return payload.compile_template(raw["Assign"], where, [])


class StateQuery:
    """The query-language specific parts of one state (or one Catch / Choice rule)."""

    __slots__ = ("arguments", "assign", "jsonata", "jsonpath_assign", "output")

    def __init__(self, raw: dict[str, Any], where: str, *, prefix: str = "") -> None:
        self.jsonata = raw.get("QueryLanguage") == JSONATA
        self.arguments: jsonata.Node | None = None
        self.output: jsonata.Node | None = None
        self.assign: jsonata.Node | None = None
        self.jsonpath_assign: payload.Node | None = None
        if self.jsonata:
            self.arguments = node(raw, "Arguments", f"{prefix}Arguments")
            self.output = node(raw, "Output", f"{prefix}Output")
            self.assign = node(raw, "Assign", f"{prefix}Assign")
        else:
            self.jsonpath_assign = jsonpath_assign(raw, where)

    @property
    def assigns(self) -> bool:
        return self.assign is not None or self.jsonpath_assign is not None


def bindings(
    frame: Frame,
    data: Any,
    context: dict[str, Any],
    *,
    result: Any = NOTHING,
    error_output: Any = NOTHING,
) -> dict[str, Any]:
    return jsonata.bindings(
        frame.scope.snapshot(),
        input=data,
        context=context,
        result=None if result is NOTHING else result,
        has_result=result is not NOTHING,
        error_output=None if error_output is NOTHING else error_output,
        has_error=error_output is not NOTHING,
    )


def evaluate_assign(
    query: StateQuery,
    frame: Frame,
    value: Any,
    context: dict[str, Any],
    bound: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The state's assignments (not yet applied). ``value`` is JSONPath's ``$``."""
    if query.assign is not None:
        assert bound is not None
        out = jsonata.evaluate(query.assign, bound)
        return out if isinstance(out, dict) else None
    if query.jsonpath_assign is not None:
        out = payload.evaluate(query.jsonpath_assign, value, context, frame.execution.rng)
        return out if isinstance(out, dict) else None
    return None


__all__ = ["JSONATA", "JSONPATH", "NOTHING", "StateQuery", "bindings", "evaluate_assign", "node"]

"""Rewrite a compiled (JSONPath) definition in the JSONata query language.

The compiler emits a small, fixed vocabulary of JSONPath constructs; each has a
JSONata equivalent that produces the same payloads, so the rewritten machine has the
same states and transitions (and the node runner sees the same parameters):

    Parameters {"k.$": "$$.X"}        Arguments {"k": "{% $states.context.X %}"}
    ResultSelector {"k.$": "$.a"}      Output {"k": "{% $states.result.a %}"}
    ResultPath null                    Output "{% $states.input %}"
    Catch ResultPath "$"               (JSONata's Catch output is the error output)
    ItemsPath "$.items"                Items "{% $states.input.items %}"
    Choice Variable/BooleanEquals      Condition "{% $states.input.run = true %}"
    Pass Result                        Output (a constant)

Anything outside that vocabulary is a compiler bug and raises :class:`CompileError`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from stepdag.core.errors import CompileError

ASL = dict[str, Any]
_PATH: Final = re.compile(r"\$\$?(\.[A-Za-z_][A-Za-z0-9_]*)*")


def to_jsonata(definition: ASL) -> ASL:
    """A new definition in JSONata; ``definition`` is left unchanged."""
    out = _machine(definition)
    return {"QueryLanguage": "JSONata", **out}


def _machine(machine: ASL) -> ASL:
    out = {k: v for k, v in machine.items() if k != "States"}
    out["States"] = {name: _state(name, state) for name, state in machine["States"].items()}
    return out


def _expression(path: str, *, result: bool = False) -> str:
    """``$$.A.B`` → ``$states.context.A.B``; ``$.a`` → ``$states.input.a`` (or result)."""
    if not _PATH.fullmatch(path):
        raise CompileError(f"cannot express JSONPath {path!r} in JSONata")
    if path.startswith("$$"):
        return "{% $states.context" + path[2:] + " %}"
    root = "$states.result" if result else "$states.input"
    return "{% " + root + path[1:] + " %}"


def _template(template: ASL, *, result: bool = False) -> ASL:
    out: ASL = {}
    for key, value in template.items():
        if key.endswith(".$"):
            out[key[:-2]] = _expression(value, result=result)
        elif isinstance(value, dict):
            out[key] = _template(value, result=result)
        else:
            out[key] = value
    return out


def _state(name: str, state: ASL) -> ASL:
    out: ASL = {}
    for key, value in state.items():
        if key == "Parameters":
            out["Arguments"] = _template(value)
        elif key == "ResultSelector":
            _set_output(name, out, _template(value, result=True))
        elif key == "ResultPath":
            if value is not None:
                raise CompileError(f"{name}: cannot express ResultPath {value!r} in JSONata")
            _set_output(name, out, "{% $states.input %}")
        elif key == "ItemsPath":
            out["Items"] = _expression(value)
        elif key == "ItemSelector":
            out["ItemSelector"] = _template(value)
        elif key == "Result":
            _set_output(name, out, value)
        elif key == "Catch":
            out["Catch"] = [_catcher(name, c) for c in value]
        elif key == "Choices":
            out["Choices"] = [_rule(name, r) for r in value]
        elif key == "Branches":
            out["Branches"] = [_machine(b) for b in value]
        elif key == "ItemProcessor":
            out["ItemProcessor"] = _machine(value)
        elif key in ("InputPath", "OutputPath") or key.endswith("Path"):
            raise CompileError(f"{name}: cannot express {key} in JSONata")
        else:
            out[key] = value
    return out


def _set_output(name: str, state: ASL, output: Any) -> None:
    if "Output" in state:
        raise CompileError(f"{name}: two JSONPath fields map to JSONata's Output")
    state["Output"] = output


def _catcher(name: str, catcher: ASL) -> ASL:
    if catcher.get("ResultPath", "$") != "$":
        raise CompileError(f"{name}: cannot express Catch ResultPath in JSONata")
    return {k: v for k, v in catcher.items() if k != "ResultPath"}


def _rule(name: str, rule: ASL) -> ASL:
    if set(rule) != {"Variable", "BooleanEquals", "Next"}:
        raise CompileError(f"{name}: cannot express choice rule {sorted(rule)} in JSONata")
    value = "true" if rule["BooleanEquals"] else "false"
    condition = _expression(rule["Variable"])[:-3] + f" = {value} %}}"
    return {"Condition": condition, "Next": rule["Next"]}


__all__ = ["to_jsonata"]

"""Load-time checks specific to the query language: JSONata states and ``Assign``.

JSONata states lose the five JSONPath fields (``InputPath``, ``Parameters``,
``ResultSelector``, ``ResultPath``, ``OutputPath``), every ``*Path`` field and the
``.$`` keys, and gain ``Arguments`` and ``Output``; JSONPath states may not use the
JSONata-only fields. Both may ``Assign`` variables. Every ``{% %}`` expression must
parse when the definition is loaded (AWS rejects the definition otherwise).
"""

from __future__ import annotations

import re
from typing import Any, Final

from stepdag.asl import choice, jsonata, payload, variables

JSONATA: Final = "JSONata"
JSONPATH: Final = "JSONPath"

_COMMON: Final = frozenset({"Type", "Comment", "QueryLanguage"})
_TRANSITION: Final = frozenset({"Next", "End"})
_ERRORS: Final = frozenset({"Retry", "Catch"})
JSONATA_FIELDS: Final[dict[str, frozenset[str]]] = {
    "Pass": _COMMON | _TRANSITION | {"Output", "Assign"},
    "Task": _COMMON
    | _TRANSITION
    | _ERRORS
    | {
        "Resource",
        "Arguments",
        "Output",
        "Assign",
        "TimeoutSeconds",
        "HeartbeatSeconds",
        "Credentials",
    },
    "Choice": _COMMON | {"Choices", "Default", "Output", "Assign"},
    "Wait": _COMMON | _TRANSITION | {"Seconds", "Timestamp", "Output", "Assign"},
    "Succeed": _COMMON | {"Output"},
    "Fail": _COMMON | {"Error", "Cause"},
    "Parallel": _COMMON | _TRANSITION | _ERRORS | {"Branches", "Arguments", "Output", "Assign"},
    "Map": _COMMON
    | _TRANSITION
    | _ERRORS
    | {
        "ItemProcessor",
        "Iterator",
        "Items",
        "ItemSelector",
        "MaxConcurrency",
        "ToleratedFailureCount",
        "ToleratedFailurePercentage",
        "Output",
        "Assign",
        "Label",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
    },
}
# Fields a JSONPath state gains with variables.
ASSIGNABLE: Final = frozenset({"Pass", "Task", "Choice", "Wait", "Parallel", "Map"})
# Fields only a JSONata state may have (the rest of an unknown field is the caller's).
JSONATA_ONLY: Final = frozenset({"Arguments", "Output", "Items", "Condition"})
# The JSONata fields whose value is a single expression (or a literal).
_SCALAR_EXPRESSIONS: Final = (
    "Seconds", "Timestamp", "TimeoutSeconds", "HeartbeatSeconds", "MaxConcurrency",
    "ToleratedFailureCount", "ToleratedFailurePercentage", "Error", "Cause",
)  # fmt: skip


_RESULT_STATES: Final = frozenset({"Task", "Parallel", "Map"})
_TOP_LEVEL_ROOT: Final = re.compile(r"\$\$?(?:$|[.\[])")


def expression_problems(
    value: Any, where: str, field: str, *, result: bool = False, error: bool = False
) -> list[str]:
    """Every problem AWS reports at creation for a template's ``{% %}`` strings:
    improperly opened/closed, not parsing, ``$``/``$$`` at the top, and ``$states.result``
    / ``$states.errorOutput`` where the state has none."""
    if isinstance(value, dict):
        return [
            p
            for k, v in value.items()
            for p in expression_problems(
                v, f"{where}/{k}", f"{field}/{k}", result=result, error=error
            )
        ]
    if isinstance(value, list):
        return [
            p
            for i, v in enumerate(value)
            for p in expression_problems(
                v, f"{where}[{i}]", f"{field}[{i}]", result=result, error=error
            )
        ]
    if not isinstance(value, str):
        return []
    stripped = value.strip()
    if not jsonata.is_expression(value):
        if stripped.startswith("{%") or stripped.endswith("%}"):
            return [
                f"{where}: improperly opened or closed JSONata expression (it must start "
                "with '{%' and end with '%}', without surrounding spaces)"
            ]
        return []
    text = value[2:-2].strip()
    problems = jsonata.template_problems(value, where, field)
    if _TOP_LEVEL_ROOT.match(text):
        problems.append(f"{where}: '$' and '$$' cannot be used at the top level of an expression")
    if not result and "$states.result" in text:
        problems.append(f"{where}: $states.result is not available in this field")
    if not error and "$states.errorOutput" in text:
        problems.append(f"{where}: $states.errorOutput is only available in a Catch")
    return problems


def assigned_names(spec: Any) -> list[tuple[str, str]]:
    """(variable, where relative to the state) for every Assign of one state."""
    if not isinstance(spec, dict):
        return []
    blocks: list[tuple[str, Any]] = [("Assign", spec.get("Assign"))]
    for group in ("Catch", "Choices"):
        items = spec.get(group)
        if isinstance(items, list):
            blocks += [
                (f"{group}[{i}]/Assign", c.get("Assign"))
                for i, c in enumerate(items)
                if isinstance(c, dict)
            ]
    return [
        (key[:-2] if key.endswith(".$") else key, f"{label}/{key}")
        for label, block in blocks
        if isinstance(block, dict)
        for key in block
    ]


def scope_problems(
    states: dict[str, Any], prefix: str, outer: frozenset[str]
) -> tuple[frozenset[str], list[str]]:
    """The variables one machine level assigns, and its assignments of outer variables
    (AWS: a nested branch/iteration state may not assign a variable an outer scope does)."""
    here: set[str] = set()
    problems: list[str] = []
    for name, spec in states.items():
        for variable, rel in assigned_names(spec):
            here.add(variable)
            if variable in outer:
                problems.append(
                    f"{prefix}States/{name}/{rel}: variable '{variable}' is already assigned "
                    "in an outer scope"
                )
    return frozenset(here), problems


def language_problem(value: Any, where: str) -> str | None:
    if value not in (JSONATA, JSONPATH):
        return f"{where}: must be 'JSONPath' or 'JSONata'"
    return None


def assign_problems(
    value: Any, where: str, language: str, *, result: bool = False, error: bool = False
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: Assign must be a JSON object"]
    problems: list[str] = []
    for key in value:
        name = key[:-2] if language == JSONPATH and key.endswith(".$") else key
        problem = variables.name_problem(name)
        if problem is not None:
            problems.append(f"{where}/{key}: {problem}")
    if language == JSONPATH:
        payload.compile_template(value, where, problems)
    else:
        problems.extend(expression_problems(value, where, "Assign", result=result, error=error))
    return problems


def jsonata_state_problems(typ: str, spec: dict[str, Any], where: str) -> list[str]:
    """Problems of a JSONata state beyond the field set (checked by the caller)."""
    problems: list[str] = []
    has_result = typ in _RESULT_STATES
    for key in (
        "Arguments",
        "Output",
        "Items",
        "ItemSelector",
        "ItemBatcher",
        *_SCALAR_EXPRESSIONS,
    ):
        if key in spec:
            ok = has_result and key == "Output"
            problems.extend(expression_problems(spec[key], f"{where}/{key}", key, result=ok))
    if "Items" in spec and not (
        isinstance(spec["Items"], list) or jsonata.is_expression(spec["Items"])
    ):
        problems.append(f"{where}/Items: must be a JSON array or a JSONata expression")
    if typ == "Choice":
        problems.extend(_choice_rules(spec.get("Choices"), where))
    if typ == "Wait":
        keys = [k for k in ("Seconds", "Timestamp") if k in spec]
        if len(keys) != 1:
            problems.append(f"{where}: must have exactly one of Seconds, Timestamp")
        if "Seconds" in spec and _bad_int(spec["Seconds"], 0):
            problems.append(f"{where}/Seconds: must be a non-negative integer or JSONata")
        stamp = spec.get("Timestamp")
        if (
            "Timestamp" in spec
            and not jsonata.is_expression(stamp)
            and choice.parse_timestamp(stamp) is None
        ):
            problems.append(f"{where}/Timestamp: '{stamp}' is not a valid RFC 3339 timestamp")
    for key in ("TimeoutSeconds", "HeartbeatSeconds"):
        if key in spec and _bad_int(spec[key], 1):
            problems.append(f"{where}/{key}: must be a positive integer or JSONata")
    for key in ("Error", "Cause"):
        if key in spec and not isinstance(spec[key], str):
            problems.append(f"{where}/{key}: must be a string")
    if "Assign" in spec:
        problems.extend(
            assign_problems(spec["Assign"], f"{where}/Assign", JSONATA, result=has_result)
        )
    return problems


def _bad_int(value: Any, minimum: int) -> bool:
    """Neither an expression nor an integer >= ``minimum``."""
    if jsonata.is_expression(value):
        return False
    return isinstance(value, bool) or not isinstance(value, int) or value < minimum


def _choice_rules(rules: Any, where: str) -> list[str]:
    if not isinstance(rules, list):
        return []
    problems: list[str] = []
    allowed = {"Condition", "Next", "Output", "Assign", "Comment"}
    for i, rule in enumerate(rules):
        rw = f"{where}/Choices[{i}]"
        if not isinstance(rule, dict):
            problems.append(f"{rw}: a choice rule must be an object")
            continue
        for key in rule:
            if key not in allowed:
                problems.append(
                    f"{rw}/{key}: field is not supported in a JSONata choice rule (use Condition)"
                )
        if "Condition" not in rule:
            problems.append(f"{rw}: a JSONata choice rule requires 'Condition'")
        else:
            cond = rule["Condition"]
            if isinstance(cond, str):
                problems.extend(expression_problems(cond, f"{rw}/Condition", "Condition"))
            if not jsonata.is_expression(cond) and not isinstance(cond, bool):
                problems.append(f"{rw}/Condition: must be a JSONata expression or a boolean")
        if not isinstance(rule.get("Next"), str):
            problems.append(f"{rw}: a top-level choice rule must have a string 'Next'")
        if "Output" in rule:
            problems.extend(expression_problems(rule["Output"], f"{rw}/Output", "Output"))
        if "Assign" in rule:
            problems.extend(assign_problems(rule["Assign"], f"{rw}/Assign", JSONATA))
    return problems


def only_in(key: str, language: str) -> str:
    """AWS's message for a field of the other query language."""
    other = JSONATA if language == JSONPATH else JSONPATH
    return (
        f"The QueryLanguage is set to '{other}', but field '{key}' is only supported for "
        f"the '{language}' QueryLanguage"
    )


def catcher_problems(c: dict[str, Any], where: str, language: str) -> list[str]:
    """Fields of a catcher that depend on the language (others checked by the caller)."""
    problems: list[str] = []
    if language == JSONATA:
        for key in ("ResultPath",):
            if key in c:
                problems.append(f"{where}: {only_in(key, JSONPATH)}")
        if "Output" in c:
            problems.extend(
                expression_problems(c["Output"], f"{where}/Output", "Output", error=True)
            )
    elif "Output" in c:
        problems.append(f"{where}: {only_in('Output', JSONATA)}")
    if "Assign" in c:
        problems.extend(assign_problems(c["Assign"], f"{where}/Assign", language, error=True))
    return problems


__all__ = [
    "ASSIGNABLE",
    "JSONATA",
    "JSONATA_FIELDS",
    "JSONATA_ONLY",
    "JSONPATH",
    "assign_problems",
    "catcher_problems",
    "jsonata_state_problems",
    "language_problem",
    "only_in",
]

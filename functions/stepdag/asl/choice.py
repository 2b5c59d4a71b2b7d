"""Choice rules: validation, compilation to predicates, evaluation.

Semantics follow Step Functions: a comparison whose operand has the wrong type is
simply false; a ``Variable`` (or ``*Path`` operand) that selects nothing is a
``States.Runtime`` error, except for ``IsPresent`` (that is its purpose) and the
other ``Is*`` type tests, which are false for a missing field. ``And``/``Or``
short-circuit left to right, which is what makes ``IsPresent`` guards work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeAlias

from stepdag.asl.errors import RUNTIME, StatesError
from stepdag.asl.paths import JsonPath, NoMatch, PathSyntaxError, compile_path

Predicate: TypeAlias = Callable[[Any, Any], bool]

_TS_RE: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)

STRING_OPS: Final = (
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
)
NUMERIC_OPS: Final = (
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
)
TIMESTAMP_OPS: Final = (
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
)
TYPE_TESTS: Final = ("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp")
VALUE_OPS: Final = (*STRING_OPS, *NUMERIC_OPS, *TIMESTAMP_OPS, "BooleanEquals")
ALL_COMPARISONS: Final = frozenset(
    {*VALUE_OPS, *(op + "Path" for op in VALUE_OPS), "StringMatches", *TYPE_TESTS}
)
_RULE_KEYS: Final = frozenset({"Variable", "Next", "Comment", "And", "Or", "Not", "Assign"})


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 as Step Functions accepts it (uppercase ``T`` and ``Z``)."""
    if not isinstance(value, str) or not _TS_RE.match(value):
        return None
    text = value.replace("Z", "+00:00")
    frac_match = re.search(r"\.(\d+)", text)
    if frac_match and len(frac_match.group(1)) > 6:
        # Python parses at most microseconds; extra precision cannot change ordering here.
        text = text.replace(frac_match.group(0), "." + frac_match.group(1)[:6])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def string_matches(value: str, pattern: str) -> bool:
    """``*`` matches any run of characters; ``\\*`` and ``\\\\`` are literal."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(parts), value, flags=re.DOTALL) is not None


def _cmp(op: str, a: Any, b: Any) -> bool:
    if op.endswith("GreaterThanEquals"):
        return bool(a >= b)
    if op.endswith("LessThanEquals"):
        return bool(a <= b)
    if op.endswith("Equals"):
        return bool(a == b)
    if op.endswith("LessThan"):
        return bool(a < b)
    return bool(a > b)


def compare(op: str, value: Any, operand: Any) -> bool:
    """Evaluate a value comparison (operator without the ``Path`` suffix)."""
    if op in STRING_OPS:
        return isinstance(value, str) and isinstance(operand, str) and _cmp(op, value, operand)
    if op in NUMERIC_OPS:
        return _is_number(value) and _is_number(operand) and _cmp(op, value, operand)
    if op == "BooleanEquals":
        return isinstance(value, bool) and isinstance(operand, bool) and value == operand
    if op in TIMESTAMP_OPS:
        a, b = parse_timestamp(value), parse_timestamp(operand)
        return a is not None and b is not None and _cmp(op, a, b)
    if op == "StringMatches":
        return (
            isinstance(value, str) and isinstance(operand, str) and string_matches(value, operand)
        )
    raise ValueError(op)


def type_test(op: str, present: bool, value: Any) -> bool:
    if op == "IsPresent":
        return present
    if not present:
        return False
    if op == "IsNull":
        return value is None
    if op == "IsNumeric":
        return _is_number(value)
    if op == "IsString":
        return isinstance(value, str)
    if op == "IsBoolean":
        return isinstance(value, bool)
    return parse_timestamp(value) is not None  # IsTimestamp


def _resolve(path: JsonPath, data: Any, context: Any) -> Any:
    try:
        return path.find(context if path.context else data)
    except NoMatch as exc:
        raise StatesError(
            RUNTIME,
            f"Invalid path '{path.source}': The choice state's condition path references "
            "an invalid value.",
        ) from exc


def _compile_comparison(variable: JsonPath, op: str, operand: Any) -> Predicate:
    if op in TYPE_TESTS:
        expected = bool(operand)

        def test(data: Any, context: Any) -> bool:
            src = context if variable.context else data
            try:
                value = variable.find(src)
                present = True
            except NoMatch:
                value, present = None, False
            return type_test(op, present, value) == expected

        return test
    if op.endswith("Path"):
        base = op[: -len("Path")]
        other = compile_path(operand)

        def by_path(data: Any, context: Any) -> bool:
            return compare(base, _resolve(variable, data, context), _resolve(other, data, context))

        return by_path

    def literal(data: Any, context: Any) -> bool:
        return compare(op, _resolve(variable, data, context), operand)

    return literal


def compile_rule(rule: dict[str, Any]) -> Predicate:
    """Compile a rule already checked by :func:`validate_rule`."""
    if "And" in rule:
        subs = [compile_rule(r) for r in rule["And"]]
        return lambda d, c: all(s(d, c) for s in subs)
    if "Or" in rule:
        subs = [compile_rule(r) for r in rule["Or"]]
        return lambda d, c: any(s(d, c) for s in subs)
    if "Not" in rule:
        sub = compile_rule(rule["Not"])
        return lambda d, c: not sub(d, c)
    op = next(k for k in rule if k in ALL_COMPARISONS)
    return _compile_comparison(compile_path(rule["Variable"]), op, rule[op])


def _definite_path_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return compile_path(value).definite
    except PathSyntaxError:
        return False


def validate_rule(rule: Any, where: str, top: bool, problems: list[str]) -> None:
    """Append every problem with ``rule`` to ``problems``."""
    if not isinstance(rule, dict):
        problems.append(f"{where}: a choice rule must be an object")
        return
    if top and not isinstance(rule.get("Next"), str):
        problems.append(f"{where}: a top-level choice rule must have a string 'Next'")
    if not top and "Next" in rule:
        problems.append(f"{where}: 'Next' is only allowed on top-level choice rules")
    combinators = [k for k in ("And", "Or", "Not") if k in rule]
    comparisons = [k for k in rule if k in ALL_COMPARISONS]
    unknown = [k for k in rule if k not in ALL_COMPARISONS and k not in _RULE_KEYS]
    for key in unknown:
        problems.append(f"{where}: unknown field '{key}' in choice rule")
    if "Condition" in rule:
        return
    if len(combinators) + len(comparisons) != 1:
        problems.append(
            f"{where}: a choice rule must have exactly one of And, Or, Not or a comparison "
            f"operator (found {', '.join(combinators + comparisons) or 'none'})"
        )
        return
    if combinators:
        if "Variable" in rule:
            problems.append(f"{where}: 'Variable' is not allowed with {combinators[0]}")
        key = combinators[0]
        value = rule[key]
        if key == "Not":
            validate_rule(value, f"{where}/Not", False, problems)
        elif not isinstance(value, list) or not value:
            problems.append(f"{where}/{key}: must be a non-empty array of choice rules")
        else:
            for i, sub in enumerate(value):
                validate_rule(sub, f"{where}/{key}[{i}]", False, problems)
        return
    op = comparisons[0]
    operand = rule[op]
    if "Variable" not in rule:
        problems.append(f"{where}: comparison '{op}' requires a 'Variable'")
    elif not _definite_path_ok(rule["Variable"]):
        problems.append(f"{where}/Variable: '{rule['Variable']}' is not a valid reference path")
    if op.endswith("Path"):
        if not _definite_path_ok(operand):
            problems.append(f"{where}/{op}: '{operand}' is not a valid reference path")
    elif op in TYPE_TESTS or op == "BooleanEquals":
        if not isinstance(operand, bool):
            problems.append(f"{where}/{op}: must be a boolean")
    elif op in NUMERIC_OPS:
        if not _is_number(operand):
            problems.append(f"{where}/{op}: must be a number")
    elif op in TIMESTAMP_OPS:
        if parse_timestamp(operand) is None:
            problems.append(f"{where}/{op}: '{operand}' is not a valid RFC 3339 timestamp")
    elif not isinstance(operand, str):
        problems.append(f"{where}/{op}: must be a string")


__all__ = [
    "compare",
    "compile_rule",
    "parse_timestamp",
    "string_matches",
    "type_test",
    "validate_rule",
]

"""Entry points: EventBridge event triggers and EventBridge Scheduler schedules.

Pure data and pure functions (no AWS library): ``Workflow.on_event``/``on_schedule``
record ``EventTrigger``/``ScheduleTrigger`` objects; validation (``trigger_problems``)
joins the workflow's ``@check`` registry; ``pattern_matches`` is EventBridge's event
pattern matching for the common operators, used by ``stepdag trigger`` locally; and
``input_transformer`` turns a dict input template into the EventBridge InputTransformer
the CDK rule deploys, so the local mapping and the deployed one are the same document.

Matching semantics (AWS "Content filtering in event patterns"):

* every pattern leaf is a non-empty list of filters, OR-ed; keys are AND-ed;
* an event value that is an array matches when any element matches;
* filters: exact values (string, number, ``true``/``false``, ``null``), ``prefix``,
  ``suffix`` (both also ``{"equals-ignore-case": ...}``), ``equals-ignore-case``,
  ``anything-but`` (a value, a list, or a ``prefix``/``suffix``/``equals-ignore-case``
  object), ``numeric`` (``[">", 0, "<=", 5]``), ``exists``, ``wildcard``, and ``$or``;
* only ``exists: false`` matches a missing field (``anything-but`` does not); operators
  apply to leaves, so ``exists`` on an object-valued field does not match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_MISSING: Any = object()

#: JSON paths accepted in an input template: ``$.detail.x``, ``$.detail.items[0].id``.
PATH_RE = re.compile(r"^\$(\.[A-Za-z0-9_@-]+|\[\d+\])+$")
TRIGGER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,47}$")
NUMERIC_OPS = frozenset({"<", "<=", "=", ">=", ">"})
STRING_OPS = ("prefix", "suffix", "equals-ignore-case", "wildcard")

InputMapping = Mapping[str, Any] | Callable[[dict[str, Any]], Any] | None


@dataclass(frozen=True)
class EventTrigger:
    """Start a run for every event that matches ``pattern``; ``input`` maps event -> params.

    ``input``: ``None`` passes the whole event (as an EventBridge target does by default);
    a dict is a template whose ``"$.…"`` strings are JSON paths into the event (an
    InputTransformer); a callable ``(event) -> params`` runs locally only.
    """

    name: str
    pattern: Mapping[str, Any]
    input: InputMapping = None
    kind: str = field(default="event", init=False)

    def matches(self, event: Mapping[str, Any]) -> bool:
        return pattern_matches(self.pattern, event)

    def render(self, event: dict[str, Any]) -> Any:
        """The execution input for ``event``."""
        if self.input is None:
            return event
        if callable(self.input):
            return self.input(event)
        return render_template(self.input, event)


@dataclass(frozen=True)
class ScheduleTrigger:
    """Start a run on an EventBridge Scheduler ``cron(...)``/``rate(...)``/``at(...)``."""

    name: str
    expression: str
    timezone: str = "UTC"
    input: Mapping[str, Any] | None = None
    kind: str = field(default="schedule", init=False)

    @property
    def payload(self) -> Any:
        return dict(self.input) if self.input is not None else {}


Trigger = EventTrigger | ScheduleTrigger


# ------------------------------------------------------------------ pattern matching


def pattern_matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Does ``event`` match the EventBridge ``pattern``? (Assumes a valid pattern.)"""
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_object(p, value) for p in sub):
                return False
            continue
        child = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if isinstance(sub, Mapping):
            if isinstance(child, list):
                ok = any(_match_object(sub, item) for item in child if isinstance(item, Mapping))
            else:
                ok = _match_object(sub, child if isinstance(child, Mapping) else {})
        else:
            ok = _match_leaf(sub, child)
        if not ok:
            return False
    return True


def _match_leaf(filters: Iterable[Any], value: Any) -> bool:
    if isinstance(value, Mapping):  # operators apply to leaves only
        value = _MISSING
    values = value if isinstance(value, list) else [value]
    for f in filters:
        if isinstance(f, Mapping):
            op, arg = next(iter(f.items()))
            if op == "exists":
                if (value is not _MISSING) == bool(arg):
                    return True
            elif value is not _MISSING and any(_apply(op, arg, v) for v in values):
                return True
        elif value is not _MISSING and any(_equal(f, v) for v in values):
            return True
    return False


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected is actual
    if _is_number(expected) and _is_number(actual):
        return float(expected) == float(actual)
    return bool(type(expected) is type(actual) and expected == actual)


def _apply(op: str, arg: Any, v: Any) -> bool:
    if op == "numeric":
        return _is_number(v) and all(
            _compare(o, float(v), float(n)) for o, n in zip(arg[::2], arg[1::2], strict=True)
        )
    if op == "anything-but":
        if isinstance(arg, Mapping):
            inner, inner_arg = next(iter(arg.items()))
            return isinstance(v, str) and not _apply(inner, inner_arg, v)
        banned = arg if isinstance(arg, list) else [arg]
        return not any(_equal(b, v) for b in banned)
    if not isinstance(v, str):
        return False
    if op in ("prefix", "suffix"):
        fold = isinstance(arg, Mapping)
        text = arg["equals-ignore-case"] if fold else arg
        subject, text = (v.lower(), text.lower()) if fold else (v, text)
        return subject.startswith(text) if op == "prefix" else subject.endswith(text)
    if op == "equals-ignore-case":
        return v.lower() == str(arg).lower()
    if op == "wildcard":
        parts = re.split(r"(?<!\\)\*", str(arg))
        regex = ".*".join(re.escape(p.replace("\\*", "*")) for p in parts)
        return re.fullmatch(regex, v, re.DOTALL) is not None
    return False


def _compare(op: str, a: float, b: float) -> bool:
    return {
        "<": a < b,
        "<=": a <= b,
        "=": a == b,
        ">=": a >= b,
        ">": a > b,
    }[op]


def pattern_problems(pattern: Any, where: str = "pattern") -> list[str]:
    """Why ``pattern`` is not a valid event pattern (empty when it is)."""
    if not isinstance(pattern, Mapping) or not pattern:
        return [f"{where} must be a non-empty JSON object, got {pattern!r}"]
    try:
        json.dumps(pattern, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [f"{where} is not JSON ({exc})"]
    out: list[str] = []
    for key, sub in pattern.items():
        path = f"{where}.{key}"
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                out.append(f"{path} must list at least two patterns")
            else:
                for i, alt in enumerate(sub):
                    out += pattern_problems(alt, f"{path}[{i}]")
        elif isinstance(sub, Mapping):
            out += pattern_problems(sub, path)
        elif not isinstance(sub, list) or not sub:
            out.append(f"{path} must be an object or a non-empty list of values/filters")
        else:
            out += [f"{path}: {m}" for f in sub for m in _filter_problems(f)]
    return out


def _filter_problems(f: Any) -> list[str]:
    if f is None or isinstance(f, str | bool) or _is_number(f):
        return []
    if not isinstance(f, Mapping) or len(f) != 1:
        return [f"a filter must be a value or a one-key operator object, got {f!r}"]
    op, arg = next(iter(f.items()))
    if op == "exists":
        return [] if isinstance(arg, bool) else [f"exists takes true or false, got {arg!r}"]
    if op == "numeric":
        pairs_ok = isinstance(arg, list) and arg and len(arg) % 2 == 0
        if not pairs_ok or not all(
            o in NUMERIC_OPS and _is_number(n) for o, n in zip(arg[::2], arg[1::2], strict=True)
        ):
            return [f"numeric takes operator/number pairs such as ['>', 0, '<=', 5], got {arg!r}"]
        return []
    if op in ("prefix", "suffix"):
        fold = isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}
        if isinstance(arg, str) or (fold and isinstance(arg["equals-ignore-case"], str)):
            return []
        return [f"{op} takes a string or {{'equals-ignore-case': string}}, got {arg!r}"]
    if op in ("equals-ignore-case", "wildcard"):
        return [] if isinstance(arg, str) else [f"{op} takes a string, got {arg!r}"]
    if op == "anything-but":
        if isinstance(arg, Mapping):
            inner = next(iter(arg), None)
            if len(arg) != 1 or inner not in STRING_OPS:
                return [f"anything-but takes a value, a list, or one of {STRING_OPS}: {arg!r}"]
            return _filter_problems(arg)
        items = arg if isinstance(arg, list) else [arg]
        if not items or not all(isinstance(i, str) or _is_number(i) for i in items):
            return [f"anything-but takes strings or numbers, got {arg!r}"]
        return []
    return [
        f"unsupported operator {op!r} (supported: exists, numeric, prefix, suffix, "
        "equals-ignore-case, wildcard, anything-but, $or)"
    ]


# ------------------------------------------------------------------ input templates


def resolve_path(event: Any, path: str) -> Any:
    """The value at ``$.a.b[0]`` in ``event``; ``None`` when absent."""
    current = event
    for token in re.findall(r"\.([A-Za-z0-9_@-]+)|\[(\d+)\]", path[1:]):
        key, index = token
        if key and isinstance(current, Mapping) and key in current:
            current = current[key]
        elif index and isinstance(current, list) and int(index) < len(current):
            current = current[int(index)]
        else:
            return None
    return current


def render_template(template: Any, event: Any) -> Any:
    """Replace every ``"$.…"`` string in ``template`` by the event's value there."""
    if isinstance(template, str) and template.startswith("$"):
        return resolve_path(event, template)
    if isinstance(template, Mapping):
        return {k: render_template(v, event) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, event) for v in template]
    return template


def template_paths(template: Any) -> list[str]:
    """Every ``$``-string in ``template`` (valid or not), in order."""
    if isinstance(template, str):
        return [template] if template.startswith("$") else []
    if isinstance(template, Mapping):
        return [p for v in template.values() for p in template_paths(v)]
    if isinstance(template, list):
        return [p for v in template for p in template_paths(v)]
    return []


def input_transformer(template: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge ``InputTransformer`` equivalent to ``render_template(template, ·)``.

    Each distinct path becomes one ``InputPathsMap`` variable, written unquoted in the
    template so EventBridge inserts its JSON value (strings quoted, objects as objects).
    """
    names: dict[str, str] = {}
    for path in template_paths(template):
        if path not in names:
            base = re.sub(r"[^A-Za-z0-9_]", "_", path[2:]).strip("_") or "v"
            name, n = base[:80], 1
            while name in names.values():
                n += 1
                name = f"{base[:76]}_{n}"
            names[path] = name
    marker = "\x00"

    def mark(value: Any) -> Any:
        if isinstance(value, str) and value in names:
            return f"{marker}{names[value]}{marker}"
        if isinstance(value, Mapping):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(template), separators=(",", ":"), ensure_ascii=False)
    text = re.sub(r'"\\u0000([A-Za-z0-9_]+)\\u0000"', r"<\1>", text)
    return {"InputPathsMap": {v: k for k, v in names.items()}, "InputTemplate": text}


# ------------------------------------------------------------------ schedules

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, low, high, names, extra characters allowed)
_CronField = tuple[str, int, int, tuple[str, ...], str]
_CRON_FIELDS: tuple[_CronField, ...] = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)
_RATE_RE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT_RE = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def schedule_problems(expression: Any) -> list[str]:
    """Why ``expression`` is not an EventBridge Scheduler expression (empty when it is)."""
    if not isinstance(expression, str):
        return [f"schedule expression must be a string, got {expression!r}"]
    if expression.startswith("rate("):
        m = _RATE_RE.match(expression)
        if m is None:
            return [f"{expression!r}: use rate(<n> minute[s]|hour[s]|day[s]), e.g. rate(5 minutes)"]
        value, unit = int(m.group(1)), m.group(2)
        if value < 1:
            return [f"{expression!r}: the rate must be at least 1"]
        if (value == 1) == unit.endswith("s"):
            return [f"{expression!r}: use the singular unit for 1 and the plural otherwise"]
        return []
    if expression.startswith("at("):
        m = _AT_RE.match(expression)
        try:
            if m is None:
                raise ValueError
            datetime.fromisoformat(m.group(1))
        except ValueError:
            return [f"{expression!r}: use at(yyyy-mm-ddThh:mm:ss)"]
        return []
    if not (expression.startswith("cron(") and expression.endswith(")")):
        return [f"{expression!r}: a schedule is cron(...), rate(...) or at(...)"]
    fields = expression[5:-1].split()
    if len(fields) != 6:
        return [
            f"{expression!r}: cron takes 6 fields (minutes hours day-of-month month "
            f"day-of-week year), got {len(fields)}"
        ]
    out = [
        f"{expression!r}: {problem}"
        for text, spec in zip(fields, _CRON_FIELDS, strict=True)
        for problem in _cron_field_problems(text, spec)
    ]
    if (fields[2] == "?") == (fields[4] == "?"):
        out.append(
            f"{expression!r}: exactly one of day-of-month and day-of-week must be '?' "
            "(EventBridge cannot combine both)"
        )
    return out


def _cron_field_problems(text: str, spec: _CronField) -> list[str]:
    name, low, high, names, extra = spec
    if text == "?":
        return [] if "?" in extra else [f"{name} cannot be '?'"]
    bad = f"{name} {text!r} is not valid (values {low}-{high}"
    bad += f" or {names[0]}-{names[-1]}" if names else ""
    bad += ", with , - * /" + (" and " + " ".join(c for c in extra if c != "?") if extra else "")
    bad += ")"

    def value_ok(v: str) -> bool:
        if v.upper() in names:
            return True
        return v.isdigit() and low <= int(v) <= high

    for item in text.split(","):
        if item == "*":
            continue
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return [bad]
        if base == "*" and step:
            continue
        if "L" in extra and (base == "L" or (name == "day-of-week" and base.endswith("L"))):
            if base == "L" or value_ok(base[:-1]):
                continue
            return [bad]
        if "W" in extra and base.endswith("W") and (base == "LW" or value_ok(base[:-1])):
            continue
        if "#" in extra and "#" in base:
            day, _, nth = base.partition("#")
            if value_ok(day) and nth.isdigit() and 1 <= int(nth) <= 5:
                continue
            return [bad]
        lo, dash, hi = base.partition("-")
        if not value_ok(lo) or (dash and not value_ok(hi)):
            return [bad]
    return []


def timezone_problems(timezone: Any) -> list[str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(timezone, str) or not timezone:
        return [f"timezone must be an IANA name such as 'Europe/Berlin', got {timezone!r}"]
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Berlin'"]
    return []


# ------------------------------------------------------------------ validation


def trigger_problems(triggers: Iterable[Trigger]) -> list[tuple[str, str]]:
    """``(trigger name, message)`` for every problem, duplicates included."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for t in triggers:
        if not isinstance(t.name, str) or not TRIGGER_NAME_RE.match(t.name):
            out.append(
                (
                    str(t.name),
                    "trigger names start with a letter and use letters, digits, '-' and '_' "
                    "(at most 48 characters): they name the EventBridge rule/schedule",
                )
            )
        if t.name in seen:
            out.append((t.name, "trigger name used twice; trigger names must be unique"))
        seen.add(t.name)
        if isinstance(t, EventTrigger):
            out += [(t.name, m) for m in pattern_problems(t.pattern)]
            out += [(t.name, m) for m in _event_input_problems(t.input)]
        else:
            out += [(t.name, m) for m in schedule_problems(t.expression)]
            out += [(t.name, m) for m in timezone_problems(t.timezone)]
            if t.input is not None and not isinstance(t.input, Mapping):
                out.append((t.name, f"schedule input must be a JSON object, got {t.input!r}"))
            else:
                try:
                    json.dumps(t.payload, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    out.append((t.name, f"schedule input is not JSON ({exc})"))
    return out


def _event_input_problems(mapping: Any) -> list[str]:
    if mapping is None or callable(mapping):
        return []
    if not isinstance(mapping, Mapping):
        return [f"input must be a dict template, a callable or None, got {mapping!r}"]
    out = [
        f"input template string {p!r} is not a JSON path (use '$.detail.field' or "
        "'$.detail.items[0]')"
        for p in template_paths(mapping)
        if not PATH_RE.match(p)
    ]
    try:
        json.dumps(mapping, allow_nan=False)
    except (TypeError, ValueError) as exc:
        out.append(f"input template is not JSON ({exc})")
    return out

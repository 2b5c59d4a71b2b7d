"""Load-time validation of a definition, collecting every problem like Step Functions does.

Each problem names where it is, AWS-style: ``States/P/Branches[0]/States/B/Next: ...``
(diagnostics.py turns it into AWS's ``CODE: message at /location``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from stepdag.asl import choice, payload
from stepdag.asl import validate_query as vq
from stepdag.asl.diagnostics import ROOT
from stepdag.asl.errors import ALL, KNOWN_STATES_ERRORS
from stepdag.asl.paths import PathSyntaxError, compile_path
from stepdag.asl.quotas import MAX_NAME_LENGTH
from stepdag.asl.validate_distributed import distributed_problems

_COMMON: Final = frozenset({"Type", "Comment"})
_IO: Final = frozenset({"InputPath", "OutputPath"})
_FIELDS: Final[dict[str, frozenset[str]]] = {
    "Pass": _COMMON | _IO | {"Next", "End", "ResultPath", "Parameters", "Result"},
    "Task": _COMMON
    | _IO
    | {
        "Next",
        "End",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Retry",
        "Catch",
        "Resource",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Credentials",
    },
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _IO | {"Next", "End", "Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON
    | _IO
    | {"Next", "End", "ResultPath", "Parameters", "ResultSelector", "Retry", "Catch", "Branches"},
    "Map": _COMMON
    | _IO
    | {
        "Next",
        "End",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Retry",
        "Catch",
        "ItemProcessor",
        "Iterator",
        "ItemsPath",
        "ItemSelector",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "Label",
    },
}
_TOP_FIELDS: Final = frozenset({"StartAt", "States", "Comment", "Version", "TimeoutSeconds"})
_NON_TERMINAL: Final = frozenset({"Pass", "Task", "Wait", "Parallel", "Map"})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.names: dict[str, str] = {}  # state name → where first defined
        self.language = vq.JSONPATH  # of the state being validated
        self.machine_language = vq.JSONPATH  # the state machine's (nested machines inherit)
        self.outer_variables: frozenset[str] = frozenset()  # assigned by enclosing machines

    def add(self, where: str, msg: str) -> None:
        self.problems.append(f"{where}: {msg}")

    # -- machines -----------------------------------------------------------------------

    def machine(self, raw: Any, where: str, top: bool) -> None:
        label = where or ROOT
        if not isinstance(raw, dict):
            self.add(label, "must be a JSON object")
            return
        allowed = _TOP_FIELDS | {"QueryLanguage"} if top else {"StartAt", "States", "Comment"}
        if not top:
            processor = where.endswith(("/ItemProcessor", "/Iterator"))
            allowed = allowed | ({"ProcessorConfig"} if processor else {"QueryLanguage"})
        prefix = f"{where}/" if where else ""
        for key in raw:
            if key not in allowed:
                self.add(where, f"Field '{key}' is not supported")
        outer, outer_machine = self.language, self.machine_language
        # AWS: a Map's or Parallel's own QueryLanguage does not reach the states inside
        # it; they take the state machine's (and an ItemProcessor cannot name one).
        self.language = self.machine_language
        if "QueryLanguage" in raw:
            self._query_language(raw["QueryLanguage"], f"{prefix}QueryLanguage")
            if raw["QueryLanguage"] in (vq.JSONATA, vq.JSONPATH):
                self.language = raw["QueryLanguage"]
        self.machine_language = self.language
        if (
            top
            and "TimeoutSeconds" in raw
            and not (_is_int(raw["TimeoutSeconds"]) and raw["TimeoutSeconds"] > 0)
        ):
            self.add(f"{prefix}TimeoutSeconds", "must be a positive integer")
        for key in ("Comment", "Version"):
            if key in raw and not isinstance(raw[key], str):
                self.add(f"{prefix}{key}", "must be a string")
        if "ProcessorConfig" in raw:
            cfg = raw["ProcessorConfig"]
            if not isinstance(cfg, dict) or cfg.get("Mode", "INLINE") not in (
                "INLINE",
                "DISTRIBUTED",
            ):
                self.add(f"{prefix}ProcessorConfig", "Mode must be INLINE or DISTRIBUTED")
        states = raw.get("States")
        start = raw.get("StartAt")
        if not isinstance(states, dict) or not states:
            self.add(f"{prefix}States", "must be a non-empty object")
            states = {}
        if not isinstance(start, str):
            self.add(f"{prefix}StartAt", "is required and must be a string")
        elif start not in states:
            self.add(f"{prefix}StartAt", f"Missing 'Next' target: {start}")
        here, problems = vq.scope_problems(states, prefix, self.outer_variables)
        self.problems.extend(problems)
        enclosing = self.outer_variables
        self.outer_variables = enclosing | here
        for name, spec in states.items():
            self.state(name, spec, f"{prefix}States/{name}", states)
        self.outer_variables = enclosing
        self.language, self.machine_language = outer, outer_machine
        if top and states and not any(_terminal(spec) for spec in states.values()):
            # AWS reports this alone (no reachability walk). Measured for the top level
            # only: a branch or iteration that loops forever stays loadable.
            self.add(ROOT, "Workflow has no terminal state")
        elif isinstance(start, str) and start in states:
            self._reachability(start, states, prefix)

    def _query_language(self, value: Any, where: str) -> None:
        problem = vq.language_problem(value, where)
        if problem is not None:
            self.problems.append(problem)

    def _reachability(self, start: str, states: dict[str, Any], prefix: str) -> None:
        seen = {start}
        todo = [start]
        while todo:
            spec = states.get(todo.pop())
            if not isinstance(spec, dict):
                continue
            for target in _targets(spec):
                if target in states and target not in seen:
                    seen.add(target)
                    todo.append(target)
        for name in states:
            if name not in seen:
                self.add(f"{prefix}States/{name}", f'State "{name}" is not reachable.')

    # -- states ---------------------------------------------------------------------------

    def state(self, name: str, spec: Any, where: str, scope: dict[str, Any]) -> None:
        if len(name) > MAX_NAME_LENGTH:
            self.add(where, f"State name exceeds {MAX_NAME_LENGTH} characters")
        if name == "":
            self.add(where, "State name must not be empty")
        if name in self.names:
            self.add(where, f"Duplicate State name: {name}")
        else:
            self.names[name] = where
        if not isinstance(spec, dict):
            self.add(where, "state must be a JSON object")
            return
        typ = spec.get("Type")
        if "Type" not in spec:
            self.add(where, "These fields are required: [Type]")
            return
        if typ not in _FIELDS:
            self.add(f"{where}/Type", f"unknown state type {typ!r}")
            return
        language = spec.get("QueryLanguage", self.language)
        if "QueryLanguage" in spec:
            self._query_language(spec["QueryLanguage"], f"{where}/QueryLanguage")
            if self.language == vq.JSONATA and language == vq.JSONPATH:
                self.add(
                    where,
                    "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state "
                    "machine",
                )
        if language not in (vq.JSONATA, vq.JSONPATH):
            language = self.language
        outer, self.language = self.language, language
        try:
            self._state_body(typ, spec, where, scope)
        finally:
            self.language = outer

    def _state_body(
        self, typ: str, spec: dict[str, Any], where: str, scope: dict[str, Any]
    ) -> None:
        jsonata_state = self.language == vq.JSONATA
        if jsonata_state:
            allowed = vq.JSONATA_FIELDS[typ]
        else:
            allowed = _FIELDS[typ] | {"QueryLanguage"}
            if typ in vq.ASSIGNABLE:
                allowed = allowed | {"Assign"}
        for key in spec:
            if key in allowed:
                continue
            if jsonata_state and key in _FIELDS[typ]:
                self.add(where, vq.only_in(key, vq.JSONPATH))
            elif not jsonata_state and key in vq.JSONATA_FIELDS[typ]:
                self.add(where, vq.only_in(key, vq.JSONATA))
            else:
                self.add(where, f"Field '{key}' is not supported")
        if "Comment" in spec and not isinstance(spec["Comment"], str):
            self.add(f"{where}/Comment", "must be a string")
        self._transitions(typ, spec, where, scope)
        if jsonata_state:
            self.problems.extend(vq.jsonata_state_problems(typ, spec, where))
            self._jsonata_structure(typ, spec, where, scope)
        else:
            self._io(typ, spec, where)
            getattr(self, f"_{typ.lower()}")(spec, where, scope)
            if "Assign" in spec and typ in vq.ASSIGNABLE:
                self.problems.extend(
                    vq.assign_problems(spec["Assign"], f"{where}/Assign", vq.JSONPATH)
                )
        if "Retry" in spec:
            self._retry(spec["Retry"], f"{where}/Retry")
        if "Catch" in spec:
            self._catch(spec["Catch"], f"{where}/Catch", scope)

    def _jsonata_structure(
        self, typ: str, spec: dict[str, Any], where: str, scope: dict[str, Any]
    ) -> None:
        """Targets and nested machines of a JSONata state (its expressions: validate_query)."""
        if typ == "Choice":
            rules = spec.get("Choices")
            if not isinstance(rules, list) or not rules:
                self.add(f"{where}/Choices", "must be a non-empty array")
                rules = []
            for i, rule in enumerate(rules):
                if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                    self._target(rule["Next"], f"{where}/Choices[{i}].Next", scope)
            if "Default" in spec:
                self._target(spec["Default"], f"{where}/Default", scope)
        elif typ == "Task":
            if not isinstance(spec.get("Resource"), str) or not spec["Resource"]:
                self._resource(spec, where)
        elif typ == "Parallel":
            self._parallel(spec, where, scope)
        elif typ == "Map":
            if "ItemProcessor" in spec and "Iterator" in spec:
                self.add(where, "cannot have both 'ItemProcessor' and 'Iterator'")
            key = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
            if key not in spec:
                self.add(where, "requires 'ItemProcessor' (or the legacy 'Iterator')")
            else:
                self.machine(spec[key], f"{where}/{key}", top=False)
            self._distributed(spec, where)

    def _transitions(
        self, typ: str, spec: dict[str, Any], where: str, scope: dict[str, Any]
    ) -> None:
        has_next, has_end = "Next" in spec, "End" in spec
        if typ in _NON_TERMINAL:
            if has_end and spec["End"] is not True:
                self.add(f"{where}/End", "must be true when present")
            if has_next and has_end:
                self.add(where, "cannot have both 'Next' and 'End'")
            elif not has_next and not (has_end and spec["End"] is True):
                self.add(where, "must have either 'Next' or 'End': true")
        else:
            if has_next:
                self.add(f"{where}/Next", f"a {typ} state cannot have 'Next'")
            if has_end:
                self.add(f"{where}/End", f"a {typ} state cannot have 'End'")
        if has_next and typ in _NON_TERMINAL:
            self._target(spec["Next"], f"{where}/Next", scope)

    def _target(self, target: Any, where: str, scope: dict[str, Any]) -> None:
        if not isinstance(target, str):
            self.add(where, "must be a string")
        elif target not in scope:
            # AWS says 'Next' whichever field (Default, Choices[i].Next, Catch[i].Next) it is.
            self.add(where, f"Missing 'Next' target: {target}")

    def _path(
        self, value: Any, where: str, *, reference: bool, nullable: bool, context: bool = True
    ) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str):
            self.add(where, "must be a string path" + (" or null" if nullable else ""))
            return
        try:
            path = compile_path(value)
        except PathSyntaxError as exc:
            self.add(where, str(exc))
            return
        # Reference paths that only read (ItemsPath, SecondsPath, ...Path settings) may
        # select from the context object ($$.Execution.Input...); ResultPath writes.
        if reference and not (path.definite if context and path.context else path.is_reference):
            self.add(where, f"'{value}' is not a valid reference path")
        elif path.variable is not None and where.endswith("ResultPath"):
            self.add(where, f"'{value}': a ResultPath cannot refer to a variable")

    def _result_path(self, value: Any, where: str) -> None:
        """A ResultPath writes, so it may not name the context object."""
        self._path(value, where, reference=True, nullable=True, context=False)

    def _io(self, typ: str, spec: dict[str, Any], where: str) -> None:
        for key in ("InputPath", "OutputPath"):
            if key in spec:
                self._path(spec[key], f"{where}/{key}", reference=False, nullable=True)
        if "ResultPath" in spec:
            self._result_path(spec["ResultPath"], f"{where}/ResultPath")
        for key in ("Parameters", "ResultSelector", "ItemSelector"):
            if key in spec:
                self._template(spec[key], f"{where}/{key}", must_be_object=key != "Parameters")

    def _template(self, value: Any, where: str, must_be_object: bool = True) -> None:
        if must_be_object and not isinstance(value, dict):
            self.add(where, "must be a JSON object")
            return
        problems: list[str] = []
        payload.compile_template(value, where, problems)
        self.problems.extend(problems)

    def _resource(self, spec: dict[str, Any], where: str) -> None:
        if "Resource" not in spec:
            self.add(where, "These fields are required: [Resource]")
        elif not isinstance(spec["Resource"], str) or not spec["Resource"]:
            self.add(f"{where}/Resource", "must be a non-empty string")

    # -- per type ------------------------------------------------------------------------------

    def _pass(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        pass

    def _succeed(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        pass

    def _task(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        if not isinstance(spec.get("Resource"), str) or not spec["Resource"]:
            self._resource(spec, where)
        for key in ("TimeoutSeconds", "HeartbeatSeconds"):
            if key in spec:
                if not (_is_int(spec[key]) and spec[key] > 0):
                    self.add(f"{where}/{key}", "must be a positive integer")
                if f"{key}Path" in spec:
                    self.add(where, f"cannot have both '{key}' and '{key}Path'")
            if f"{key}Path" in spec:
                self._path(spec[f"{key}Path"], f"{where}/{key}Path", reference=True, nullable=False)
        t, h = spec.get("TimeoutSeconds"), spec.get("HeartbeatSeconds")
        if isinstance(t, int) and isinstance(h, int) and h >= t:
            self.add(f"{where}/HeartbeatSeconds", "must be smaller than TimeoutSeconds")

    def _wait(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        keys = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in spec]
        if len(keys) != 1:
            self.add(
                where,
                "must have exactly one of Seconds, Timestamp, SecondsPath, TimestampPath"
                f" (found {', '.join(keys) or 'none'})",
            )
        if "Seconds" in spec and not (_is_int(spec["Seconds"]) and spec["Seconds"] >= 0):
            self.add(f"{where}/Seconds", "must be a non-negative integer")
        if "Timestamp" in spec and choice.parse_timestamp(spec["Timestamp"]) is None:
            self.add(
                f"{where}/Timestamp", f"'{spec['Timestamp']}' is not a valid RFC 3339 timestamp"
            )
        for key in ("SecondsPath", "TimestampPath"):
            if key in spec:
                self._path(spec[key], f"{where}/{key}", reference=True, nullable=False)

    def _fail(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        for key in ("Error", "Cause"):
            if key in spec and f"{key}Path" in spec:
                self.add(where, f"cannot have both '{key}' and '{key}Path'")
            if key in spec and not isinstance(spec[key], str):
                self.add(f"{where}/{key}", "must be a string")
            if f"{key}Path" in spec:
                self._template({"v.$": spec[f"{key}Path"]}, f"{where}/{key}Path")

    def _choice(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        rules = spec.get("Choices")
        if not isinstance(rules, list) or not rules:
            self.add(f"{where}/Choices", "must be a non-empty array")
            rules = []
        for i, rule in enumerate(rules):
            rw = f"{where}/Choices[{i}]"
            choice.validate_rule(rule, rw, True, self.problems)
            if isinstance(rule, dict) and "Assign" in rule:
                self.problems.extend(
                    vq.assign_problems(rule["Assign"], f"{rw}/Assign", vq.JSONPATH)
                )
            if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                self._target(rule["Next"], f"{rw}/Next", scope)
        if "Default" in spec:
            self._target(spec["Default"], f"{where}/Default", scope)

    def _parallel(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        branches = spec.get("Branches")
        if not isinstance(branches, list) or not branches:
            self.add(f"{where}/Branches", "must be a non-empty array of state machines")
            return
        for i, branch in enumerate(branches):
            self.machine(branch, f"{where}/Branches[{i}]", top=False)

    def _map(self, spec: dict[str, Any], where: str, scope: dict[str, Any]) -> None:
        if "ItemProcessor" in spec and "Iterator" in spec:
            self.add(where, "cannot have both 'ItemProcessor' and 'Iterator'")
        processor_key = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
        if processor_key not in spec:
            self.add(where, "requires 'ItemProcessor' (or the legacy 'Iterator')")
        else:
            self.machine(spec[processor_key], f"{where}/{processor_key}", top=False)
        if "ItemSelector" in spec and "Parameters" in spec:
            self.add(where, "cannot have both 'ItemSelector' and 'Parameters'")
        if "ItemsPath" in spec:
            self._path(spec["ItemsPath"], f"{where}/ItemsPath", reference=True, nullable=False)
        self._distributed(spec, where)
        self._exclusive_int(spec, where, "MaxConcurrency", 0, None)
        self._exclusive_int(spec, where, "ToleratedFailureCount", 0, None)
        if "ToleratedFailurePercentage" in spec:
            v = spec["ToleratedFailurePercentage"]
            if not (_is_number(v) and 0 <= v <= 100):
                self.add(
                    f"{where}/ToleratedFailurePercentage", "must be a number between 0 and 100"
                )
            if "ToleratedFailurePercentagePath" in spec:
                self.add(where, "cannot have both 'ToleratedFailurePercentage' and its Path form")
        if "ToleratedFailurePercentagePath" in spec:
            self._path(
                spec["ToleratedFailurePercentagePath"],
                f"{where}/ToleratedFailurePercentagePath",
                reference=True,
                nullable=False,
            )

    def _distributed(self, spec: dict[str, Any], where: str) -> None:
        for problem in distributed_problems(spec, where):
            self.add(*problem)

    def _exclusive_int(
        self, spec: dict[str, Any], where: str, key: str, lo: int, hi: int | None
    ) -> None:
        if key in spec:
            v = spec[key]
            if not (_is_int(v) and v >= lo and (hi is None or v <= hi)):
                self.add(f"{where}/{key}", f"must be an integer >= {lo}")
            if f"{key}Path" in spec:
                self.add(where, f"cannot have both '{key}' and '{key}Path'")
        if f"{key}Path" in spec:
            self._path(spec[f"{key}Path"], f"{where}/{key}Path", reference=True, nullable=False)

    # -- retry / catch -----------------------------------------------------------------------

    def _error_equals(self, value: Any, where: str, last: bool) -> None:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.add(where, "must be a non-empty array of strings")
            return
        if ALL in value:
            if len(value) > 1:
                self.add(where, "States.ALL must appear alone in ErrorEquals")
            if not last:
                self.add(where, "States.ALL must appear in the last retrier/catcher")
        for name in value:
            if name.startswith("States.") and name not in KNOWN_STATES_ERRORS:
                self.add(
                    where,
                    f"unknown error name '{name}' (names starting with 'States.' are reserved)",
                )

    def _retry(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            self.add(where, "must be an array")
            return
        for i, r in enumerate(value):
            rw = f"{where}[{i}]"
            if not isinstance(r, dict):
                self.add(rw, "must be an object")
                continue
            allowed = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate",
                       "MaxDelaySeconds", "JitterStrategy", "Comment"}  # fmt: skip
            for key in r:
                if key not in allowed:
                    self.add(f"{rw}/{key}", "unknown field in retrier")
            self._error_equals(r.get("ErrorEquals"), f"{rw}/ErrorEquals", i == len(value) - 1)
            if "IntervalSeconds" in r and not (
                _is_int(r["IntervalSeconds"]) and r["IntervalSeconds"] >= 1
            ):
                self.add(f"{rw}/IntervalSeconds", "must be a positive integer")
            if "MaxAttempts" in r and not (_is_int(r["MaxAttempts"]) and r["MaxAttempts"] >= 0):
                self.add(f"{rw}/MaxAttempts", "must be a non-negative integer")
            if "BackoffRate" in r and not (
                _is_number(r["BackoffRate"]) and r["BackoffRate"] >= 1.0
            ):
                self.add(f"{rw}/BackoffRate", "must be a number >= 1.0")
            if "MaxDelaySeconds" in r and not (
                _is_int(r["MaxDelaySeconds"]) and r["MaxDelaySeconds"] >= 1
            ):
                self.add(f"{rw}/MaxDelaySeconds", "must be a positive integer")
            if "JitterStrategy" in r and r["JitterStrategy"] not in ("FULL", "NONE"):
                self.add(f"{rw}/JitterStrategy", "must be FULL or NONE")

    def _catch(self, value: Any, where: str, scope: dict[str, Any]) -> None:
        if not isinstance(value, list):
            self.add(where, "must be an array")
            return
        for i, c in enumerate(value):
            cw = f"{where}[{i}]"
            if not isinstance(c, dict):
                self.add(cw, "must be an object")
                continue
            for key in c:
                if key not in {"ErrorEquals", "Next", "ResultPath", "Comment", "Assign", "Output"}:
                    self.add(f"{cw}/{key}", "unknown field in catcher")
            self.problems.extend(vq.catcher_problems(c, cw, self.language))
            self._error_equals(c.get("ErrorEquals"), f"{cw}/ErrorEquals", i == len(value) - 1)
            if "Next" not in c:
                self.add(cw, "catcher requires 'Next'")
            else:
                self._target(c["Next"], f"{cw}/Next", scope)
            if "ResultPath" in c and self.language == vq.JSONPATH:
                self._result_path(c["ResultPath"], f"{cw}/ResultPath")


def _terminal(spec: Any) -> bool:
    return isinstance(spec, dict) and (
        spec.get("Type") in ("Succeed", "Fail") or spec.get("End") is True
    )


def _targets(spec: dict[str, Any]) -> Iterable[str]:
    if isinstance(spec.get("Next"), str):
        yield spec["Next"]
    if isinstance(spec.get("Default"), str):
        yield spec["Default"]
    for group in ("Choices", "Catch"):
        items = spec.get(group)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("Next"), str):
                    yield item["Next"]


def validate_definition(definition: Any) -> list[str]:
    """Return every problem found (empty when the definition is valid)."""
    v = _Validator()
    v.machine(definition, "", top=True)
    return v.problems


__all__ = ["MAX_NAME_LENGTH", "validate_definition"]

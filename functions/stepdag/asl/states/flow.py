"""Pass, Choice, Wait, Succeed and Fail states."""

from __future__ import annotations

from typing import Any

from stepdag.asl import choice, intrinsics, jsonata, payload
from stepdag.asl.errors import NO_CHOICE_MATCHED, RUNTIME, StatesError, to_json
from stepdag.asl.paths import JsonPath, NoMatch, compile_path
from stepdag.asl.runtime import Frame, sleep_or_cancel
from stepdag.asl.states import query
from stepdag.asl.states.base import State, runtime_prefix, shown


class PassState(State):
    type_name = "Pass"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.has_fixed_result = "Result" in raw
        self.fixed_result = raw.get("Result")

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        try:
            effective = self.effective_input(data, frame)
            if self.has_fixed_result:
                result = self.fixed_result
            elif self.parameters is not None:
                ctx = frame.context(self.name, _entered_time(frame))
                result = self.apply_parameters(frame, effective, ctx)
            else:
                result = effective
            return self.finish(frame, data, result, self.next), self.next
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id, frame) from err


def _entered_time(frame: Frame) -> str:
    return frame.execution.clock.now_iso()


class ChoiceState(State):
    type_name = "Choice"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.default: str | None = raw.get("Default")
        if self.jsonata:
            self.conditions = [
                _Condition(raw, i, r, self.query) for i, r in enumerate(raw["Choices"])
            ]
            return
        self.rules = [(choice.compile_rule(r), r["Next"]) for r in raw["Choices"]]
        # JSONPath rules may Assign too; a rule without Assign uses the state's.
        self.rule_queries = [
            query.StateQuery(r, f"{name}.Choices[{i}].Assign") if "Assign" in r else None
            for i, r in enumerate(raw["Choices"])
        ]

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        if self.jsonata:
            try:
                return self._run_jsonata(frame, data)
            except StatesError as err:
                raise runtime_prefix(err, self.name, entered_id, frame) from err
        try:
            effective = self.effective_input(data, frame)
            ctx = frame.context(self.name, _entered_time(frame))
            target = self.default
            rule: query.StateQuery | None = None
            for (predicate, next_name), rule_query in zip(
                self.rules, self.rule_queries, strict=True
            ):
                if predicate(effective, ctx):
                    target, rule = next_name, rule_query
                    break
            if target is None:
                raise StatesError(NO_CHOICE_MATCHED, "No Matches!")
            return self.finish(frame, effective, effective, target, ctx, rule=rule), target
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id, frame) from err

    def _run_jsonata(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        ctx = frame.context(self.name, _entered_time(frame))
        bound = query.bindings(frame, data, ctx)
        for condition in self.conditions:
            if condition.holds(bound):
                return self.finish(frame, data, data, condition.next, ctx, rule=condition.query), (
                    condition.next
                )
        if self.default is None:
            raise StatesError(NO_CHOICE_MATCHED, "No Matches!")
        return self.finish(frame, data, data, self.default, ctx), self.default


class _Condition:
    """A JSONata Choice rule: ``Condition`` plus its own ``Output``/``Assign``."""

    def __init__(
        self, raw: dict[str, Any], index: int, rule: dict[str, Any], state: query.StateQuery
    ) -> None:
        self.next: str = rule["Next"]
        self.field = f"Choices[{index}]/Condition"
        value = rule["Condition"]
        self.expression = jsonata.Expression(value) if jsonata.is_expression(value) else None
        self.literal = value
        self.query = query.StateQuery(
            {**rule, "QueryLanguage": query.JSONATA}, "", prefix=f"Choices[{index}]/"
        )
        # A rule without its own Output/Assign uses the state's.
        if self.query.output is None:
            self.query.output = state.output
        if self.query.assign is None:
            self.query.assign = state.assign

    def holds(self, bound: dict[str, Any]) -> bool:
        if self.expression is None:
            return bool(self.literal)
        value = self.expression.evaluate(self.field, bound)
        if not isinstance(value, bool):
            raise StatesError(
                jsonata.QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.expression.text}' specified for the field "
                f"'{self.field}' returned a non-boolean value: {to_json(value)}",
            )
        return value


class WaitState(State):
    type_name = "Wait"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.seconds: float | None = raw.get("Seconds")
        self.timestamp: str | None = raw.get("Timestamp")
        self.seconds_path = compile_path(raw["SecondsPath"]) if "SecondsPath" in raw else None
        self.timestamp_path = compile_path(raw["TimestampPath"]) if "TimestampPath" in raw else None

    def _duration(self, frame: Frame, effective: Any) -> float:
        now = frame.execution.clock.now()
        if self.jsonata and (
            jsonata.is_expression(self.seconds) or jsonata.is_expression(self.timestamp)
        ):
            return self._jsonata_duration(frame, effective, now)
        if self.seconds is not None:
            return float(self.seconds)
        if self.timestamp is not None:
            ts = choice.parse_timestamp(self.timestamp)
            assert ts is not None  # validated at load
            return ts.timestamp() - now
        if self.seconds_path is not None:
            value = _sample(
                self.seconds_path,
                self.path_source(self.seconds_path, effective, frame),
                "SecondsPath",
            )
            desc = f"{self.seconds_path.source} == {shown(value)}"
            if isinstance(value, bool) or not isinstance(value, int):
                raise StatesError(
                    RUNTIME, f"The SecondsPath parameter cannot be parsed as a long value: {desc}"
                )
            if value < 0:
                raise StatesError(
                    RUNTIME, f"The SecondsPath parameter references a negative value: {desc}"
                )
            return float(value)
        assert self.timestamp_path is not None
        value = _sample(
            self.timestamp_path,
            self.path_source(self.timestamp_path, effective, frame),
            "TimestampPath",
        )
        ts = choice.parse_timestamp(value)
        if ts is None:
            raise StatesError(
                RUNTIME,
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                f"date-time format string: {self.timestamp_path.source} == {value}",
            )
        return ts.timestamp() - now

    def _jsonata_duration(self, frame: Frame, data: Any, now: float) -> float:
        bound = query.bindings(frame, data, frame.context(self.name, _entered_time(frame)))
        if jsonata.is_expression(self.seconds):
            assert isinstance(self.seconds, str)
            value = jsonata.Expression(self.seconds).evaluate("Seconds", bound)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StatesError(
                    jsonata.QUERY_EVALUATION_ERROR,
                    f"The JSONata expression '{self.seconds[2:-2].strip()}' specified for the "
                    "field 'Seconds' must evaluate to a non-negative integer, got: "
                    f"{to_json(value)}",
                )
            return float(value)
        assert isinstance(self.timestamp, str)
        value = jsonata.Expression(self.timestamp).evaluate("Timestamp", bound)
        ts = choice.parse_timestamp(value)
        if ts is None:
            raise StatesError(
                jsonata.QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.timestamp[2:-2].strip()}' specified for the "
                f"field 'Timestamp' must evaluate to an ISO-8601 timestamp, got: {to_json(value)}",
            )
        return ts.timestamp() - now

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        try:
            effective = self.effective_input(data, frame)
            sleep_or_cancel(frame, self._duration(frame, effective))
            return self.finish(frame, effective, effective, self.next), self.next
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id, frame) from err


def _sample(path: JsonPath, data: Any, field: str) -> Any:
    try:
        return path.find(data)
    except NoMatch as exc:
        raise StatesError(
            RUNTIME, f"The {field} parameter does not reference an input value: {path.source}"
        ) from exc


class SucceedState(State):
    type_name = "Succeed"

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        try:
            effective = self.effective_input(data, frame)
            return self.finish(frame, effective, effective, None), None
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id, frame) from err


class FailState(State):
    type_name = "Fail"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.error: str | None = raw.get("Error")
        self.cause: str | None = raw.get("Cause")
        self.error_path = _dynamic(raw, "ErrorPath")
        self.cause_path = _dynamic(raw, "CausePath")

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        error, cause = self.error, self.cause
        try:
            ctx = frame.context(self.name, _entered_time(frame))
            rng = frame.execution.rng
            if self.jsonata:
                bound = query.bindings(frame, data, ctx)
                error = _jsonata_text(self.error, "Error", bound)
                cause = _jsonata_text(self.cause, "Cause", bound)
            if self.error_path is not None:
                error = _as_text(payload.evaluate(self.error_path, data, ctx, rng), "ErrorPath")
            if self.cause_path is not None:
                cause = _as_text(payload.evaluate(self.cause_path, data, ctx, rng), "CausePath")
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id, frame) from err
        raise StatesError(error, cause)


def _dynamic(raw: dict[str, Any], key: str) -> payload.Node | None:
    """ErrorPath/CausePath: a path or an intrinsic, reported under the field's own name."""
    if key not in raw:
        return None
    value: str = raw[key]
    if value.startswith("$"):
        return payload.PathRef(key, compile_path(value))
    return payload.Intrinsic(key, intrinsics.parse_intrinsic(value))


def _jsonata_text(value: str | None, field: str, bound: dict[str, Any]) -> str | None:
    if not jsonata.is_expression(value):
        return value
    assert value is not None
    out = jsonata.Expression(value).evaluate(field, bound)
    if not isinstance(out, str):
        raise StatesError(
            jsonata.QUERY_EVALUATION_ERROR,
            f"The JSONata expression '{value[2:-2].strip()}' specified for the field '{field}' "
            f"must evaluate to a string, got: {to_json(out)}",
        )
    return out


def _as_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise StatesError(
            RUNTIME,
            f"The {field} field must reference a string value, but got: {to_json(value)}",
        )
    return value


__all__ = ["ChoiceState", "FailState", "PassState", "SucceedState", "WaitState"]

"""Pass, Choice, Wait, Succeed and Fail states."""

from __future__ import annotations

from typing import Any

from stepdag.asl import choice, intrinsics, payload
from stepdag.asl.errors import NO_CHOICE_MATCHED, RUNTIME, StatesError, to_json
from stepdag.asl.paths import JsonPath, NoMatch, compile_path
from stepdag.asl.runtime import Frame, sleep_or_cancel
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
            raise runtime_prefix(err, self.name, entered_id) from err


def _entered_time(frame: Frame) -> str:
    return frame.execution.clock.now_iso()


class ChoiceState(State):
    type_name = "Choice"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        self.rules = [(choice.compile_rule(r), r["Next"]) for r in raw["Choices"]]
        self.default: str | None = raw.get("Default")

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        try:
            effective = self.effective_input(data, frame)
            ctx = frame.context(self.name, _entered_time(frame))
            target = self.default
            for predicate, next_name in self.rules:
                if predicate(effective, ctx):
                    target = next_name
                    break
            if target is None:
                raise StatesError(NO_CHOICE_MATCHED, "No Matches!")
            return self.finish(frame, effective, effective, target), target
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id) from err


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

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        entered_id = self.enter(frame, data)
        try:
            effective = self.effective_input(data, frame)
            sleep_or_cancel(frame, self._duration(frame, effective))
            return self.finish(frame, effective, effective, self.next), self.next
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id) from err


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
            raise runtime_prefix(err, self.name, entered_id) from err


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
            if self.error_path is not None:
                error = _as_text(payload.evaluate(self.error_path, data, ctx, rng), "ErrorPath")
            if self.cause_path is not None:
                cause = _as_text(payload.evaluate(self.cause_path, data, ctx, rng), "CausePath")
        except StatesError as err:
            raise runtime_prefix(err, self.name, entered_id) from err
        raise StatesError(error, cause)


def _dynamic(raw: dict[str, Any], key: str) -> payload.Node | None:
    """ErrorPath/CausePath: a path or an intrinsic, reported under the field's own name."""
    if key not in raw:
        return None
    value: str = raw[key]
    if value.startswith("$"):
        return payload.PathRef(key, compile_path(value))
    return payload.Intrinsic(key, intrinsics.parse_intrinsic(value))


def _as_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise StatesError(
            RUNTIME,
            f"The {field} field must reference a string value, but got: {to_json(value)}",
        )
    return value


__all__ = ["ChoiceState", "FailState", "PassState", "SucceedState", "WaitState"]

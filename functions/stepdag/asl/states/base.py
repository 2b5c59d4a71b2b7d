"""Common state machinery: input/output processing, Retry and Catch.

Input and output processing follow AWS's order: InputPath → Parameters → (work) →
ResultSelector → ResultPath → OutputPath. Definitions are validated before states
are built, so constructors here trust the raw dict's shape.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from stepdag.asl import jsonata, payload
from stepdag.asl.errors import (
    ALL,
    DATA_LIMIT_EXCEEDED,
    RESULT_PATH_MATCH_FAILURE,
    RUNTIME,
    TASK_FAILED,
    TIMEOUT,
    StatesError,
    to_json,
)
from stepdag.asl.paths import JsonPath, NoMatch, compile_path, describe_no_results
from stepdag.asl.runtime import Frame, failure_output, sleep_or_cancel
from stepdag.asl.states import query
from stepdag.core.quotas import MAX_PAYLOAD_BYTES

# States whose work produces ``$states.result`` in JSONata.
_RESULT_STATES: Final = frozenset({"Task", "Parallel", "Map"})
_PREFIXED: Final = frozenset({RUNTIME, jsonata.QUERY_EVALUATION_ERROR})
# The field an evaluation cause names: "... specified for the field 'Output/a' ..." or
# "The Items field must ...".
_FIELD: Final = re.compile(r"specified for the field '([^']+)'|^The (\w+) field ")


@dataclass(frozen=True, slots=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: str = "NONE"

    def delay(self, attempt: int, rng_value: float) -> float:
        """Delay before retry number ``attempt`` (0-based); ``rng_value`` in [0, 1)."""
        delay = self.interval_seconds * (self.backoff_rate**attempt)
        if self.max_delay_seconds is not None:
            delay = min(delay, self.max_delay_seconds)
        if self.jitter == "FULL":
            delay = delay * rng_value
        return delay


@dataclass(frozen=True, slots=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: JsonPath | None
    discard_result: bool
    query: query.StateQuery | None = None


def error_matches(names: tuple[str, ...], error: str | None) -> bool:
    """AWS matching: exact name, ``States.ALL`` for anything catchable, and
    ``States.TaskFailed`` for anything except ``States.Timeout``."""
    if error in (RUNTIME, DATA_LIMIT_EXCEEDED):
        return False
    if error is not None and error in names:
        return True
    if ALL in names:
        return True
    return TASK_FAILED in names and error != TIMEOUT


def _opt_path(raw: dict[str, Any], key: str) -> tuple[JsonPath | None, bool]:
    """(path, is_null) for an optional Path field whose default is ``$``."""
    if key not in raw:
        return None, False
    if raw[key] is None:
        return None, True
    path = compile_path(raw[key])
    return (None if path.source == "$" else path), False


def payload_size_exceeded(text: str) -> bool:
    if len(text) <= MAX_PAYLOAD_BYTES // 4:
        return False  # cheap early exit: at most 4 UTF-8 bytes per character
    return len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES


class State(ABC):
    """A compiled state. ``run`` returns ``(output, next_state_name_or_None)``."""

    type_name: ClassVar[str]
    has_result: ClassVar[bool] = True

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        self.name = name
        self.raw = raw
        self.next: str | None = raw.get("Next")
        self.query = query.StateQuery(raw, f"{name}.Assign")
        self.jsonata = self.query.jsonata
        self.input_path, self.input_null = _opt_path(raw, "InputPath")
        self.output_path, self.output_null = _opt_path(raw, "OutputPath")
        self.result_path, self.result_null = _opt_path(raw, "ResultPath")
        problems: list[str] = []
        # Map's ItemSelector/Parameters apply per item; the Map state handles them itself.
        params = raw.get("Parameters") if raw.get("Type") != "Map" else None
        self.parameters = (
            None if params is None else payload.compile_template(params, name, problems)
        )
        rs = raw.get("ResultSelector")
        self.result_selector = None if rs is None else payload.compile_template(rs, name, problems)
        self.retriers = tuple(
            Retrier(
                error_equals=tuple(r["ErrorEquals"]),
                interval_seconds=r.get("IntervalSeconds", 1),
                max_attempts=r.get("MaxAttempts", 3),
                backoff_rate=r.get("BackoffRate", 2.0),
                max_delay_seconds=r.get("MaxDelaySeconds"),
                jitter=r.get("JitterStrategy", "NONE"),
            )
            for r in raw.get("Retry", [])
        )
        self.catchers = tuple(
            Catcher(
                error_equals=tuple(c["ErrorEquals"]),
                next=c["Next"],
                result_path=(
                    None
                    if c.get("ResultPath", "$") in (None, "$")
                    else compile_path(c["ResultPath"])
                ),
                discard_result="ResultPath" in c and c["ResultPath"] is None,
                query=query.StateQuery(
                    {"QueryLanguage": raw.get("QueryLanguage"), **c},
                    f"{name}.Catch[{i}].Assign",
                    prefix=f"Catch[{i}]/",
                ),
            )
            for i, c in enumerate(raw.get("Catch", []))
        )

    # -- events ---------------------------------------------------------------------

    def enter(self, frame: Frame, data: Any) -> int:
        frame.check()
        return frame.event(
            f"{self.type_name}StateEntered",
            {
                "name": self.name,
                "input": frame.json_text(data),
                "inputDetails": {"truncated": False},
            },
        )

    def exit(
        self,
        frame: Frame,
        output: Any,
        text: str | None = None,
        assigned: dict[str, Any] | None = None,
    ) -> None:
        details: dict[str, Any] = {
            "name": self.name,
            "output": frame.json_text(output) if text is None else text,
            "outputDetails": {"truncated": False},
        }
        if assigned is not None:
            # AWS's StateExitedEventDetails: each variable's value as JSON text.
            frame.scope.assign(self.name, assigned)
            details["assignedVariables"] = {k: to_json(v) for k, v in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        frame.event(f"{self.type_name}StateExited", details)

    # -- input/output processing -------------------------------------------------------

    def effective_input(self, data: Any, frame: Frame | None = None) -> Any:
        if self.input_null:
            return {}
        if self.input_path is None:
            return data
        context = self._context_for(self.input_path, frame)
        return _select(self.input_path, data, context, "InputPath")

    def apply_parameters(self, frame: Frame, data: Any, context: dict[str, Any]) -> Any:
        if self.jsonata:
            if self.query.arguments is None:
                return data
            return jsonata.evaluate(self.query.arguments, query.bindings(frame, data, context))
        if self.parameters is None:
            return data
        return payload.evaluate(self.parameters, data, context, frame.execution.rng)

    def select_result(self, frame: Frame, result: Any, context: dict[str, Any]) -> Any:
        if self.result_selector is None:
            return result
        return payload.evaluate(self.result_selector, result, context, frame.execution.rng)

    def apply_result_path(self, raw_input: Any, result: Any) -> Any:
        if self.result_null:
            return raw_input
        return place_result(self.result_path, raw_input, result)

    def finish(
        self,
        frame: Frame,
        raw_input: Any,
        result: Any,
        next_name: str | None,
        context: dict[str, Any] | None = None,
        *,
        rule: query.StateQuery | None = None,
        assign_value: Any = query.NOTHING,
    ) -> Any:
        """(Assign) + ResultPath + OutputPath, or JSONata's Output; size check; exited
        event; returns the output. ``rule`` is a matched Choice rule's own Output/Assign."""
        assigned = None
        if (self.jsonata or self.query.assigns or rule is not None) and context is None:
            context = frame.context(self.name, frame.execution.clock.now_iso())
        if self.jsonata:
            assert context is not None
            q = self.query if rule is None else rule
            bound = query.bindings(
                frame,
                raw_input,
                context,
                result=result if self.type_name in _RESULT_STATES else query.NOTHING,
            )
            assigned = query.evaluate_assign(q, frame, result, context, bound)
            output = result if q.output is None else jsonata.evaluate(q.output, bound)
        else:
            q = self.query if rule is None else rule
            if q.assigns:
                assert context is not None
                # JSONPath's Assign reads the raw result (before ResultSelector).
                value = result if assign_value is query.NOTHING else assign_value
                assigned = query.evaluate_assign(q, frame, value, context, None)
            output = self.apply_result_path(raw_input, result)
            if self.output_null:
                output = {}
            elif self.output_path is not None:
                path_context = self._context_for(self.output_path, frame)
                output = _select(self.output_path, output, path_context, "OutputPath")
        text = frame.json_text(output)
        if payload_size_exceeded(text):
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{self.name}' returned a result with a size exceeding the "
                "maximum number of bytes service limit.",
            )
        self.exit(frame, output, text, assigned)
        return output

    def _context_for(self, path: JsonPath, frame: Frame | None) -> Any:
        """The context object when ``path`` reads it (``$$``), else None (AWS allows
        ``$$`` in InputPath, OutputPath and ItemsPath as well as in payload templates)."""
        if not path.context or frame is None:
            return None
        return frame.context(self.name, frame.execution.clock.now_iso())

    def path_source(self, path: JsonPath, data: Any, frame: Frame) -> Any:
        """What a read-only path (SecondsPath, MaxConcurrencyPath, ...) selects from."""
        context = self._context_for(path, frame)
        return data if context is None else context

    # -- retry / catch ---------------------------------------------------------------------

    def recover(
        self, frame: Frame, err: StatesError, raw_input: Any, attempts: list[int]
    ) -> tuple[str, Any]:
        """Decide what a failure leads to: ``("retry", delay)`` or ``("catch", (out, next))``.

        ``attempts`` holds per-retrier counts for this state visit. Re-raises when
        neither a retrier nor a catcher applies.
        """
        if not err.catchable:
            raise err
        for i, retrier in enumerate(self.retriers):
            if error_matches(retrier.error_equals, err.error):
                if attempts[i] < retrier.max_attempts:
                    where = f"{frame.execution.seed}|{frame.key}|{self.name}|{i}|{attempts[i]}"
                    delay = retrier.delay(attempts[i], random.Random(where).random())
                    attempts[i] += 1
                    return "retry", delay
                break  # the first matching retrier decides; exhausted → try catchers
        for catcher in self.catchers:
            if error_matches(catcher.error_equals, err.error):
                result = failure_output(err)
                if catcher.query is not None and (catcher.query.jsonata or catcher.query.assigns):
                    return "catch", self._catch_with_query(frame, catcher, raw_input, result)
                if catcher.discard_result:
                    output = raw_input
                else:
                    output = place_result(catcher.result_path, raw_input, result)
                return "catch", (output, catcher.next, None)
        raise err

    def _catch_with_query(
        self, frame: Frame, catcher: Catcher, raw_input: Any, result: dict[str, Any]
    ) -> tuple[Any, str, dict[str, Any] | None]:
        q = catcher.query
        assert q is not None
        context = frame.context(self.name, frame.execution.clock.now_iso())
        if q.jsonata:
            bound = query.bindings(frame, raw_input, context, error_output=result)
            assigned = query.evaluate_assign(q, frame, result, context, bound)
            output = result if q.output is None else jsonata.evaluate(q.output, bound)
            return output, catcher.next, assigned
        assigned = query.evaluate_assign(q, frame, result, context, None)
        if catcher.discard_result:
            return raw_input, catcher.next, assigned
        return place_result(catcher.result_path, raw_input, result), catcher.next, assigned

    def backoff(self, frame: Frame, delay: float) -> None:
        sleep_or_cancel(frame, delay)

    def run_attempts(
        self, frame: Frame, data: Any, attempt: Callable[[dict[str, Any]], Any]
    ) -> tuple[Any, str | None]:
        """Enter, then call ``attempt(context)`` until it returns, a retrier gives up or a
        catcher takes the error -- the loop every retrying state (Task, Parallel, Map)
        shares.  ``context`` is the Context Object of this try (``$$.State.RetryCount``);
        an attempt may add to it (a Task's token) before ResultSelector reads it."""
        entered_id = self.enter(frame, data)
        entered_time = frame.execution.clock.now_iso()
        attempts = [0] * len(self.retriers)
        retry_count = 0
        while True:
            try:
                try:
                    ctx = frame.context(self.name, entered_time, retry_count)
                    result = attempt(ctx)
                    selected = self.select_result(frame, result, ctx)
                    return self.finish(
                        frame, data, selected, self.next, ctx, assign_value=result
                    ), self.next
                except StatesError as err:
                    raise runtime_prefix(err, self.name, entered_id, frame) from err
            except StatesError as err:
                try:
                    action, value = self.recover(frame, err, data, attempts)
                except StatesError as failed:  # a catcher's own Output/Assign failed
                    raise runtime_prefix(failed, self.name, entered_id, frame) from failed
                if action == "retry":
                    self.backoff(frame, value)
                    retry_count += 1
                    continue
                output, next_name, assigned = value
                self.exit(frame, output, None, assigned)
                return output, next_name

    @abstractmethod
    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]: ...


def _select(path: JsonPath, data: Any, context: Any = None, field: str = "InputPath") -> Any:
    from_context = path.context and context is not None
    try:
        return path.find(context if from_context else data)
    except NoMatch as exc:
        if from_context:
            # Step Functions words a miss in the context object like a payload miss.
            raise StatesError(
                RUNTIME,
                f"The JSONPath '{path.source}' specified for the field '{field}' could not be "
                f"found in the input '{to_json(context)}'",
            ) from exc
        raise no_results(path) from exc


def no_results(path: JsonPath) -> StatesError:
    """A state-level path (InputPath, ItemsPath, *Path settings) that selected nothing,
    in the words of the JSONPath library Step Functions uses (Jayway)."""
    return StatesError(
        RUNTIME,
        f"Invalid path '{path.source}' : No results for path: {describe_no_results(path.source)}",
    )


def shown(value: Any) -> str:
    """A value quoted in a cause: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else to_json(value)


def place_result(path: JsonPath | None, raw_input: Any, result: Any) -> Any:
    if path is None:
        return result
    try:
        return path.set(raw_input, result)
    except NoMatch as exc:
        raise StatesError(
            RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ReferencePath {path.source} to input {to_json(raw_input)}",
        ) from exc


def runtime_prefix(
    err: StatesError, state_name: str, entered_id: int, frame: Frame | None = None
) -> StatesError:
    """AWS prefixes runtime (and JSONata evaluation) errors with the state that raised them;
    a JSONata evaluation failure is also an ``EvaluationFailed`` event in ``frame``'s history
    ("contains details about an evaluation failure ... when a JSONata expression throws an
    error": error, cause, the field's location, the state)."""
    if err.error in _PREFIXED and not (err.cause or "").startswith("An error occurred while"):
        prefixed = StatesError(
            err.error,
            f"An error occurred while executing the state '{state_name}' "
            f"(entered at the event id #{entered_id}). {err.cause}",
        )
        if frame is not None and err.error == jsonata.QUERY_EVALUATION_ERROR:
            details = {"error": err.error, "cause": prefixed.cause, "state": state_name}
            located = _FIELD.search(err.cause or "")
            if located is not None:
                details["location"] = located.group(1) or located.group(2)
            frame.event("EvaluationFailed", details)
        return prefixed
    return err


__all__ = [
    "Catcher",
    "Retrier",
    "State",
    "error_matches",
    "no_results",
    "payload_size_exceeded",
    "place_result",
    "runtime_prefix",
    "shown",
]

"""Parallel and Map (inline) states; ``distributed.py`` runs DISTRIBUTED Maps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from stepdag.asl import jsonata, payload, variables
from stepdag.asl.errors import EXCEED_TOLERATED_FAILURE_THRESHOLD, RUNTIME, StatesError, to_json
from stepdag.asl.paths import JsonPath, NoMatch, compile_path
from stepdag.asl.runtime import Frame, failure_output
from stepdag.asl.states import query
from stepdag.asl.states.base import State, no_results, shown
from stepdag.asl.states.concurrent import INLINE_MAP_CONCURRENCY, Outcome, run_concurrently

if TYPE_CHECKING:
    from stepdag.asl.machine import Machine


class _Composite(State):
    """Parallel and Map: one try is ``attempt``; ``State.run_attempts`` retries it."""

    def attempt(self, frame: Frame, data: Any, context: dict[str, Any]) -> Any:
        raise NotImplementedError

    def run(self, frame: Frame, data: Any) -> tuple[Any, str | None]:
        return self.run_attempts(frame, data, lambda ctx: self.attempt(frame, data, ctx))


class ParallelState(_Composite):
    type_name = "Parallel"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        from stepdag.asl.machine import Machine

        language = raw.get("QueryLanguage", query.JSONPATH)
        self.branches = [Machine(b, language) for b in raw["Branches"]]

    def attempt(self, frame: Frame, data: Any, context: dict[str, Any]) -> Any:
        effective = self.apply_parameters(frame, self.effective_input(data, frame), context)
        frame.event("ParallelStateStarted")

        def work(i: int, child: Frame) -> Any:
            return self.branches[i].run(child, effective)

        # ramp_up: branches that return at once share a thread instead of fighting over
        # the GIL; a branch that blocks (I/O, Wait) gets the next one started within ms.
        outcomes, _ = run_concurrently(
            frame,
            len(self.branches),
            0,
            work,
            judge=lambda o: not o.ok and not o.aborted,
            ramp_up=True,
        )
        failed = [o for o in outcomes if o is not None and o.error is not None]
        if failed:
            frame.event("ParallelStateFailed")
            err = failed[0].error
            assert err is not None
            raise err
        frame.event("ParallelStateSucceeded")
        return [o.value for o in outcomes if o is not None]


class MapState(_Composite):
    type_name = "Map"

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        from stepdag.asl.machine import Machine

        processor: dict[str, Any] = raw.get("ItemProcessor") or raw["Iterator"]
        self.processor: Machine = Machine(processor, raw.get("QueryLanguage", query.JSONPATH))
        self.items_path = compile_path(raw.get("ItemsPath", "$"))
        selector = raw.get("ItemSelector", raw.get("Parameters"))
        problems: list[str] = []
        self.items_node = query.node(raw, "Items") if self.jsonata else None
        self.jsonata_selector = query.node(raw, "ItemSelector") if self.jsonata else None
        self.item_selector = (
            None
            if selector is None or self.jsonata
            else payload.compile_template(selector, name, problems)
        )
        self.batcher: dict[str, Any] | None = raw.get("ItemBatcher")
        self.max_concurrency: int = raw.get("MaxConcurrency", 0)
        self.max_concurrency_path = _opt(raw, "MaxConcurrencyPath")
        self.tolerated_count: int = raw.get("ToleratedFailureCount", 0)
        self.tolerated_count_path = _opt(raw, "ToleratedFailureCountPath")
        self.tolerated_pct: float = raw.get("ToleratedFailurePercentage", 0)
        self.tolerated_pct_path = _opt(raw, "ToleratedFailurePercentagePath")

    def _settings(self, frame: Frame, effective: Any) -> tuple[int, int, float]:
        concurrency = self.max_concurrency
        if self.max_concurrency_path is not None:
            value = _sample(
                self.max_concurrency_path,
                self.path_source(self.max_concurrency_path, effective, frame),
            )
            if isinstance(value, bool) or not isinstance(value, int):
                raise StatesError(
                    RUNTIME,
                    f'The MaxConcurrencyPath field refers to value "{shown(value)}" which is '
                    f"not a valid integer: {self.max_concurrency_path.source}",
                )
            if value < 0:
                raise StatesError(
                    RUNTIME,
                    f"Expected non-negative integer for MaxConcurrency, got '{value}' instead.",
                )
            concurrency = value
        count = self.tolerated_count
        if self.tolerated_count_path is not None:
            value = _sample(
                self.tolerated_count_path,
                self.path_source(self.tolerated_count_path, effective, frame),
            )
            if isinstance(value, bool) or not isinstance(value, int):
                raise StatesError(
                    RUNTIME,
                    f'The ToleratedFailureCountPath field refers to value "{shown(value)}" '
                    f"which is not a valid integer: {self.tolerated_count_path.source}",
                )
            if value < 0:
                raise StatesError(RUNTIME, "ToleratedFailureCount cannot be negative.")
            count = value
        pct = self.tolerated_pct
        if self.tolerated_pct_path is not None:
            value = _sample(
                self.tolerated_pct_path, self.path_source(self.tolerated_pct_path, effective, frame)
            )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StatesError(
                    RUNTIME,
                    f'The ToleratedFailurePercentagePath field refers to value "{shown(value)}"'
                    f" which is not a valid float: {self.tolerated_pct_path.source}",
                )
            if not 0 <= value <= 100:
                raise StatesError(RUNTIME, "ToleratedFailurePercentage must be between 0 and 100.")
            pct = float(value)
        return concurrency, count, pct

    def _items(self, frame: Frame, effective: Any, context: dict[str, Any]) -> Any:
        if self.jsonata:
            if self.items_node is None:
                return effective
            bound = query.bindings(frame, effective, context)
            items = jsonata.evaluate(self.items_node, bound)
            if not isinstance(items, list):
                raise StatesError(
                    jsonata.QUERY_EVALUATION_ERROR,
                    f"The Items field must evaluate to a JSON array, got: {json_type(items)}",
                )
            return items
        try:
            return self.items_path.find(context if self.items_path.context else effective)
        except NoMatch as exc:
            raise no_results(self.items_path) from exc

    def _batches(
        self, frame: Frame, items: list[Any], effective: Any, context: dict[str, Any]
    ) -> list[Any]:
        """ItemBatcher: ``{"BatchInput"?, "Items": [...]}`` per batch of items."""
        assert self.batcher is not None
        cfg = self.batcher
        if self.jsonata:
            bound = query.bindings(frame, effective, context)
            cfg = jsonata.evaluate(jsonata.compile_template(cfg, "ItemBatcher"), bound)
            size = cfg.get("MaxItemsPerBatch")
        elif "MaxItemsPerBatchPath" in cfg:
            size = _sample(compile_path(cfg["MaxItemsPerBatchPath"]), effective)
        else:
            size = cfg.get("MaxItemsPerBatch")
        if size is None:
            size = len(items) or 1
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise StatesError(
                RUNTIME, f"MaxItemsPerBatch must be a positive integer, got: {to_json(size)}"
            )
        batch_input = cfg.get("BatchInput")
        if batch_input is not None and not self.jsonata:
            node = payload.compile_template(batch_input, self.name, [])
            batch_input = payload.evaluate(node, effective, context, frame.execution.rng)
        max_bytes = cfg.get("MaxInputBytesPerBatch")
        if not self.jsonata and "MaxInputBytesPerBatchPath" in cfg:
            max_bytes = _sample(compile_path(cfg["MaxInputBytesPerBatchPath"]), effective)
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0
        ):
            raise StatesError(
                RUNTIME,
                f"MaxInputBytesPerBatch must be a positive integer, got: {to_json(max_bytes)}",
            )
        batches = []
        for group in _groups(items, size, max_bytes, batch_input):
            batch: dict[str, Any] = {} if batch_input is None else {"BatchInput": batch_input}
            batch["Items"] = group
            batches.append(batch)
        return batches

    def _jsonata_numbers(
        self, frame: Frame, effective: Any, context: dict[str, Any]
    ) -> tuple[int, int, float]:
        bound = query.bindings(frame, effective, context)
        values: list[Any] = []
        for key, default in (
            ("MaxConcurrency", 0),
            ("ToleratedFailureCount", 0),
            ("ToleratedFailurePercentage", 0),
        ):
            value = self.raw.get(key, default)
            if jsonata.is_expression(value):
                value = jsonata.Expression(value).evaluate(key, bound)
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise StatesError(
                        jsonata.QUERY_EVALUATION_ERROR,
                        f"The {key} field must evaluate to a non-negative number, "
                        f"got: {to_json(value)}",
                    )
            values.append(value)
        return int(values[0]), int(values[1]), float(values[2])

    def item_input(
        self, frame: Frame, effective: Any, context: dict[str, Any], i: int, item: Any
    ) -> Any:
        """Item ``i``'s input: the ItemSelector applied with ``$$.Map.Item``, or the item."""
        if self.jsonata_selector is not None:
            # JSONata's context names where the items came from (the state input).
            ctx = {
                **context,
                "Map": {"Item": {"Index": i, "Value": item, "Source": "STATE_DATA"}},
            }
            bound = query.bindings(frame, effective, ctx)
            return jsonata.evaluate(self.jsonata_selector, bound)
        if self.item_selector is not None:
            ctx = {**context, "Map": {"Item": {"Index": i, "Value": item}}}
            return payload.evaluate(self.item_selector, effective, ctx, frame.execution.rng)
        return item

    def settings(
        self, frame: Frame, effective: Any, context: dict[str, Any]
    ) -> tuple[int, int, float]:
        """(MaxConcurrency, ToleratedFailureCount, ToleratedFailurePercentage) for this run."""
        if self.jsonata:
            return self._jsonata_numbers(frame, effective, context)
        return self._settings(frame, effective)

    def attempt(self, frame: Frame, data: Any, context: dict[str, Any]) -> Any:
        effective = self.effective_input(data, frame)
        items = self._items(frame, effective, context)
        if not isinstance(items, list):
            raise StatesError(
                RUNTIME, f"Map state input must be an array but was: {json_type(items)}"
            )
        concurrency, tolerated_count, tolerated_pct = self.settings(frame, effective, context)
        if self.batcher is not None:
            items = self._batches(frame, items, effective, context)
        total = len(items)
        frame.event("MapStateStarted", {"length": total})
        tolerant = tolerated_count > 0 or tolerated_pct > 0
        allowed = allowed_failures(total, tolerated_count, tolerated_pct)
        failures = [0]
        trigger: list[StatesError] = []

        def work(i: int, child: Frame) -> Any:
            # ItemSelector's ``$var`` paths read the Map state's own variables.
            token = variables.enter(frame.scope)
            try:
                return iterate(i, child)
            finally:
                variables.leave(token)

        def iterate(i: int, child: Frame) -> Any:
            item = items[i]
            details = {"name": self.name, "index": i}
            child.event("MapIterationStarted", details)
            try:
                item_input = self.item_input(frame, effective, context, i, item)
                result = self.processor.run(child, item_input)
            except StatesError:
                child.event("MapIterationFailed", details)
                raise
            except BaseException:
                child.event("MapIterationAborted", details)
                raise
            child.event("MapIterationSucceeded", details)
            return result

        def judge(outcome: Outcome) -> bool:
            if outcome.ok or outcome.aborted:
                return False
            assert outcome.error is not None
            failures[0] += 1
            # Terminal errors (States.Runtime, DataLimitExceeded) are never tolerated.
            if failures[0] > allowed or not outcome.error.catchable:
                trigger.append(outcome.error)
                return True
            return False

        cap = INLINE_MAP_CONCURRENCY
        bound = cap if concurrency == 0 else min(concurrency, cap)
        outcomes, stopped = run_concurrently(frame, total, bound, work, judge, ramp_up=True)
        if stopped:
            frame.event("MapStateFailed")
            if tolerant and trigger[0].catchable:
                raise StatesError(
                    EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                )
            raise trigger[0]
        frame.event("MapStateSucceeded")
        results: list[Any] = []
        for outcome in outcomes:
            assert outcome is not None
            if outcome.ok:
                results.append(outcome.value)
            else:
                assert outcome.error is not None
                results.append(failure_output(outcome.error))
        return results


def _groups(
    items: list[Any], size: int, max_bytes: int | None, batch_input: Any
) -> list[list[Any]]:
    """Consecutive groups of at most ``size`` items whose batch JSON stays within
    ``max_bytes`` (an item too big on its own still gets a batch of its own)."""
    if max_bytes is None:
        return [items[start : start + size] for start in range(0, len(items), size)]
    # The batch's JSON is its empty form plus each item and the commas between them.
    empty: dict[str, Any] = {} if batch_input is None else {"BatchInput": batch_input}
    base = len(to_json({**empty, "Items": []}).encode())
    groups: list[list[Any]] = []
    current: list[Any] = []
    used = base
    for item in items:
        cost = len(to_json(item).encode()) + (1 if current else 0)
        if current and (len(current) >= size or used + cost > max_bytes):
            groups.append(current)
            current, used, cost = [], base, cost - 1
        current.append(item)
        used += cost
    if current:
        groups.append(current)
    return groups


def allowed_failures(total: int, count: int, pct: float) -> int:
    """Failures allowed before a Map fails (AWS: exceeding either threshold fails it)."""
    allowed = count if count > 0 else (0 if pct <= 0 else total)
    if pct > 0:
        allowed_pct = math.floor(total * pct / 100.0 + 1e-9)
        allowed = min(allowed, allowed_pct) if count > 0 else allowed_pct
    return allowed


def _opt(raw: dict[str, Any], key: str) -> JsonPath | None:
    return compile_path(raw[key]) if key in raw else None


def _sample(path: JsonPath, data: Any) -> Any:
    try:
        return path.find(data)
    except NoMatch as exc:
        raise no_results(path) from exc


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


__all__ = ["MapState", "ParallelState", "allowed_failures", "json_type"]

"""Distributed Map (``ProcessorConfig.Mode: DISTRIBUTED``): a Map Run of child executions.

As on Step Functions, each item (or ItemBatcher batch) is a child workflow execution
of the ItemProcessor, Standard or Express (``ExecutionType``), with its own history,
quotas and context object (``$$.Execution`` is the child's). The parent records only
the Map Run (``MapRunStarted``, ``MapRunSucceeded``/``MapRunFailed``), so its history
stays constant in the number of items; children keep no events in memory.
Items come from the state input or an ``ItemReader``; results go to the state output
or, with a ``ResultWriter``, to files through the execution's ``result_writer`` port.
"""

from __future__ import annotations

import functools
import random
import uuid
from typing import TYPE_CHECKING, Any, Final

from stepdag.asl import item_io, jsonata, payload
from stepdag.asl.errors import (
    EXCEED_TOLERATED_FAILURE_THRESHOLD,
    RUNTIME,
    ExecutionAborted,
    StatesError,
    to_json,
)
from stepdag.asl.paths import compile_path
from stepdag.asl.runtime import Frame
from stepdag.asl.states import query
from stepdag.asl.states.concurrent import DISTRIBUTED_MAP_CONCURRENCY, Outcome, run_concurrently
from stepdag.asl.states.parallel import MapState, allowed_failures, json_type

if TYPE_CHECKING:
    from stepdag.asl.interpreter import ExecutionResult, StateMachine

THRESHOLD_CAUSE: Final = "The specified tolerated failure threshold was exceeded"
_NAMESPACE: Final = uuid.UUID("6f1d3c1e-3b5e-4c1a-9a61-0b6a2f5c7d10")


class _Child:
    """One finished child execution and what the results files say about it."""

    __slots__ = ("input_text", "result", "start", "stop")

    def __init__(self, result: ExecutionResult, input_text: str, start: str, stop: str) -> None:
        self.result = result
        self.input_text = input_text
        self.start = start
        self.stop = stop

    @property
    def ok(self) -> bool:
        return self.result.status == "SUCCEEDED"

    def entry(self, machine_arn: str) -> dict[str, Any]:
        """The child as ``Transformation: NONE`` shows it (and failed children always)."""
        r = self.result
        out: dict[str, Any] = {"ExecutionArn": r.execution_arn}
        if not self.ok:
            out["Error"] = r.error or ""
            out["Cause"] = r.cause or ""
        out["Input"] = self.input_text
        out["InputDetails"] = {"Included": True}
        out["Name"] = r.name
        if self.ok:
            out["Output"] = to_json(r.output)
            out["OutputDetails"] = {"Included": True}
        out["RedriveCount"] = 0
        if self.ok:
            out["RedriveStatus"] = "NOT_REDRIVABLE"
            out["RedriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
        else:
            out["RedriveStatus"] = "REDRIVABLE_BY_MAP_RUN"
        out["StartDate"] = self.start
        out["StateMachineArn"] = machine_arn
        out["Status"] = r.status
        out["StopDate"] = self.stop
        return out


class DistributedMapState(MapState):
    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        super().__init__(name, raw)
        processor: dict[str, Any] = raw.get("ItemProcessor") or raw["Iterator"]
        self.execution_type: str = processor["ProcessorConfig"].get("ExecutionType", "STANDARD")
        self.label: str | None = raw.get("Label")
        self.reader: dict[str, Any] | None = raw.get("ItemReader")
        self.writer: dict[str, Any] | None = raw.get("ResultWriter")
        self._reader_args = self._arguments(self.reader)
        self._writer_args = self._arguments(self.writer)

    def _arguments(self, spec: dict[str, Any] | None) -> Any:
        if spec is None:
            return None
        if self.jsonata:
            return jsonata.compile_template(spec.get("Arguments", {}), "Arguments")
        return payload.compile_template(spec.get("Parameters", {}), self.name, [])

    def _evaluate(self, node: Any, frame: Frame, effective: Any, context: dict[str, Any]) -> Any:
        if self.jsonata:
            return jsonata.evaluate(node, query.bindings(frame, effective, context))
        return payload.evaluate(node, effective, context, frame.execution.rng)

    def _read(self, frame: Frame, effective: Any, context: dict[str, Any]) -> list[Any]:
        assert self.reader is not None
        config: dict[str, Any] = dict(self.reader.get("ReaderConfig") or {})
        max_items = config.get("MaxItems")
        if self.jsonata and jsonata.is_expression(max_items):
            max_items = jsonata.Expression(str(max_items)).evaluate(
                "MaxItems", query.bindings(frame, effective, context)
            )
        elif "MaxItemsPath" in config:
            max_items = self.path_source_value(config["MaxItemsPath"], frame, effective)
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0
        ):
            raise StatesError(
                RUNTIME, f"MaxItems must be a non-negative integer, got: {to_json(max_items)}"
            )
        if max_items == 0:
            max_items = None  # 0 (the default) means no limit
        parameters = self._evaluate(self._reader_args, frame, effective, context)
        return item_io.read_items(
            frame.execution.item_reader, self.reader["Resource"], parameters, config, max_items
        )

    def path_source_value(self, path_text: str, frame: Frame, effective: Any) -> Any:
        path = compile_path(path_text)
        return path.find(self.path_source(path, effective, frame))

    def _child_machine(self, frame: Frame, run_id: str) -> StateMachine:
        owner = frame.execution.owner
        assert owner is not None, "a Distributed Map runs inside a StateMachine execution"
        label = self.label or run_id
        child: StateMachine = owner.child_machine(self.processor, label, self.execution_type)
        return child

    def attempt(self, frame: Frame, data: Any, context: dict[str, Any]) -> Any:
        effective = self.effective_input(data, frame)
        if self.reader is not None:
            items: Any = self._read(frame, effective, context)
        else:
            items = self._items(frame, effective, context)
            if not isinstance(items, list):
                raise StatesError(
                    RUNTIME, f"Map state input must be an array but was: {json_type(items)}"
                )
        concurrency, tolerated_count, tolerated_pct = self.settings(frame, effective, context)
        batched = self.batcher is not None
        if batched:
            # The ASL spec batches the *selected* items: ItemSelector applies per item.
            selected = [
                self.item_input(frame, effective, context, i, v) for i, v in enumerate(items)
            ]
            items = self._batches(frame, selected, effective, context)
        total = len(items)
        execution = frame.execution
        entered = frame.previous_event_id
        run_id = str(uuid.uuid5(_NAMESPACE, f"{context['Execution']['Id']}{frame.key}/{entered}"))
        child_machine = self._child_machine(frame, run_id)
        map_run_arn = (
            f"arn:aws:states:{child_machine.region}:{child_machine.account_id}:mapRun:"
            f"{child_machine.name}:{run_id}"
        )
        frame.event("MapStateStarted", {"length": total})
        frame.event("MapRunStarted", {"mapRunArn": map_run_arn})
        allowed = allowed_failures(total, tolerated_count, tolerated_pct)
        failures = [0]
        kind = "express" if self.execution_type == "EXPRESS" else "execution"
        arn_base = (
            f"arn:aws:states:{child_machine.region}:{child_machine.account_id}:{kind}:"
            f"{child_machine.name}:"
        )
        clock = execution.clock

        def work(i: int, child_frame: Frame) -> _Child:
            from stepdag.asl.interpreter import ExecutionHandle

            item_input = (
                items[i] if batched else self.item_input(frame, effective, context, i, items[i])
            )
            name = str(uuid.uuid5(uuid.UUID(run_id), str(i)))
            seed = random.Random(f"{execution.seed}{frame.key}/{entered}/{i}").getrandbits(63)
            start = clock.now_iso()
            arn = arn_base + name
            stream = execution.on_child_event
            handle = ExecutionHandle(
                child_machine,
                item_input,
                child_of=child_frame,
                name=name,
                execution_id=arn,
                on_event=None if stream is None else functools.partial(stream, arn),
                on_child_event=stream,
                clock=clock,
                task_handler=execution.handler,
                seed=seed,
                item_reader=execution.item_reader,
                result_writer=execution.result_writer,
            )
            result = handle.run_here()
            if child_frame.cancelled:
                raise ExecutionAborted()
            return _Child(result, to_json(item_input), start, clock.now_iso())

        def judge(outcome: Outcome) -> bool:
            if outcome.aborted or outcome.value.ok:
                return False
            failures[0] += 1
            return failures[0] > allowed

        # 0 is AWS's ceiling; one worker thread per child running at once.
        cap = DISTRIBUTED_MAP_CONCURRENCY
        workers = cap if concurrency == 0 else min(concurrency, cap)
        outcomes, stopped = run_concurrently(frame, total, workers, work, judge, ramp_up=True)
        children = [o.value for o in outcomes if o is not None and not o.aborted]
        if stopped:
            if self.writer is not None and "Resource" in self.writer:
                self._write(
                    frame,
                    effective,
                    context,
                    children=children,
                    run=(map_run_arn, run_id, child_machine),
                )
            frame.event(
                "MapRunFailed",
                {"error": EXCEED_TOLERATED_FAILURE_THRESHOLD, "cause": THRESHOLD_CAUSE},
            )
            frame.event("MapStateFailed")
            raise StatesError(EXCEED_TOLERATED_FAILURE_THRESHOLD, THRESHOLD_CAUSE)
        frame.event("MapRunSucceeded")
        output: Any
        if self.writer is not None and "Resource" in self.writer:
            output = self._write(
                frame,
                effective,
                context,
                children=children,
                run=(map_run_arn, run_id, child_machine),
            )
        else:
            output = self._inline_output(children, child_machine.arn)
        frame.event("MapStateSucceeded")
        return output

    def _transformation(self, default: str) -> tuple[str, str]:
        config = (self.writer or {}).get("WriterConfig") or {}
        return config.get("Transformation", default), config.get("OutputType", "JSON")

    def _inline_output(self, children: list[_Child], machine_arn: str) -> list[Any]:
        transformation, _ = self._transformation("COMPACT")
        return _transform(children, machine_arn, transformation)

    def _write(
        self,
        frame: Frame,
        effective: Any,
        context: dict[str, Any],
        *,
        children: list[_Child],
        run: tuple[str, str, StateMachine],
    ) -> dict[str, Any]:
        map_run_arn, run_id, child_machine = run
        transformation, output_type = self._transformation("NONE")
        files = {
            "SUCCEEDED": _transform(
                [c for c in children if c.ok], child_machine.arn, transformation
            ),
            "FAILED": [c.entry(child_machine.arn) for c in children if not c.ok],
        }
        parameters = self._evaluate(self._writer_args, frame, effective, context)
        return item_io.write_results(
            frame.execution.result_writer,
            parameters,
            map_run_arn=map_run_arn,
            map_run_id=run_id,
            files=files,
            output_type=output_type,
        )


def _transform(children: list[_Child], machine_arn: str, transformation: str) -> list[Any]:
    """Results in ``WriterConfig.Transformation`` form; a failed child always in NONE's."""
    out: list[Any] = []
    for child in children:
        if not child.ok or transformation == "NONE":
            out.append(child.entry(machine_arn))
        elif transformation == "FLATTEN" and isinstance(child.result.output, list):
            out.extend(child.result.output)
        else:
            out.append(child.result.output)
    return out


__all__ = ["DistributedMapState"]

"""Shared helpers for the ASL interpreter tests."""

from __future__ import annotations

from typing import Any

from stepdag.asl import ExecutionResult, StateMachine, TaskContext, VirtualClock


def run(
    definition: dict[str, Any],
    input: Any = None,
    handler: Any = None,
    clock: Any = None,
    **kwargs: Any,
) -> ExecutionResult:
    """Execute on a fresh VirtualClock unless one is given."""
    return StateMachine(definition).execute(
        {} if input is None else input,
        task_handler=handler,
        clock=clock or VirtualClock(),
        **kwargs,
    )


def single(state: dict[str, Any], name: str = "S") -> dict[str, Any]:
    """A machine made of one state (``End: true`` added where needed)."""
    spec = dict(state)
    if spec["Type"] in ("Pass", "Task", "Wait", "Parallel", "Map") and "Next" not in spec:
        spec["End"] = True
    return {"StartAt": name, "States": {name: spec}}


def echo(resource: str, parameters: Any, ctx: TaskContext) -> Any:
    return parameters


def types(result: ExecutionResult) -> list[str]:
    return [e.type for e in result.history]

"""Distributed Map: child executions with their own histories, Map Run events, ports."""

from __future__ import annotations

from typing import Any

from tests.unit.asl._util import run, single, types


def _dmap(states: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    execution_type = fields.pop("execution_type", "STANDARD")
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
        "StartAt": next(iter(states)) if states else "P",
        "States": states or {"P": {"Type": "Pass", "End": True}},
    }
    return single({"Type": "Map", "ItemProcessor": processor, **fields}, name="Map")


def test_10000_items_succeed_with_a_constant_parent_history() -> None:
    # Inline, 10,000 iterations need 40,000+ events: past Standard's 25,000 cap. As child
    # executions, each iteration's events are in its own history, not the parent's.
    result = run(_dmap(), list(range(10_000)))
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == list(range(10_000))
    assert types(result) == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]


def test_parent_history_size_does_not_depend_on_item_count() -> None:
    assert len(run(_dmap(), [1]).history) == len(run(_dmap(), list(range(3000))).history)

"""Wording of runtime causes that the conformance corpus does not pin elsewhere."""

from __future__ import annotations

from typing import Any

from ._util import run, single

PREFIX = "An error occurred while executing the state 'M' (entered at the event id #2). "


def _map(extra: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Type": "Map",
        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
        **extra,
    }
    return single(spec, name="M")


def test_nested_items_path_miss_is_rendered_segment_by_segment() -> None:
    result = run(_map({"ItemsPath": "$.a.xs"}), {"a": {}})
    assert result.cause == PREFIX + "Invalid path '$.a.xs' : No results for path: $['a']['xs']"


def test_max_concurrency_path_quotes_a_string_value_once() -> None:
    result = run(_map({"ItemsPath": "$.xs", "MaxConcurrencyPath": "$.m"}), {"m": "x", "xs": [1]})
    assert result.cause == PREFIX + (
        'The MaxConcurrencyPath field refers to value "x" which is not a valid integer: $.m'
    )


def test_max_concurrency_path_miss_is_rendered_segment_by_segment() -> None:
    result = run(_map({"ItemsPath": "$.xs", "MaxConcurrencyPath": "$.c.m"}), {"xs": [1], "c": {}})
    assert result.cause == PREFIX + "Invalid path '$.c.m' : No results for path: $['c']['m']"

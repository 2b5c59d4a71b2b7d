"""Property-based checks of the pure building blocks."""

from __future__ import annotations

import operator
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepdag.asl import payload
from stepdag.asl.choice import compare, string_matches
from stepdag.asl.intrinsics import Env, evaluate, parse_intrinsic

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
numbers = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)
keys = st.text(alphabet="abcdefgh", min_size=1, max_size=5)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)

OPS = {
    "NumericEquals": operator.eq,
    "NumericLessThan": operator.lt,
    "NumericGreaterThan": operator.gt,
    "NumericLessThanEquals": operator.le,
    "NumericGreaterThanEquals": operator.ge,
}


@FAST
@given(st.sampled_from(sorted(OPS)), numbers, numbers)
def test_numeric_comparisons_match_python(op: str, a: float, b: float) -> None:
    assert compare(op, a, b) is OPS[op](a, b)


@FAST
@given(st.text(max_size=8), st.text(max_size=8))
def test_string_order_matches_python(a: str, b: str) -> None:
    assert compare("StringLessThan", a, b) is (a < b)
    assert compare("StringEquals", a, b) is (a == b)


@FAST
@given(st.text(alphabet="ab.?+()[]", max_size=8))
def test_string_matches_without_wildcards_is_equality(s: str) -> None:
    assert string_matches(s, s)
    assert string_matches(s, "*")
    assert string_matches(s + "tail", s + "*")


@FAST
@given(st.dictionaries(keys, json_values, min_size=1, max_size=5))
def test_parameters_select_each_field(doc: dict[str, Any]) -> None:
    template = {f"{k}.$": f"$.{k}" for k in doc}
    problems: list[str] = []
    node = payload.compile_template({"wrapped": template, "const": [1]}, "P", problems)
    assert problems == []
    out = payload.evaluate(node, doc, {}, random.Random(0))
    assert out == {"wrapped": doc, "const": [1]}


@FAST
@given(st.lists(json_values, max_size=6), st.integers(1, 4))
def test_array_partition_roundtrip(items: list[Any], size: int) -> None:
    env = Env({"a": items, "n": size}, {}, random.Random(0))
    chunks = evaluate(parse_intrinsic("States.ArrayPartition($.a, $.n)"), env)
    assert [x for chunk in chunks for x in chunk] == items
    assert all(len(c) == size for c in chunks[:-1])


@FAST
@given(json_values)
def test_json_to_string_and_back(value: Any) -> None:
    env = Env({"v": value}, {}, random.Random(0))
    assert evaluate(parse_intrinsic("States.StringToJson(States.JsonToString($.v))"), env) == value

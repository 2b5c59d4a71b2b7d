"""JSONPath evaluation and reference-path updates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepdag.asl.paths import (
    NoMatch,
    PathSyntaxError,
    compile_path,
    compile_reference_path,
    describe_no_results,
)

DOC = {
    "a": {"b": [1, 2, 3], "c": "x"},
    "items": [
        {"id": 1, "price": 5, "tags": ["t1"]},
        {"id": 2, "price": 15, "tags": []},
        {"id": 3, "price": 25},
    ],
    "weird key": {"x.y": 7},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.a.c", "x"),
        ("$.a.b[0]", 1),
        ("$.a.b[-1]", 3),
        ("$['weird key']['x.y']", 7),
        ('$["a"]["c"]', "x"),
        ("$.items[1].id", 2),
    ],
)
def test_definite_paths(path: str, expected: object) -> None:
    compiled = compile_path(path)
    assert compiled.definite
    assert compiled.find(DOC) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.items[*].id", [1, 2, 3]),
        ("$.items[0:2].id", [1, 2]),
        ("$.items[::2].id", [1, 3]),
        ("$.a.b[1:]", [2, 3]),
        ("$.items[0,2].id", [1, 3]),
        ("$..price", [5, 15, 25]),
        ("$.items[?(@.price > 10)].id", [2, 3]),
        ("$.items[?(@.price >= 15 && @.id != 3)].id", [2]),
        ("$.items[?(@.price < 10 || @.id == 3)].id", [1, 3]),
        ("$.items[?(@.tags)].id", [1, 2]),
        ("$.items[?(@.id == $.a.b[0])].price", [5]),
        ("$.a.*", [[1, 2, 3], "x"]),
        ("$.items[*].nope", []),
        ("$.items[?(@.price > 100)]", []),
    ],
)
def test_indefinite_paths_return_lists(path: str, expected: object) -> None:
    compiled = compile_path(path)
    assert not compiled.definite
    assert compiled.find(DOC) == expected


def test_indefinite_path_ending_in_index_unwraps_single_value() -> None:
    assert compile_path("$.items[*].tags[0]").find(DOC) == "t1"


@pytest.mark.parametrize("path", ["$.nope", "$.a.b[7]", "$.a.c.d", "$.a.b.x", "$.items[-9]"])
def test_definite_no_match_raises(path: str) -> None:
    with pytest.raises(NoMatch):
        compile_path(path).find(DOC)


def test_length_function_is_not_supported() -> None:
    # Like Step Functions: "length()" is looked up as a plain property name.
    with pytest.raises(NoMatch):
        compile_path("$.a.b.length()").find(DOC)
    assert compile_path("$.length()").find({"length()": 1}) == 1


def test_null_value_is_a_match() -> None:
    assert compile_path("$.x").find({"x": None}) is None


@pytest.mark.parametrize(
    "bad", ["a.b", "", "$.", "$[", "$[abc]", "$.a[1:2:0]", "$.a..", "$[?(@.a >)]"]
)
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(PathSyntaxError):
        compile_path(bad)


def test_context_paths() -> None:
    path = compile_path("$$.Execution.Id")
    assert path.context
    assert path.find({"Execution": {"Id": "e"}}) == "e"


def test_reference_paths_reject_operators() -> None:
    assert compile_reference_path("$.a['b'][0]").is_reference
    for bad in ("$.a[*]", "$..a", "$.a[0:1]", "$$.Execution", "$.a[?(@.x)]"):
        with pytest.raises(PathSyntaxError):
            compile_reference_path(bad)


def test_set_creates_missing_objects_and_copies_only_the_spine() -> None:
    shared = {"deep": [1]}
    doc = {"keep": shared, "a": {"x": 1}}
    out = compile_path("$.a.b.c").set(doc, 42)
    assert out == {"keep": {"deep": [1]}, "a": {"x": 1, "b": {"c": 42}}}
    assert doc == {"keep": shared, "a": {"x": 1}}  # input untouched
    assert out["keep"] is shared  # unrelated subtree not copied


def test_set_root_replaces() -> None:
    assert compile_path("$").set({"a": 1}, 5) == 5


def test_set_into_array_index() -> None:
    assert compile_path("$.a[1]").set({"a": [1, 2]}, "x") == {"a": [1, "x"]}


@pytest.mark.parametrize(
    ("doc", "path"),
    [("abc", "$.x"), ([1, 2], "$.x"), ({"x": 5}, "$.x.y"), ({"a": [1]}, "$.a[3]")],
)
def test_set_failures(doc: object, path: str) -> None:
    with pytest.raises(NoMatch):
        compile_path(path).set(doc, 1)


def test_describe_no_results() -> None:
    assert describe_no_results("$.a.b[0]") == "$['a']['b'][0]"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.text(alphabet="abcxyz", min_size=1, max_size=4),
        st.integers() | st.text(max_size=3) | st.none(),
        max_size=5,
    ),
    st.text(alphabet="abcxyz", min_size=1, max_size=4),
)
def test_set_then_find_roundtrip(doc: dict[str, object], key: str) -> None:
    path = compile_path(f"$.{key}")
    out = path.set(doc, {"v": 1})
    assert path.find(out) == {"v": 1}
    assert {k: v for k, v in out.items() if k != key} == {k: v for k, v in doc.items() if k != key}

"""States.* intrinsic functions: parsing, evaluation, errors, and use in Parameters."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from typing import Any

import pytest

from stepdag.asl import AslDefinitionError, StatesError
from stepdag.asl.intrinsics import Env, IntrinsicSyntaxError, evaluate, parse_intrinsic

from ._util import run, single

DATA = {
    "name": "World",
    "n": 3,
    "arr": [1, 2, 2, 3, 1],
    "obj": {"a": 1},
    "s": "a,b;;c",
    "json": '{"k":[1,2]}',
    "nested": {"x": {"y": "deep"}},
}


def ev(expr: str, data: Any = None, context: Any = None, seed: int = 1) -> Any:
    return evaluate(
        parse_intrinsic(expr),
        Env(DATA if data is None else data, context or {}, random.Random(seed)),
    )


def fails(expr: str, data: Any = None) -> StatesError:
    with pytest.raises(StatesError) as info:
        ev(expr, data)
    return info.value


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("States.Format('Hello, {}!', $.name)", "Hello, World!"),
        ("States.Format('{} + {} = {}', 1, 2.5, true)", "1 + 2.5 = true"),
        ("States.Format('null is {}', null)", "null is null"),
        ("States.Format('obj {} arr {}', $.obj, $.arr)", "obj {a=1} arr [1, 2, 2, 3, 1]"),
        (r"States.Format('escaped \{\} and {}', 'x')", "escaped {} and x"),
        (r"States.Format('it\'s {}', $.n)", "it's 3"),
        (r"States.Format('back\\slash {}', 'y')", "back\\slash y"),
        ("States.Format('no placeholders')", "no placeholders"),
        ("States.StringToJson($.json)", {"k": [1, 2]}),
        ("States.JsonToString($.obj)", '{"a":1}'),
        ("States.Array(1, 'two', $.obj, States.Array())", [1, "two", {"a": 1}, []]),
        ("States.Array()", []),
        ("States.ArrayPartition($.arr, 2)", [[1, 2], [2, 3], [1]]),
        ("States.ArrayPartition(States.Array(), 3)", []),
        ("States.ArrayContains($.arr, 3)", True),
        ("States.ArrayContains($.arr, 9)", False),
        ("States.ArrayContains(States.Array(true), 1)", False),
        ("States.ArrayContains(States.Array('true', 'x'), true)", True),
        ("States.ArrayContains(States.Array('42'), 42)", True),
        ("States.ArrayContains(States.Array(0, 1), false)", False),
        ("States.ArrayContains(States.Array(1, null), null)", True),
        ("States.ArrayContains(States.Array(States.Array(0)), States.Array(0))", True),
        ("States.ArrayContains(States.Array($.obj), States.StringToJson('{\"a\":1}'))", True),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(1, 1, 1)", [1]),
        ("States.ArrayRange(1, 0, 1)", []),
        ("States.ArrayGetItem($.arr, 3)", 3),
        ("States.ArrayLength($.arr)", 5),
        ("States.ArrayUnique($.arr)", [1, 2, 3]),
        ("States.ArrayUnique(States.Array(1, true, 1))", [1, True]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        (
            'States.JsonMerge($.obj, States.StringToJson(\'{"b":2,"a":3}\'), false)',
            {"a": 3, "b": 2},
        ),
        ("States.MathAdd(111, -1)", 110),
        ("States.MathAdd($.n, 2.0)", 5),
        ("States.StringSplit($.s, ',;')", ["a", "b", "c"]),
        ("States.StringSplit('a b', ' ')", ["a", "b"]),
        ("States.ArrayLength(States.StringSplit('1,2,3', ','))", 3),
        ("States.Format('{}', States.ArrayGetItem(States.Array('a', 'b'), 1))", "b"),
        ("States.Format('{}', $.nested.x.y)", "deep"),
        ("States.Format('{}', $$.Execution.Name)", "exec-1"),
    ],
)
def test_evaluation(expr: str, expected: Any) -> None:
    assert ev(expr, context={"Execution": {"Name": "exec-1"}}) == expected


@pytest.mark.parametrize("algo", ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_hash(algo: str) -> None:
    name = {"MD5": "md5", "SHA-1": "sha1"}.get(algo, algo.replace("-", "").lower())
    assert (
        ev(f"States.Hash('input data', '{algo}')") == hashlib.new(name, b"input data").hexdigest()
    )


def test_hash_of_a_number_or_object_hashes_its_json_text() -> None:
    assert ev("States.Hash(123, 'MD5')") == hashlib.md5(b"123").hexdigest()
    assert ev("States.Hash($.obj, 'SHA-1')") == hashlib.sha1(b'{"a":1}').hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" YWJjZA== ", "abcd"),  # surrounding spaces skipped
        ("YWJj\nZA==", "abcd"),  # line breaks skipped (MIME)
        ("!!YWJjZA==", "abcd"),  # characters outside the alphabet skipped
        ("YWJjZA", "abcd"),  # missing padding
        ("YWJjZA==ignored", "abcd"),  # '=' ends the data
        ("", ""),
    ],
)
def test_base64_decode_is_lenient_like_a_mime_decoder(text: str, expected: str) -> None:
    assert ev("States.Base64Decode($.s)", {"s": text}) == expected


def test_base64_decode_of_bytes_that_are_not_utf8_replaces_them() -> None:
    assert ev("States.Base64Decode('/w==')", {}) == "\ufffd"


def test_base64_roundtrip_unicode() -> None:
    encoded = ev("States.Base64Encode('héllo')")
    assert base64.b64decode(encoded).decode() == "héllo"
    assert ev(f"States.Base64Decode('{encoded}')") == "héllo"


def test_uuid_is_v4_and_seeded() -> None:
    a = ev("States.UUID()", seed=7)
    b = ev("States.UUID()", seed=7)
    assert a == b
    assert uuid.UUID(a).version == 4
    assert ev("States.UUID()", seed=8) != a


def test_math_random_bounds_and_seed() -> None:
    # The end is exclusive (AWS: "start number (inclusive) and end number (exclusive)").
    values = {ev("States.MathRandom(1, 3)", seed=s) for s in range(50)}
    assert values == {1, 2}
    assert ev("States.MathRandom(1, 1000, 42)") == ev("States.MathRandom(1, 1000, 42)", seed=99)


def test_array_range_limit() -> None:
    assert len(ev("States.ArrayRange(1, 1000, 1)")) == 1000
    err = fails("States.ArrayRange(1, 1001, 1)")
    assert err.error == "States.Runtime"
    assert err.cause == "Invalid arguments in States.ArrayRange"


@pytest.mark.parametrize(
    "expr",
    [
        "States.ArrayGetItem($.arr, 5)",
        "States.ArrayGetItem($.arr, -1)",
        "States.ArrayGetItem($.obj, 0)",
        "States.ArrayLength($.name)",
        "States.ArrayPartition($.arr, 0)",
        "States.ArrayRange(1, 5, 0)",
        "States.ArrayRange(1, 'x', 1)",
        "States.MathAdd(2147483647, 1)",
        "States.MathAdd(3000000000, 0)",
        "States.MathAdd(true, 1)",
        "States.MathAdd(null, 1)",
        "States.MathRandom(1, 1)",
        "States.MathRandom(1.4, 1.6)",
        "States.MathRandom(1, 10, null)",
        "States.ArrayPartition($.arr, 0.6)",
        "States.ArrayPartition($.arr, -1)",
        "States.ArrayPartition($.arr, '2')",
        "States.ArrayRange(1, 10, 0.49)",
        "States.ArrayRange(1001, 1, -1)",
        "States.Format('Hello {', 'x')",
        "States.Format('}')",
        "States.Format('Hello {{}}', 'x')",
        "States.MathAdd('1', 1)",
        "States.MathRandom(5, 1)",
        "States.StringToJson('{bad')",
        "States.StringToJson($.n)",
        "States.Base64Decode('A')",
        "States.Base64Decode($.n)",
        "States.Hash('x', 'SHA-999')",
        "States.Hash('x', 'sha-256')",
        "States.Hash('x', 123)",
        "States.JsonMerge($.obj, $.obj, true)",
        "States.JsonMerge($.arr, $.obj, false)",
        "States.Format('{} {}', 1)",
        "States.Format('{}', 1, 2)",
        "States.StringSplit($.n, ',')",
    ],
)
def test_runtime_failures_are_intrinsic_failure(expr: str) -> None:
    err = fails(expr)
    assert err.error == "States.Runtime"
    name = expr.split("(", 1)[0]
    assert err.cause == f"Invalid arguments in {name}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # MathAdd rounds to the nearest integer (Java Math.round: halves go up).
        ("States.MathAdd(1.6, 2.7)", 5),
        ("States.MathAdd(0.1, 0.2)", 0),
        ("States.MathAdd(1.5, 1)", 3),
        ("States.MathAdd(-1.5, 0)", -1),
        ("States.MathAdd(2147483646, 1)", 2147483647),
        ("States.MathAdd(-2147483647, -1)", -2147483648),
        # ArrayRange/ArrayPartition truncate, and ranges count down with a negative step.
        ("States.ArrayRange(1.4, 5.6, 2.2)", [1, 3, 5]),
        ("States.ArrayRange(1.6, 1.4, 1)", [1]),
        ("States.ArrayRange(5.4, -0.6, -2.4)", [5, 3, 1]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayRange(3, 3, -1)", [3]),
        ("States.ArrayRange(5, 1, 1)", []),
        ("States.ArrayRange(1, 5, -1)", []),
        ("States.ArrayPartition(States.Array(1, 2, 3, 4, 5), 2.6)", [[1, 2], [3, 4], [5]]),
        ("States.ArrayPartition(States.Array(1, 2, 3), 2147483647)", [[1, 2, 3]]),
        ("States.MathRandom(1.6, 2.4)", 1),
        ("States.ArrayGetItem(States.Array(10, 20, 30), 1.2)", 20),
        ("States.ArrayGetItem(States.Array(), 999)", None),
    ],
)
def test_numeric_arguments_as_step_functions_treats_them(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_array_range_counts_down_to_the_1000_item_limit() -> None:
    values = ev("States.ArrayRange(1000, 1, -1)")
    assert (len(values), values[0], values[-1]) == (1000, 1000, 1)


def test_string_input_length_limit() -> None:
    err = fails("States.Base64Encode($.big)", {"big": "x" * 10001})
    assert err.error == "States.Runtime"


def test_missing_path_argument_is_runtime_error() -> None:
    err = fails("States.Format('{}', $.missing)")
    assert err.error == "States.Runtime"


@pytest.mark.parametrize(
    "bad",
    [
        "States.Nope(1)",
        "States.Format(",
        "States.Format('unterminated)",
        "States.ArrayLength()",
        "States.ArrayLength(1, 2)",
        "States.UUID(1)",
        "States.MathRandom(1)",
        "States.Array(1 2)",
        "States.Array(1) trailing",
        "States.Array(@)",
    ],
)
def test_parse_errors(bad: str) -> None:
    with pytest.raises(IntrinsicSyntaxError):
        parse_intrinsic(bad)


def test_intrinsics_in_parameters_and_result_selector() -> None:
    def handler(resource: str, params: Any, ctx: Any) -> Any:
        return {"items": params["items"], "n": 2}

    result = run(
        single(
            {
                "Type": "Task",
                "Resource": "r",
                "Parameters": {
                    "items.$": "States.ArrayPartition(States.ArrayRange(1, 5, 1), $.size)",
                    "literal": "States.Format('not evaluated without .$')",
                },
                "ResultSelector": {
                    "count.$": "States.ArrayLength($.items)",
                    "sum.$": "States.MathAdd($.n, 40)",
                },
            }
        ),
        {"size": 2},
        handler,
    )
    assert result.status == "SUCCEEDED"
    assert result.output == {"count": 3, "sum": 42}


def test_intrinsic_failure_is_a_runtime_error_not_caught_by_all() -> None:
    # Step Functions reports a failing intrinsic as States.Runtime (observed behaviour,
    # recorded by LocalStack against AWS); States.ALL does not catch States.Runtime.
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "r",
                "ResultSelector": {"x.$": "States.ArrayGetItem($.list, 10)"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    result = run(definition, {}, lambda r, p, c: {"list": [1]})
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"


def test_invalid_intrinsic_rejected_at_load() -> None:
    with pytest.raises(AslDefinitionError) as info:
        run(single({"Type": "Pass", "Parameters": {"x.$": "States.Bogus()"}}))
    assert str(info.value).endswith(" at /States/S/Parameters/x.$")


def test_missing_path_argument_names_the_field() -> None:
    result = run(
        single({"Type": "Pass", "Parameters": {"r.$": "States.Format('{}', $.nope)"}}, "A"),
        {"a": 1},
    )
    assert result.error == "States.Runtime"
    assert result.cause == (
        "An error occurred while executing the state 'A' (entered at the event id #2). "
        "The JSONPath '$.nope' specified for the field 'r.$' could not be found in the input "
        "'{\"a\":1}'"
    )

"""Measure the JSONata libraries on PyPI for the local engine: correctness and speed.

Run: ``PYTHONPATH=functions .venv/bin/python -m benchmarks.jsonata_libraries``.
Each case is (expression, input, bindings, expected) from the JSONata reference
(docs.jsonata.org) or the Step Functions developer guide; a library passes a case
when it returns the expected JSON value (``int`` and ``float`` compared as JSON
numbers, so ``2`` and ``2.0`` are the same; Step Functions prints ``2``). A
library that is not importable is reported as missing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

UNDEFINED = "<undefined>"
ERROR = "<error>"

ACCOUNT = {
    "Account": {
        "Order": [
            {
                "OrderID": "order103",
                "Product": [
                    {"Name": "Bowler Hat", "Price": 34.45, "Quantity": 2},
                    {"Name": "Trilby hat", "Price": 21.67, "Quantity": 1},
                ],
            },
            {
                "OrderID": "order104",
                "Product": [
                    {"Name": "Bowler Hat", "Price": 34.45, "Quantity": 4},
                    {"Name": "Cloak", "Price": 107.99, "Quantity": 1},
                ],
            },
        ]
    }
}

CASES: list[tuple[str, Any, dict[str, Any], Any]] = [
    # Step Functions developer guide (transforming-data, workflow-variables)
    ("$states.input.title", None, {"states": {"input": {"title": "Doctor"}}}, "Doctor"),
    ("$states.input.a + 1", None, {"states": {"input": {"a": 1}}}, 2),
    (
        "{'static': 'Hello', 'name': $customerName}",
        None,
        {"customerName": "María"},
        {"static": "Hello", "name": "María"},
    ),
    ("$sum($states.input.prices)", None, {"states": {"input": {"prices": [1, 2.5, 3]}}}, 6.5),
    ("$count($states.input.items) > 2", None, {"states": {"input": {"items": [1, 2, 3]}}}, True),
    (
        "$states.input.customer.name & ' ' & $states.input.customer.surname",
        None,
        {"states": {"input": {"customer": {"name": "Ada", "surname": "Lovelace"}}}},
        "Ada Lovelace",
    ),
    (
        "$states.input.orders[price > 10].id",
        None,
        {"states": {"input": {"orders": [{"id": 1, "price": 5}, {"id": 2, "price": 20}]}}},
        2,
    ),
    ("$string($states.input.n)", None, {"states": {"input": {"n": 5}}}, "5"),
    ("$number('42')", None, {}, 42),
    ("$uppercase('abc')", None, {}, "ABC"),
    ("$split('a,b,c', ',')", None, {}, ["a", "b", "c"]),
    ("$join(['a','b'], '-')", None, {}, "a-b"),
    ("$merge([{'a':1},{'b':2}])", None, {}, {"a": 1, "b": 2}),
    ("$keys({'a':1,'b':2})", None, {}, ["a", "b"]),
    ("$exists($states.input.missing)", None, {"states": {"input": {}}}, False),
    ("$states.input.missing", None, {"states": {"input": {}}}, UNDEFINED),
    ("( $x := 3; $x * $x )", None, {}, 9),
    ("[1..5]", None, {}, [1, 2, 3, 4, 5]),
    ("$map([1,2,3], function($v) { $v * 2 })", None, {}, [2, 4, 6]),
    ("$filter([1,2,3,4], function($v) { $v % 2 = 0 })", None, {}, [2, 4]),
    ("$reduce([1,2,3,4], function($a, $b) { $a + $b })", None, {}, 10),
    ("$sort([3,1,2])", None, {}, [1, 2, 3]),
    ("$append([1,2], [3])", None, {}, [1, 2, 3]),
    ("$lookup({'a': 1}, 'a')", None, {}, 1),
    ("$type(null)", None, {}, "null"),
    ("true ? 'yes' : 'no'", None, {}, "yes"),
    ("10 / 4", None, {}, 2.5),
    ("7 % 3", None, {}, 1),
    ("$round(2.5)", None, {}, 2),
    ("$round(3.14159, 2)", None, {}, 3.14),
    ("$floor(-1.5)", None, {}, -2),
    ("$abs(-3)", None, {}, 3),
    ("$power(2, 10)", None, {}, 1024),
    ("$sqrt(16)", None, {}, 4),
    ("$substring('Hello World', 3, 5)", None, {}, "lo Wo"),
    ("$substringBefore('Hello World', ' ')", None, {}, "Hello"),
    ("$trim('  a  b ')", None, {}, "a b"),
    ("$pad('x', 3, '#')", None, {}, "x##"),
    ("$contains('abcdef', 'cd')", None, {}, True),
    ("$replace('a-b-c', '-', '+')", None, {}, "a+b+c"),
    ("$match('ab12', /[0-9]+/).match", None, {}, "12"),
    ("$base64encode('hello')", None, {}, "aGVsbG8="),
    ("$base64decode('aGVsbG8=')", None, {}, "hello"),
    ("$formatNumber(1234.5, '#,##0.00')", None, {}, "1,234.50"),
    ("$formatBase(255, 16)", None, {}, "ff"),
    ("$toMillis('2024-01-01T00:00:00.000Z')", None, {}, 1704067200000),
    ("$fromMillis(0)", None, {}, "1970-01-01T00:00:00.000Z"),
    ("$distinct([1,1,2])", None, {}, [1, 2]),
    ("$reverse([1,2,3])", None, {}, [3, 2, 1]),
    ("$zip([1,2],[3,4])", None, {}, [[1, 3], [2, 4]]),
    ("$spread({'a':1,'b':2})", None, {}, [{"a": 1}, {"b": 2}]),
    ("$each({'a':1}, function($v, $k) { $k & '=' & $v })", None, {}, "a=1"),
    ("$sift({'a':1,'b':2}, function($v) { $v > 1 })", None, {}, {"b": 2}),
    ("$boolean('')", None, {}, False),
    ("$not(false)", None, {}, True),
    ("'a' in ['a','b']", None, {}, True),
    # JSONata reference: path navigation on the Account document
    ("Account.Order[0].OrderID", ACCOUNT, {}, "order103"),
    (
        "Account.Order.Product.Name",
        ACCOUNT,
        {},
        ["Bowler Hat", "Trilby hat", "Bowler Hat", "Cloak"],
    ),
    ("$sum(Account.Order.Product.(Price * Quantity))", ACCOUNT, {}, 336.36),
    ("Account.Order.Product[Price > 30].Name", ACCOUNT, {}, ["Bowler Hat", "Bowler Hat", "Cloak"]),
    (
        "Account.Order{OrderID: $sum(Product.(Price*Quantity))}",
        ACCOUNT,
        {},
        {"order103": 90.57, "order104": 245.79},
    ),
    ("(Account.Order.Product^(>Price).Name)[0]", ACCOUNT, {}, "Cloak"),
    ("Account.Order[-1].OrderID", ACCOUNT, {}, "order104"),
    ("$count(Account.Order.Product)", ACCOUNT, {}, 4),
    (
        "Account.Order.Product{Name: Quantity}",
        ACCOUNT,
        {},
        {"Bowler Hat": [2, 4], "Trilby hat": 1, "Cloak": 1},
    ),
    ("Account.Order.Product.$string(Price)", ACCOUNT, {}, ["34.45", "21.67", "34.45", "107.99"]),
    ("$max(Account.Order.Product.Price)", ACCOUNT, {}, 107.99),
    ("$average([1,2,3,4])", None, {}, 2.5),
    ("Account.Order#$i.Product.{'i': $i, 'n': Name}[0]", ACCOUNT, {}, {"i": 0, "n": "Bowler Hat"}),
    ("Account ~> |Order|{'x': 1}, ['Product']| ~> $keys()", ACCOUNT, {}, "Order"),
    ("$string({'a': [1, 2.5, 'x']})", None, {}, '{"a":[1,2.5,"x"]}'),
    ("$string(1e21)", None, {}, "1e+21"),
    ("$string(0.1 + 0.2)", None, {}, "0.3"),  # JSONata prints 15 significant digits
    ("$string(1/3)", None, {}, "0.333333333333333"),
    (
        "$fromMillis(1510067557121, '[M01]/[D01]/[Y0001] [h#1]:[m01][P]')",
        None,
        {},
        "11/07/2017 3:12pm",
    ),
    ("$formatInteger(2024, 'w')", None, {}, "two thousand and twenty-four"),
    ("$states.input.a + 'x'", None, {"states": {"input": {"a": 1}}}, ERROR),
    ("$undefinedFunction(1)", None, {}, ERROR),
    ("$single([1,2])", None, {}, ERROR),
    ("$number('0x1F')", None, {}, 31),
]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or _num_eq(a, b)


def _num_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) < 1e-9
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return False


Evaluator = Callable[[str, Any, dict[str, Any]], Any]


def _jsonata_python() -> tuple[Evaluator, Callable[[str], Callable[[Any, dict[str, Any]], Any]]]:
    import jsonata

    def compile_(expr: str) -> Callable[[Any, dict[str, Any]], Any]:
        compiled = jsonata.Jsonata(expr)
        return compiled.evaluate

    return (lambda e, d, b: compile_(e)(d, b)), compile_


def _jsonatapy() -> tuple[Evaluator, Callable[[str], Callable[[Any, dict[str, Any]], Any]]]:
    import jsonatapy

    def compile_(expr: str) -> Callable[[Any, dict[str, Any]], Any]:
        compiled = jsonatapy.compile(expr)
        return compiled.evaluate

    return (lambda e, d, b: compile_(e)(d, b)), compile_


def _jlens() -> tuple[Evaluator, Callable[[str], Callable[[Any, dict[str, Any]], Any]]]:
    import jlens

    def compile_(expr: str) -> Callable[[Any, dict[str, Any]], Any]:
        compiled = jlens.Expression(expr)
        return compiled.evaluate

    return (lambda e, d, b: compile_(e)(d, b)), compile_


def _jsonata_rs() -> tuple[Evaluator, Callable[[str], Callable[[Any, dict[str, Any]], Any]]]:
    # jsonata-rs installs a top-level ``jsonata`` package too (it clashes with
    # jsonata-python); measure it from a separate --target directory.
    sys.path.insert(0, "/tmp/jrs")
    saved = {k: v for k, v in sys.modules.items() if k == "jsonata" or k.startswith("jsonata.")}
    for k in saved:
        del sys.modules[k]
    try:
        import jsonata as jrs

        mod = jrs
    finally:
        sys.path.remove("/tmp/jrs")
        for k in [k for k in sys.modules if k == "jsonata" or k.startswith("jsonata.")]:
            del sys.modules[k]
        sys.modules.update(saved)

    def compile_(expr: str) -> Callable[[Any, dict[str, Any]], Any]:
        compiled = mod.Jsonata(expr)
        compiled.set_output_convert_nulls(False)
        undefined = mod.UNDEFINED

        def run(data: Any, bindings: dict[str, Any]) -> Any:
            out = compiled.evaluate(data, bindings)
            return None if out is undefined else out

        return run

    return (lambda e, d, b: compile_(e)(d, b)), compile_


LIBRARIES = {
    "jsonata-python 0.7.1": _jsonata_python,
    "jsonatapy 2.2.13": _jsonatapy,
    "jlens 0.25.0": _jlens,
    "jsonata-rs 0.1.4": _jsonata_rs,
}

SPEED_CASES = [
    ("$states.input.a + 1", {"states": {"input": {"a": 1}}}),
    (
        "{'id': $states.input.id, 'total': $sum($states.input.items.price)}",
        {"states": {"input": {"id": "x", "items": [{"price": p} for p in range(20)]}}},
    ),
    (
        "$states.input.items[price > 10].name",
        {"states": {"input": {"items": [{"name": str(p), "price": p} for p in range(20)]}}},
    ),
    (
        "$map($states.input.xs, function($v) { $v * 2 })",
        {"states": {"input": {"xs": list(range(50))}}},
    ),
]


def _timeit(fn: Callable[[], Any], budget: float = 0.3) -> float:
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            return elapsed / n


def main() -> None:
    for label, factory in LIBRARIES.items():
        try:
            evaluate, compile_ = factory()
        except ImportError as exc:
            print(f"{label}: not importable ({exc})")
            continue
        passed, failures = 0, []
        for expr, data, bindings, expected in CASES:
            try:
                got = evaluate(expr, data, bindings)
            except Exception as exc:
                if expected == ERROR:
                    passed += 1
                    continue
                got = f"<error {type(exc).__name__}: {str(exc)[:60]}>"
            if expected == ERROR:
                ok = False
            elif expected == UNDEFINED:
                ok = got is None
            else:
                ok = _same(got, expected)
            passed += ok
            if not ok:
                failures.append(f"    {expr!r}: expected {expected!r}, got {got!r}")
        timings = []
        for expr, bindings in SPEED_CASES:
            run = compile_(expr)
            timings.append(_timeit(lambda run=run, bindings=bindings: run(None, bindings)) * 1e6)
        compile_cost = _timeit(lambda: compile_("{'id': $states.input.id, 'n': $count($x)}")) * 1e6
        print(
            f"{label}: {passed}/{len(CASES)} correct; eval µs per expression "
            f"{', '.join(f'{t:.1f}' for t in timings)}; compile {compile_cost:.1f} µs"
        )
        for line in failures:
            print(line)


if __name__ == "__main__":
    main()

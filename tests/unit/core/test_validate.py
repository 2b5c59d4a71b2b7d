"""Validation: every problem at once, each naming workflow, node and parameter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import BaseModel

from stepdag import DagValidationError, Retry, Workflow


class A(BaseModel):
    x: int


class B(BaseModel):
    y: str


def problems(wf: Workflow) -> list[str]:
    with pytest.raises(DagValidationError) as info:
        wf.build()
    return [str(p) for p in info.value.problems]


def test_valid_workflow_builds() -> None:
    wf = Workflow("ok")

    @wf.node
    def a(params: A) -> list[A]:
        return [params]

    @wf.node(map_over="a")
    def b(a: A) -> B:
        return B(y=str(a.x))

    @wf.node
    def c(b: list[B]) -> int:
        return len(b)

    dag = wf.build()
    assert list(dag.nodes) == ["a", "b", "c"]
    assert dag.preds == {"a": (), "b": ("a",), "c": ("b",)}
    assert dag.sinks == ("c",)


def test_cycle_is_printed_in_flow_order() -> None:
    wf = Workflow("cyc")

    @wf.node
    def a(c: int) -> int:
        return c

    @wf.node
    def b(a: int) -> int:
        return a

    @wf.node
    def c(b: int) -> int:
        return b

    (msg,) = problems(wf)
    assert "[cycle]" in msg and "workflow 'cyc'" in msg
    # a feeds b feeds c feeds a, whichever node the walk starts from
    assert any(cyc in msg for cyc in ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"))


def test_missing_dependency_names_node_and_parameter() -> None:
    wf = Workflow("missing")

    @wf.node
    def a() -> int:
        return 1

    @wf.node
    def b(nope: int) -> int:
        return nope

    (msg,) = problems(wf)
    assert "node 'b'" in msg and "parameter 'nope'" in msg and "known nodes: a, b" in msg


def test_type_mismatch_names_both_sides() -> None:
    wf = Workflow("types")

    @wf.node
    def a() -> A:
        return A(x=1)

    @wf.node
    def b(a: B) -> int:
        return 1

    (msg,) = problems(wf)
    assert "[type-mismatch]" in msg
    assert "node 'b', parameter 'a'" in msg and "expects B but upstream 'a' returns A" in msg


def test_duplicate_node() -> None:
    wf = Workflow("dup")

    def one() -> int:
        return 1

    wf.add_node("a", one)
    wf.add_node("a", one)
    (msg,) = problems(wf)
    assert "[duplicate-node]" in msg and "node 'a'" in msg and "defined twice" in msg


def test_all_problems_reported_together() -> None:
    wf = Workflow("bad name!")

    @wf.node(retry=Retry(max_attempts=0, interval=0, backoff_rate=0.5), timeout=0)
    def params() -> int:  # reserved name
        return 1

    @wf.node(map_over="b2", after=["ghost"])
    def m(x: int) -> int:
        return x

    @wf.node(map_over="one")
    def each(one: int) -> int:
        return one

    @wf.node
    def one() -> int:
        return 1

    found = problems(wf)
    text = "\n".join(found)
    for expected in (
        "[workflow-name]",
        "[node-name] workflow 'bad name!', node 'params'",
        "retry.max_attempts must be between 1 and 100",
        "retry.interval must be a whole number",
        "retry.backoff_rate must be >= 1.0",
        "timeout must be a whole number of seconds >= 1",
        "after= names unknown node 'ghost'",
        "map_over names unknown node 'b2'",
        "[unresolved-parameter] workflow 'bad name!', node 'm', parameter 'x'",
        "map_over='one' needs a list, but 'one' returns int",
    ):
        assert expected in text, (expected, text)
    assert len(found) >= 9


def test_map_over_item_type_checked() -> None:
    wf = Workflow("maptypes")

    @wf.node
    def src() -> list[A]:
        return []

    @wf.node(map_over="src")
    def each(src: B) -> int:
        return 1

    (msg,) = problems(wf)
    assert "expects B but upstream 'src' returns A (one item per map run)" in msg


def test_map_node_output_is_a_list_downstream() -> None:
    wf = Workflow("mapout")

    @wf.node
    def src() -> list[int]:
        return [1]

    @wf.node(map_over="src")
    def each(src: int) -> str:
        return str(src)

    @wf.node
    def wrong(each: str) -> int:
        return 1

    (msg,) = problems(wf)
    assert "expects str but upstream 'each' returns list[str]" in msg


def test_when_reads_unknown_and_skip_optional() -> None:
    wf = Workflow("conds")

    @wf.node
    def a() -> int:
        return 1

    @wf.node(when=lambda zzz: True)
    def b(a: int) -> int:
        return a

    @wf.node(on_upstream_skipped="run")
    def c(b: int) -> int:
        return b

    text = "\n".join(problems(wf))
    assert "the condition reads 'zzz'" in text
    assert "[skip-optional] workflow 'conds', node 'c', parameter 'b'" in text


def test_when_params_become_order_dependencies() -> None:
    wf = Workflow("implicit")

    @wf.node
    def a() -> int:
        return 1

    @wf.node(when=lambda a: a > 0)
    def b() -> int:
        return 2

    assert wf.build()["b"].deps == ("a",)


def test_compatible_types_accepted() -> None:
    wf = Workflow("compat")

    @wf.node
    def a() -> list[int]:
        return [1]

    @wf.node
    def b(a: Sequence[float]) -> int | None:
        return 1

    @wf.node(on_upstream_skipped="run")
    def c(b: int | None, a: list[int] | None) -> dict[str, int]:
        return {}

    wf.build()


def test_unserialisable_return_type() -> None:
    wf = Workflow("ser")

    class Opaque:
        pass

    @wf.node
    def a() -> Opaque:
        return Opaque()

    (msg,) = problems(wf)
    assert "[serializable]" in msg and "node 'a'" in msg


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"retry": 3}, "retry must be a stepdag.Retry(...), got 3"),
        ({"timeout": "60"}, "timeout must be a whole number of seconds >= 1, got '60'"),
        ({"when": bool}, "has no inspectable signature"),
        ({"cache": 5}, "cache must be True or a stepdag.Cache(...), got 5"),
        ({"retry": Retry(max_attempts="3")}, "retry.max_attempts must be between 1 and 100"),  # type: ignore[arg-type]
        ({"max_concurrency": 2.5}, "max_concurrency must be a whole number"),
    ],
)
def test_ill_typed_options_are_problems_not_crashes(
    options: dict[str, object], needle: str
) -> None:
    """Found by the fuzzer: ill-typed option values must be reported, never raise."""
    wf = Workflow("typed")
    wf.add_node("a", lambda: 1, **options)
    assert any(needle in p for p in problems(wf)), problems(wf)


def test_non_json_input_is_rejected_before_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stepdag import InputValidationError
    from stepdag.runtime.engine import LocalEngine
    from stepdag.runtime.sqlite import SqliteStore

    wf = Workflow("floats")

    @wf.node
    def a(params: dict[str, float]) -> float:
        return params["x"]

    engine = LocalEngine(SqliteStore(tmp_path / "s.db"))
    with pytest.raises(InputValidationError, match="execution input is not JSON"):
        engine.create(wf, {"x": float("inf")})

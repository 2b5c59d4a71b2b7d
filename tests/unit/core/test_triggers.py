"""Triggers: EventBridge pattern matching, input templates, schedules, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from stepdag import DagValidationError, Workflow
from stepdag.core.triggers import (
    EventTrigger,
    input_transformer,
    pattern_matches,
    pattern_problems,
    render_template,
    schedule_problems,
    timezone_problems,
)

EVENT: dict[str, Any] = {
    "id": "e-1",
    "source": "orders.service",
    "detail-type": "OrdersExported",
    "detail": {
        "source": "orders-2026-11",
        "count": 42,
        "state": "Running",
        "file": "report.PNG",
        "tags": ["a", "b"],
        "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}],
        "flag": True,
        "nothing": None,
        "nested": {"k": 1},
    },
}

MATCH_TABLE: list[tuple[dict[str, Any], bool]] = [
    ({"source": ["orders.service"]}, True),
    ({"source": ["other", "orders.service"]}, True),  # a list is an OR
    ({"source": ["other"]}, False),
    ({"source": ["orders.service"], "detail-type": ["Nope"]}, False),  # keys are AND
    ({"detail": {"count": [42]}}, True),
    ({"detail": {"count": ["42"]}}, False),  # types matter
    ({"detail": {"flag": [True]}}, True),
    ({"detail": {"nothing": [None]}}, True),
    ({"detail": {"tags": ["b"]}}, True),  # array values: any element
    ({"detail": {"tags": ["c"]}}, False),
    ({"detail": {"state": [{"prefix": "Run"}]}}, True),
    ({"detail": {"state": [{"prefix": "run"}]}}, False),
    ({"detail": {"state": [{"prefix": {"equals-ignore-case": "run"}}]}}, True),
    ({"detail": {"file": [{"suffix": ".PNG"}]}}, True),
    ({"detail": {"file": [{"suffix": {"equals-ignore-case": ".png"}}]}}, True),
    ({"detail": {"state": [{"equals-ignore-case": "RUNNING"}]}}, True),
    ({"detail": {"state": [{"anything-but": "Running"}]}}, False),
    ({"detail": {"state": [{"anything-but": ["Stopped", "Failed"]}]}}, True),
    ({"detail": {"count": [{"anything-but": [1, 2]}]}}, True),
    ({"detail": {"state": [{"anything-but": {"prefix": "Ru"}}]}}, False),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),  # needs the field
    ({"detail": {"count": [{"numeric": [">", 0, "<=", 42]}]}}, True),
    ({"detail": {"count": [{"numeric": ["<", 42]}]}}, False),
    ({"detail": {"count": [{"numeric": ["=", 42]}]}}, True),
    ({"detail": {"state": [{"numeric": [">", 0]}]}}, False),
    ({"detail": {"count": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"count": [{"exists": False}]}}, False),
    ({"detail": {"items": {"sku": ["y"]}}}, True),  # objects inside arrays
    ({"detail": {"items": {"sku": ["z"]}}}, False),
    ({"detail": {"state": [{"wildcard": "R*g"}]}}, True),
    ({"missing": {"deeper": [{"exists": False}]}}, True),
    ({"missing": {"deeper": ["x"]}}, False),
]


@pytest.mark.parametrize(("pattern", "expected"), MATCH_TABLE)
def test_pattern_matching_table(pattern: dict[str, Any], expected: bool) -> None:
    assert pattern_problems(pattern) == []
    assert pattern_matches(pattern, EVENT) is expected


def test_or_and_exists_on_objects() -> None:
    either = {"$or": [{"source": ["nope"]}, {"detail": {"count": [42]}}]}
    assert pattern_matches(either, EVENT)
    # exists is a leaf operator: an object-valued field does not "exist" as a leaf
    assert not pattern_matches({"detail": {"nested": [{"exists": True}]}}, EVENT)


def test_bool_is_not_a_number() -> None:
    assert not pattern_matches({"v": [1]}, {"v": True})
    assert pattern_matches({"v": [1]}, {"v": 1.0})


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ({}, "non-empty JSON object"),
        ({"source": "x"}, "non-empty list"),
        ({"source": []}, "non-empty list"),
        ({"a": [{"numeric": [">", "x"]}]}, "operator/number pairs"),
        ({"a": [{"numeric": ["!", 1]}]}, "operator/number pairs"),
        ({"a": [{"exists": "yes"}]}, "true or false"),
        ({"a": [{"prefix": 1}]}, "prefix takes"),
        ({"a": [{"cidr": "10.0.0.0/8"}]}, "unsupported operator 'cidr'"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "one-key operator"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "anything-but takes"),
        ({"$or": [{"a": ["x"]}]}, "at least two"),
    ],
)
def test_pattern_problems(pattern: dict[str, Any], needle: str) -> None:
    problems = pattern_problems(pattern)
    assert any(needle in p for p in problems), problems


def test_template_render_and_transformer() -> None:
    template = {
        "source": "$.detail.source",
        "first": "$.detail.items[0].sku",
        "nested": {"count": "$.detail.count", "same": "$.detail.source"},
        "literal": "plain",
        "absent": "$.detail.missing",
    }
    assert render_template(template, EVENT) == {
        "source": "orders-2026-11",
        "first": "x",
        "nested": {"count": 42, "same": "orders-2026-11"},
        "literal": "plain",
        "absent": None,
    }
    tr = input_transformer(template)
    assert tr["InputPathsMap"] == {
        "detail_source": "$.detail.source",
        "detail_items_0__sku": "$.detail.items[0].sku",
        "detail_count": "$.detail.count",
        "detail_missing": "$.detail.missing",
    }
    # Substituting each variable's JSON value gives the local rendering back.
    text = tr["InputTemplate"]
    for var, path in tr["InputPathsMap"].items():
        from stepdag.core.triggers import resolve_path

        text = text.replace(f"<{var}>", json.dumps(resolve_path(EVENT, path)))
    assert json.loads(text) == render_template(template, EVENT)


def test_event_trigger_input_modes() -> None:
    assert EventTrigger("a", {"source": ["x"]}).render(EVENT) is EVENT
    t = EventTrigger("b", {"source": ["x"]}, lambda e: {"n": e["detail"]["count"]})
    assert t.render(EVENT) == {"n": 42}


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 2 * * ? *)",
        "cron(0/15 8-17 ? * MON-FRI *)",
        "cron(0 12 L * ? 2030)",
        "cron(0 10 ? * 6L *)",
        "cron(0 10 ? * 2#1 *)",
        "cron(0 9 15W * ? *)",
        "cron(5,35 14 ? JAN,FEB * *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(2 days)",
        "at(2030-01-31T09:30:00)",
    ],
)
def test_valid_schedules(expression: str) -> None:
    assert schedule_problems(expression) == []


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ("cron(0 2 * * *)", "6 fields"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 2 * * ? *)", "minutes '60'"),
        ("cron(0 24 * * ? *)", "hours '24'"),
        ("cron(0 2 * 13 ? *)", "month '13'"),
        ("cron(0 2 ? * FUNDAY *)", "day-of-week 'FUNDAY'"),
        ("cron(0 2 * * ? 1969)", "year '1969'"),
        ("cron(? 2 * * ? *)", "minutes cannot be '?'"),
        ("rate(1 minutes)", "singular"),
        ("rate(5 minute)", "singular"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 weeks)", "rate(<n>"),
        ("at(2030-13-01T00:00:00)", "at(yyyy"),
        ("every day", "cron(...), rate(...) or at(...)"),
    ],
)
def test_invalid_schedules(expression: str, needle: str) -> None:
    problems = schedule_problems(expression)
    assert any(needle in p for p in problems), problems


def test_timezones() -> None:
    assert timezone_problems("Europe/Berlin") == []
    assert "unknown time zone" in timezone_problems("Mars/Olympus")[0]
    assert timezone_problems("") != []


class Params(BaseModel):
    source: str


def _wf() -> Workflow:
    wf = Workflow("trig")

    @wf.node
    def a(params: Params) -> int:
        return 1

    return wf


def test_workflow_with_valid_triggers_builds() -> None:
    wf = _wf()
    wf.on_schedule("cron(0 2 * * ? *)", timezone="Europe/Berlin", input={"source": "s"})
    wf.on_event({"source": ["x"]}, input={"source": "$.detail.source"}, name="ev")
    wf.build()
    assert [t.name for t in wf.triggers] == ["schedule1", "ev"]


def test_trigger_problems_join_workflow_validation() -> None:
    wf = _wf()
    wf.on_schedule("cron(0 2 * * * *)", timezone="Mars/Olympus", input={"source": "s"}, name="t")
    wf.on_schedule("rate(5 minutes)", input={"nope": 1}, name="t")
    wf.on_event({"source": ["x"]}, input={"source": "$detail.source"}, name="bad name!")
    with pytest.raises(DagValidationError) as info:
        wf.build()
    text = str(info.value)
    assert all(p.check == "triggers" for p in info.value.problems)
    for needle in (
        "exactly one of day-of-month",
        "unknown time zone 'Mars/Olympus'",
        "trigger name used twice",
        "its input is rejected by 'params' (source: Field required)",
        "'$detail.source' is not a JSON path",
        "trigger names start with a letter",
    ):
        assert needle in text, text


def test_adding_a_trigger_invalidates_the_cached_dag() -> None:
    wf = _wf()
    wf.build()
    wf.on_schedule("rate(0 minutes)")
    with pytest.raises(DagValidationError):
        wf.build()

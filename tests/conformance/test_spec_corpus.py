"""The spec corpus (``spec/<area>/*.json``) is well formed, whatever the engine supports.

Spec fixtures have no oracle to re-record them (moto disables JSONata and has no
variables), so their shape is checked here: the four contract fields and nothing else,
an output only for SUCCEEDED executions, ``ignore`` used only for the cause and always
explained, and every fixture in an area that belongs to it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.corpus import CONTRACT_FIELDS, Fixture, load_spec_fixtures

SPEC_FIXTURES = load_spec_fixtures()
# ``objects``: S3 objects (``"bucket/key": body``) a Distributed Map's ItemReader reads.
ALLOWED_KEYS = {
    "description",
    "source",
    "definition",
    "input",
    "expected",
    "ignore",
    "notes",
    "objects",
}
STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def _ids(fixtures: list[Fixture]) -> list[str]:
    return [f"{f.path.parent.name}/{f.name}" for f in fixtures]


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (key, *_strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _uses_jsonata(definition: Any) -> bool:
    return any(s == "JSONata" for s in _strings(definition)) or any(
        s.startswith("{%") for s in _strings(definition)
    )


def _uses_variables(definition: Any) -> bool:
    if isinstance(definition, dict):
        return "Assign" in definition or any(_uses_variables(v) for v in definition.values())
    if isinstance(definition, list):
        return any(_uses_variables(v) for v in definition)
    return False


def _graph_errors(machine: dict[str, Any], where: str) -> list[str]:
    """Transitions to missing states and unreachable states (AWS refuses both at creation)."""
    states = machine["States"]
    errors: list[str] = []
    seen: set[str] = set()
    todo = [machine["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in states:
            errors.append(f"{where}: transition to missing state {name!r}")
            continue
        seen.add(name)
        state = states[name]
        todo += [state[k] for k in ("Next", "Default") if k in state]
        todo += [rule["Next"] for rule in state.get("Choices", []) + state.get("Catch", [])]
        for sub in [
            *state.get("Branches", []),
            *[state[k] for k in ("ItemProcessor", "Iterator") if k in state],
        ]:
            errors += _graph_errors(sub, f"{where}/{name}")
    errors += [f"{where}: unreachable state {name!r}" for name in states if name not in seen]
    return errors


def test_spec_corpus_size() -> None:
    areas = {
        name: [f for f in SPEC_FIXTURES if f.path.parent.name == name]
        for name in ("jsonata", "variables")
    }
    assert len(areas["jsonata"]) >= 110
    assert len(areas["variables"]) >= 40
    names = [f.name for f in SPEC_FIXTURES]
    assert len(names) == len(set(names)), "fixture names must be unique across areas"


@pytest.mark.parametrize("fixture", SPEC_FIXTURES, ids=_ids(SPEC_FIXTURES))
def test_spec_fixture_shape(fixture: Fixture) -> None:
    data = fixture.data
    assert set(data) <= ALLOWED_KEYS, sorted(set(data) - ALLOWED_KEYS)
    assert data["description"].strip() and data["source"].strip()
    expected = fixture.expected
    assert set(expected) == set(CONTRACT_FIELDS)
    assert expected["status"] in STATUSES
    if expected["status"] == "SUCCEEDED":
        assert expected["error"] is None and expected["cause"] is None
    else:
        assert expected["output"] is None
    if expected["status"] == "FAILED":
        assert isinstance(expected["error"], str) and expected["error"]
    if "ignore" in data:
        assert data["ignore"] == ["cause"], "only the cause may be left uncompared"
        assert data.get("notes"), "say why the cause is not compared"


@pytest.mark.parametrize("fixture", SPEC_FIXTURES, ids=_ids(SPEC_FIXTURES))
def test_spec_definition_graph_is_valid(fixture: Fixture) -> None:
    assert _graph_errors(fixture.data["definition"], fixture.name) == []


@pytest.mark.parametrize("fixture", SPEC_FIXTURES, ids=_ids(SPEC_FIXTURES))
def test_spec_fixture_belongs_to_its_area(fixture: Fixture) -> None:
    area = fixture.path.parent.name
    definition = fixture.data["definition"]
    if area == "jsonata":
        assert _uses_jsonata(definition)
    elif area == "variables":
        assert _uses_variables(definition)

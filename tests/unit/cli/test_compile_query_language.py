"""``stepdag compile --query-language``: the compiled ASL's query language, per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.asl import StateMachine
from stepdag.cli.main import app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)
    return CliRunner()


def _compile(runner: CliRunner, out: Path, *extra: str) -> dict[str, object]:
    res = runner.invoke(app, ["compile", "statemachines/etl.py:wf", "-o", str(out), *extra])
    assert res.exit_code == 0, res.output
    loaded: dict[str, object] = json.loads(out.read_text())
    return loaded


def test_jsonata_is_emitted_on_request(runner: CliRunner, tmp_path: Path) -> None:
    jsonpath = _compile(runner, tmp_path / "a.json")
    jsonata = _compile(runner, tmp_path / "b.json", "--query-language", "JSONata")
    assert "QueryLanguage" not in jsonpath
    assert jsonata["QueryLanguage"] == "JSONata"
    # Same states, same transitions; and the local engine accepts it.
    assert jsonata["States"].keys() == jsonpath["States"].keys()  # type: ignore[attr-defined]
    StateMachine(jsonata)


def test_jsonpath_is_the_default_and_can_be_forced(runner: CliRunner, tmp_path: Path) -> None:
    forced = _compile(runner, tmp_path / "c.json", "--query-language", "JSONPath")
    assert forced == json.loads((REPO / "statemachines" / "etl.asl.json").read_text())


def test_an_unknown_language_is_one_clear_line(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["compile", "statemachines/etl.py:wf", "-o", str(tmp_path / "x.json"),
              "--query-language", "jsonpath2"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "must be JSONPath or JSONata, not 'jsonpath2'" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "x.json").exists()

"""`stepdag trigger`: match -> run, redelivery -> same execution, no match -> exit 1."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app

REPO = Path(__file__).resolve().parents[3]
EVENT = {
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "source": "orders.service",
    "detail-type": "OrdersExported",
    "detail": {"source": "orders-2026-11"},
}
TWO = textwrap.dedent(
    """
    from stepdag import Workflow

    wf = Workflow("two_triggers")

    @wf.node
    def echo(params: dict) -> dict:
        if params.get("boom"):
            raise RuntimeError("boom")
        return params

    wf.on_event({"source": ["a"]}, input={"who": "$.detail.who"}, name="first")
    wf.on_event({"source": ["a"], "detail": {"boom": [True]}},
                input=lambda e: {"boom": True}, name="second")
    """
)


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.chdir(REPO)
    return CliRunner()


def _write(tmp_path: Path, event: object, name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(event))
    return f"@{path}"


def test_match_starts_a_run_named_after_the_event_id(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, EVENT)]
    )
    assert res.exit_code == 0, res.output
    assert "matched: trigger 'orders-exported'" in res.output
    assert f"execution {EVENT['id']}: SUCCEEDED" in res.output
    from stepdag.runtime.engine import default_store

    rec = default_store(tmp_path / "home").get_execution(EVENT["id"], workflow="etl")
    assert rec.input == {"source": "orders-2026-11"}  # the template's mapping


def test_redelivery_reports_the_existing_execution(runner: CliRunner, tmp_path: Path) -> None:
    args = ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, EVENT)]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "already delivered" in again.output and "SUCCEEDED" in again.output
    assert "started by trigger" not in again.output
    from stepdag.runtime.engine import default_store

    runs = default_store(tmp_path / "home").list_executions(workflow="etl")
    assert [r.name for r in getattr(runs, "items", runs)] == [EVENT["id"]]


def test_no_match_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    event = {**EVENT, "source": "billing.service"}
    res = runner.invoke(
        app, ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, event)]
    )
    assert res.exit_code == 1
    assert "no match: trigger 'orders-exported'" in res.output
    assert "matched event" in res.output


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ('{"id": ', "--event is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"source": "orders.service"}', "has no 'id'"),
        (
            '{"id": "has spaces!", "source": "orders.service", "detail-type": "OrdersExported"}',
            "' ' at position 4 is not allowed (Step Functions refuses whitespace",
        ),
        ("@/definitely/missing.json", "no such file"),
    ],
)
def test_bad_event_is_a_clear_error(runner: CliRunner, event: str, needle: str) -> None:
    res = runner.invoke(app, ["trigger", "statemachines/etl.py:wf", "--event", event])
    assert res.exit_code == 2
    assert needle in res.output and "Traceback" not in res.output


def test_mapping_rejected_by_params_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    event = {**EVENT, "detail": {}}  # $.detail.source -> null, ExtractParams needs a str
    res = runner.invoke(
        app, ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, event)]
    )
    assert res.exit_code == 2
    assert "execution input rejected" in res.output


def test_several_triggers_get_one_run_each(runner: CliRunner, tmp_path: Path) -> None:
    wf = tmp_path / "two.py"
    wf.write_text(TWO)
    event = {"id": "ev-9", "source": "a", "detail": {"who": "me", "boom": True}}
    res = runner.invoke(app, ["trigger", f"{wf}:wf", "--event", _write(tmp_path, event)])
    assert res.exit_code == 1, res.output  # the second run failed
    assert "execution ev-9-first: SUCCEEDED" in res.output
    assert "execution ev-9-second: FAILED" in res.output
    only_first = {"id": "ev-10", "source": "a", "detail": {"who": "you"}}
    res = runner.invoke(app, ["trigger", f"{wf}:wf", "--event", _write(tmp_path, only_first)])
    assert res.exit_code == 0, res.output
    assert "no match: trigger 'second'" in res.output


def test_trigger_starts_runs_through_the_execution_service(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepdag.api.service import LocalExecutionService

    started: list[tuple[str, object, object]] = []
    real = LocalExecutionService.start

    def spy(self: LocalExecutionService, workflow: str, input: object, **kwargs: object) -> object:
        started.append((workflow, kwargs["name"], input))
        return real(self, workflow, input, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalExecutionService, "start", spy)
    args = ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, EVENT)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert started == [("etl", EVENT["id"], {"source": "orders-2026-11"})]
    # The service's start rule, as behind the deployed API's event route: the same event
    # id with another input is a conflict, not a redelivery.
    changed = {**EVENT, "detail": {"source": "orders-2026-12"}}
    args = ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, changed, "b.json")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "different input" in res.output, res.output


def test_an_event_id_step_functions_accepts_names_the_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    # '.' and '@' are in Step Functions' name rule (and the API's); the trigger once
    # refused them with a stricter rule of its own.
    event = {**EVENT, "id": "orders.2026-12-04@1"}
    res = runner.invoke(
        app, ["trigger", "statemachines/etl.py:wf", "--event", _write(tmp_path, event)]
    )
    assert res.exit_code == 0, res.output
    assert "execution orders.2026-12-04@1: SUCCEEDED" in res.output

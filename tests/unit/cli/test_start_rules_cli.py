"""The CLI applies the start rules of ``stepdag.core.inputs`` before anything is stored or
sent: Step Functions' name rule, the 256 KiB input limit (exit 2 with size and limit; a
huge ``-i @file`` refused from its size, unread), the depth limit, strict JSON in and out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app
from stepdag.core.inputs import MAX_INPUT_BYTES, MAX_INPUT_DEPTH

WORKFLOW = textwrap.dedent(
    """
    from typing import Any
    from stepdag import Workflow

    wf = Workflow("anywf")

    @wf.node
    def first(params: Any) -> int:
        return 1
    """
)


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.setenv("STEPDAG_POLL_SECONDS", "0.02")
    monkeypatch.delenv("STEPDAG_REMOTE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "anywf.py").write_text(WORKFLOW)
    return CliRunner()


def listed(runner: CliRunner) -> str:
    res = runner.invoke(app, ["executions", "list"])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize("name", ["has space", "a/b", "x" * 81, "semi;colon", "q?", ""])
def test_a_name_step_functions_refuses_is_exit_2_and_nothing_runs(
    runner: CliRunner, name: str
) -> None:
    res = runner.invoke(app, ["run", "anywf.py", "-i", "{}", "--name", name])
    assert res.exit_code == 2, res.output
    assert "execution name" in res.output and "Traceback" not in res.output
    assert "anywf" not in listed(runner)


def test_a_name_within_the_rule_runs(runner: CliRunner) -> None:
    res = runner.invoke(app, ["run", "anywf.py", "-i", "{}", "--name", "run@2026-12-04(1)"])
    assert res.exit_code == 0, res.output


def test_an_input_over_the_limit_is_exit_2_with_size_and_limit(
    runner: CliRunner, tmp_path: Path
) -> None:
    big = {"pad": "a" * 300_000}
    (tmp_path / "big.json").write_text(json.dumps(big))
    res = runner.invoke(app, ["run", "anywf.py", "-i", "@big.json"])
    assert res.exit_code == 2, res.output
    size = len(json.dumps(big, separators=(",", ":")))
    assert f"{size:,} bytes" in res.output and f"{MAX_INPUT_BYTES:,} bytes" in res.output
    assert "DataLimitExceeded" not in res.output
    assert "anywf" not in listed(runner)


def test_a_huge_input_file_is_refused_from_its_size_unread(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as fh:  # sparse: 31 MB on the file system, no disk used
        fh.truncate(31 * 1024 * 1024)

    def no_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_text", no_read)
    monkeypatch.setattr(Path, "read_bytes", no_read)
    res = runner.invoke(app, ["run", "anywf.py", "-i", "@huge.json"])
    assert res.exit_code == 2, res.output
    assert f"{31 * 1024 * 1024:,} bytes" in res.output and "262,144" in res.output


def test_an_input_nested_past_the_limit_is_exit_2(runner: CliRunner) -> None:
    for depth in (MAX_INPUT_DEPTH + 1, 5000):
        text = "[" * depth + "]" * depth
        res = runner.invoke(app, ["run", "anywf.py", "-i", text])
        assert res.exit_code == 2, res.output
        assert f"deeper than {MAX_INPUT_DEPTH}" in res.output and "Traceback" not in res.output
    assert "anywf" not in listed(runner)


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}', "[-Infinity]"])
def test_nan_and_infinity_inputs_are_exit_2(runner: CliRunner, text: str) -> None:
    res = runner.invoke(app, ["run", "anywf.py", "-i", text])
    assert res.exit_code == 2, res.output
    assert "is not JSON" in res.output


def test_asl_run_never_prints_nan(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = tmp_path / "task.asl.json"
    task = {"Type": "Task", "Resource": "arn:nan", "End": True}
    definition.write_text(json.dumps({"StartAt": "T", "States": {"T": task}}))
    (tmp_path / "nan_handlers.py").write_text("HANDLERS = {'arn:nan': lambda p: float('nan')}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    res = runner.invoke(app, ["asl", "run", str(definition), "--handlers", "nan_handlers:HANDLERS"])
    assert "NaN" not in res.stdout
    printed = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"printed {c}"))
    assert printed["status"] == "FAILED" and res.exit_code == 1
    assert "not JSON" in printed["cause"]


def test_asl_run_refuses_a_nan_input(runner: CliRunner, tmp_path: Path) -> None:
    definition = tmp_path / "pass.asl.json"
    definition.write_text(
        json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    )
    res = runner.invoke(app, ["asl", "run", str(definition), "-i", '{"x": NaN}'])
    assert res.exit_code == 2
    printed = json.loads(res.stdout)
    assert printed["status"] == "INVALID" and "NaN" in printed["cause"]

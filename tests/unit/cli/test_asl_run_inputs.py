"""``stepdag asl run`` refuses, before the run, the inputs no entry point takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def _nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels - 1):
        node["a"] = {}
        node = node["a"]
    return root


def _run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    definition = tmp_path / "m.asl.json"
    definition.write_text(json.dumps(PASS))
    res = CliRunner().invoke(app, ["asl", "run", str(definition), *args])
    return res.exit_code, json.loads(res.stdout), res.stdout


@pytest.mark.parametrize(
    ("body", "error", "fragment"),
    [
        (json.dumps({"a": "x" * 270_000}), "InputTooLarge", "the limit is 262,144 bytes"),
        (json.dumps(_nested(65)), "InputTooDeep", "deeper than 64 levels"),
        ('{"a": NaN}', "NotJson", "NaN is not JSON"),
        ('{"a": ', "NotJson", "is not valid JSON"),
    ],
)
def test_a_refused_input_is_invalid_with_one_line(
    tmp_path: Path, body: str, error: str, fragment: str
) -> None:
    source = tmp_path / "input.json"
    source.write_text(body)
    code, result, stdout = _run(tmp_path, "--input", f"@{source}")
    assert code == 2
    assert stdout.count("\n") == 1
    assert (result["status"], result["error"]) == ("INVALID", error)
    assert fragment in result["cause"] and "\n" not in result["cause"]
    assert result["cause"].startswith("--input")


def test_inputs_at_the_limits_run(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(_nested(64)))
    code, result, _ = _run(tmp_path, "--input", f"@{deep}")
    assert (code, result["status"]) == (0, "SUCCEEDED")
    # 256 KiB exactly: the compact JSON text {"a":"xxx..."} is 262,144 bytes.
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"a": "x" * (262_144 - len('{"a":""}'))}))
    code, result, _ = _run(tmp_path, "--input", f"@{big}")
    assert (code, result["status"]) == (0, "SUCCEEDED")


def test_an_invalid_definition_reads_as_create_state_machine_answers(tmp_path: Path) -> None:
    definition = tmp_path / "bad.asl.json"
    definition.write_text(
        json.dumps(
            {
                "StartAt": "pass1",
                "States": {
                    "pass1": {"Type": "Pass", "Next": "pass3"},
                    "pass2": {"Type": "Pass", "End": True},
                },
            }
        )
    )
    res = CliRunner().invoke(app, ["asl", "run", str(definition)])
    assert res.exit_code == 2
    assert json.loads(res.stdout) == {
        "status": "INVALID",
        "output": None,
        "error": "InvalidDefinition",
        "cause": "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' "
        'target: pass3 at /States/pass1/Next, MISSING_TRANSITION_TARGET: State "pass2" is not '
        "reachable. at /States/pass2'",
    }
    # stderr: one line per problem, each with its location.
    assert res.stderr.splitlines() == [
        "MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at /States/pass1/Next",
        'MISSING_TRANSITION_TARGET: State "pass2" is not reachable. at /States/pass2',
    ]

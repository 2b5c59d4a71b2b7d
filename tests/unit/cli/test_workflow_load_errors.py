"""A workflow module that fails to import is one line (``file:line: Error: message``) and
exit 2 in every command that loads workflows; ``serve`` skips such a module, refuses two
modules defining one workflow name and a ``--directory`` that does not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app

REPO = Path(__file__).resolve().parents[3]

GOOD = """\
from stepdag import Workflow

wf = Workflow("good")


@wf.node
def a() -> int:
    return 1
"""

# name -> (source, the line the error is on, the message after "file:line: ")
BROKEN = {
    "name_error": (
        "from stepdag import Workflow\nwf = Workflow('broken')\n\noops = x + 1\n",
        4,
        "NameError: name 'x' is not defined",
    ),
    "syntax_error": (
        "from stepdag import Workflow\nwf = Workflow('broken')\n\n\ndef f(:\n    pass\n",
        5,
        "SyntaxError: invalid syntax",
    ),
    "import_error": (  # Python's own message names the module's file
        "from stepdag import Workflow\nfrom os import no_such_name\nwf = Workflow('broken')\n",
        2,
        f"ImportError: cannot import name 'no_such_name' from 'os' ({os.__file__})",
    ),
    "missing_module": (
        "import stepdag\nimport no_such_module_13\nwf = stepdag.Workflow('broken')\n",
        2,
        "ModuleNotFoundError: No module named 'no_such_module_13'",
    ),
}


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the cwd) with ``statemachines/good.py``."""
    root = tmp_path / "project"
    (root / "statemachines").mkdir(parents=True)
    (root / "statemachines" / "good.py").write_text(GOOD)
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.delenv("STEPDAG_REMOTE", raising=False)
    monkeypatch.chdir(root)
    return root


def _broken(project: Path, kind: str, stem: str = "bad") -> tuple[str, str]:
    source, line, message = BROKEN[kind]
    (project / "statemachines" / f"{stem}.py").write_text(source)
    return f"statemachines/{stem}.py", f"statemachines/{stem}.py:{line}: {message}"


def _one_line_exit_2(args: list[str], expected: str) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert lines == [f"error: {expected}"], res.output


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_validate_names_file_line_and_error(project: Path, kind: str) -> None:
    path, expected = _broken(project, kind)
    _one_line_exit_2(["validate", f"{path}:wf"], expected)


# Every command that loads workflows: by reference, or by discovering statemachines/.
COMMANDS = [
    ["validate", "{path}"],
    ["compile"],
    ["compile", "{path}:wf"],
    ["compile", "--check"],
    ["graph", "{path}:wf"],
    ["run", "{path}:wf"],
    ["run", "good"],
    ["resume", "some-run"],
    ["redrive", "some-run", "--workflow", "{path}:wf"],
    ["cancel", "some-run"],
    ["rerun", "some-run", "--from", "a", "--workflow", "{path}:wf"],
    ["replay", "some-run", "a", "--workflow", "{path}:wf"],
    ["logs", "some-run"],
    ["executions", "list"],
    ["executions", "show", "some-run"],
    ["executions", "output", "some-run"],
    ["trigger", "{path}:wf", "--event", "{{}}"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_that_loads_workflows(project: Path, args: list[str]) -> None:
    path, expected = _broken(project, "name_error")
    _one_line_exit_2([a.format(path=path) for a in args], expected)


def test_error_inside_a_module_the_workflow_imports_names_that_module(project: Path) -> None:
    (project / "statemachines" / "_helpers13.py").write_text("X = 1\nY = undefined_name\n")
    (project / "statemachines" / "uses.py").write_text(
        "from stepdag import Workflow\nimport _helpers13\nwf = Workflow('uses')\n"
    )
    _one_line_exit_2(
        ["validate", "statemachines/uses.py"],
        "statemachines/_helpers13.py:2: NameError: name 'undefined_name' is not defined",
    )


def test_module_reference_import_failure_is_located(project: Path) -> None:
    (project / "wfpkg13").mkdir()
    (project / "wfpkg13" / "__init__.py").write_text("")
    (project / "wfpkg13" / "flow.py").write_text(BROKEN["name_error"][0])
    _one_line_exit_2(
        ["validate", "wfpkg13.flow:wf"],
        "wfpkg13/flow.py:4: NameError: name 'x' is not defined",
    )


def test_a_multiline_message_is_one_line(project: Path) -> None:
    (project / "statemachines" / "multi.py").write_text("raise ValueError('first\\nsecond')\n")
    _one_line_exit_2(
        ["validate", "statemachines/multi.py"],
        "statemachines/multi.py:1: ValueError: first second",
    )


def test_two_modules_defining_one_workflow_name_are_refused(project: Path) -> None:
    (project / "statemachines" / "again.py").write_text(GOOD)
    res = CliRunner().invoke(app, ["compile"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "error: workflow name 'good' is defined twice: "
        "statemachines/again.py:wf and statemachines/good.py:wf"
    ], res.output


def test_one_module_may_export_one_workflow_under_two_names(project: Path) -> None:
    (project / "statemachines" / "alias.py").write_text(
        GOOD.replace('Workflow("good")', 'Workflow("aliased")') + "\nmain = wf\n"
    )
    res = CliRunner().invoke(app, ["compile"])
    assert res.exit_code == 0, res.output


# ---------------------------------------------------------------------------- serve


def _serve(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "functions"), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "stepdag.cli.main", "serve", "--port", "0", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture()
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _refused(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("serve started instead of refusing")
    return proc.returncode, stderr


def test_serve_skips_broken_modules_and_invalid_workflows_and_reports_them(
    project: Path, stop: list[subprocess.Popen[str]]
) -> None:
    _, expected = _broken(project, "name_error")
    (project / "statemachines" / "invalid.py").write_text(
        GOOD.replace('"good"', '"invalid"').replace("def a()", "def a(ghost: int)")
    )
    proc = _serve(project)
    stop.append(proc)
    assert proc.stdout is not None and proc.stderr is not None
    banner = proc.stdout.readline()
    if not banner:  # it exited instead of serving
        pytest.fail(f"serve stopped (exit {proc.wait(timeout=10)}): {proc.stderr.read()}")
    assert "(1 workflows, 2 skipped)" in banner, banner
    url = banner.split(" on ", 1)[1].split("/ ", 1)[0]
    with urllib.request.urlopen(f"{url}/v1/workflows", timeout=10) as resp:
        names = [w["name"] for w in json.load(resp)["items"]]
    assert names == ["good"]
    proc.terminate()
    _, stderr = proc.communicate(timeout=10)
    assert stderr.splitlines() == [
        f"warning: skipped {expected}",
        "warning: skipped statemachines/invalid.py:wf: workflow 'invalid' is invalid "
        "(1 problem; `stepdag validate statemachines/invalid.py:wf` lists them)",
    ], stderr


def test_serve_refuses_a_directory_that_does_not_exist(
    project: Path, stop: list[subprocess.Popen[str]]
) -> None:
    proc = _serve(project, "--directory", "nope")
    stop.append(proc)
    code, stderr = _refused(proc)
    assert code == 2
    assert stderr.strip().splitlines() == ["error: no workflow directory 'nope'"], stderr


def test_serve_refuses_two_modules_defining_one_workflow_name(
    project: Path, stop: list[subprocess.Popen[str]]
) -> None:
    (project / "statemachines" / "again.py").write_text(GOOD)
    proc = _serve(project)
    stop.append(proc)
    code, stderr = _refused(proc)
    assert code == 2
    assert "workflow name 'good' is defined twice" in stderr
    assert "statemachines/again.py" in stderr and "statemachines/good.py" in stderr


def test_two_files_with_one_stem_each_load_their_own_code(tmp_path: Path) -> None:
    from stepdag.core.loader import load_workflow

    for folder, name in (("one", "first13"), ("two", "second13")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same_stem13.py").write_text(GOOD.replace('"good"', f'"{name}"'))
    first = load_workflow(str(tmp_path / "one" / "same_stem13.py"))
    second = load_workflow(str(tmp_path / "two" / "same_stem13.py"))
    assert (first.workflow.name, second.workflow.name) == ("first13", "second13")
    assert load_workflow(str(tmp_path / "two" / "same_stem13.py")).workflow is second.workflow

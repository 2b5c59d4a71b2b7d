"""The CLI: clear errors without tracebacks, exit codes, the `asl run` contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.cli.main import app

REPO = Path(__file__).resolve().parents[3]
BAD = """
from stepdag import Workflow
wf = Workflow("bad")

@wf.node
def a(c: int) -> int:
    return c

@wf.node
def b(a: str, ghost: int) -> int:
    return 1

@wf.node
def c(b: int) -> int:
    return b

def b(x: int) -> int:  # noqa: F811
    return x

wf.add_node("b", b)
"""


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.chdir(REPO)
    return CliRunner()


def test_validate_ok(runner: CliRunner) -> None:
    res = runner.invoke(app, ["validate", "statemachines/etl.py:wf"])
    assert res.exit_code == 0 and "is valid (6 nodes" in res.output


def test_invalid_workflow_lists_every_problem_without_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "bad.py"
    path.write_text(BAD)
    res = runner.invoke(app, ["validate", f"{path}:wf"])
    assert res.exit_code == 2
    out = res.output
    assert "Traceback" not in out
    for needle in ("[cycle]", "[duplicate-node]", "parameter 'ghost'", "[type-mismatch]"):
        assert needle in out, out


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope/missing.py:wf", "no such workflow file"),
        ("statemachines/etl.py:nothing", "has no Workflow named 'nothing' (it defines: wf)"),
        ("no_such_module_xyz:wf", "cannot import module 'no_such_module_xyz'"),
    ],
)
def test_load_errors_are_clear(runner: CliRunner, ref: str, message: str) -> None:
    res = runner.invoke(app, ["validate", ref])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_compile_to_file_and_check(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "etl.json"
    res = runner.invoke(app, ["compile", "statemachines/etl.py:wf", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == (REPO / "statemachines" / "etl.asl.json").read_text()
    assert runner.invoke(app, ["compile", "--check"]).exit_code == 0


def test_graph_formats(runner: CliRunner) -> None:
    text = runner.invoke(app, ["graph", "statemachines/features.py:wf"])
    assert "[users | events] ; [user_features | session_features] ; train ; evaluate" in text.output
    mermaid = runner.invoke(app, ["graph", "statemachines/etl.py:wf", "--format", "mermaid"])
    assert mermaid.output.startswith("flowchart TD") and "transform --> load" in mermaid.output
    assert runner.invoke(app, ["graph", "statemachines/etl.py:wf", "-f", "dot"]).exit_code != 0


def test_run_show_output_list(runner: CliRunner) -> None:
    res = runner.invoke(
        app,
        [
            "run",
            "statemachines/etl.py:wf",
            "--input",
            "@statemachines/inputs/etl.json",
            "--name",
            "t1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "SUCCEEDED" in res.output
    show = runner.invoke(app, ["executions", "show", "t1"])
    assert "timeline" in show.output and "load" in show.output
    out = runner.invoke(app, ["executions", "output", "t1"])
    assert json.loads(out.output)["loaded"] > 0
    node = runner.invoke(app, ["executions", "output", "t1", "profile"])
    assert json.loads(node.output)["rows"] == 25
    listing = runner.invoke(app, ["executions", "list", "--workflow", "etl"])
    assert "t1" in listing.output
    again = runner.invoke(app, ["run", "statemachines/etl.py:wf", "--input", "{}", "--name", "t1"])
    assert again.exit_code == 2 and "Traceback" not in again.output


def test_bad_input_fails_fast(runner: CliRunner) -> None:
    res = runner.invoke(app, ["run", "statemachines/etl.py:wf", "--input", '{"count": "many"}'])
    assert res.exit_code == 2
    assert "execution input rejected by node 'extract'" in res.output
    assert (
        "source: Field required" in res.output
        and "count: Input should be a valid integer" in res.output
    )
    broken = runner.invoke(app, ["run", "statemachines/etl.py:wf", "--input", '{"source": '])
    assert broken.exit_code == 2 and "--input is not valid JSON" in broken.output


def test_failed_run_exits_1_and_resume(runner: CliRunner, tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.write_text("1")
    path = tmp_path / "flaky_wf.py"
    path.write_text(f"""
from pathlib import Path
from stepdag import Workflow
wf = Workflow("flakywf")

@wf.node
def a() -> int:
    return 1

@wf.node
def b(a: int) -> int:
    if Path({str(flag)!r}).exists():
        raise RuntimeError("disk on fire")
    return a + 1
""")
    res = runner.invoke(app, ["run", f"{path}:wf", "--name", "f1"])
    assert res.exit_code == 1 and "RuntimeError" in res.output and "disk on fire" in res.output
    flag.unlink()
    res = runner.invoke(app, ["resume", "f1", "--workflow", f"{path}:wf"])
    assert res.exit_code == 0, res.output
    show = runner.invoke(app, ["executions", "show", "f1"])
    assert "redrives 1" in show.output


def test_asl_run_contract(runner: CliRunner, tmp_path: Path) -> None:
    d = tmp_path / "m.json"
    d.write_text(
        json.dumps(
            {
                "StartAt": "P",
                "States": {
                    "P": {
                        "Type": "Pass",
                        "Parameters": {"v.$": "States.MathAdd($.a, 1)"},
                        "End": True,
                    }
                },
            }
        )
    )
    res = runner.invoke(app, ["asl", "run", str(d), "--input", '{"a": 41}'])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == {
        "status": "SUCCEEDED",
        "output": {"v": 42},
        "error": None,
        "cause": None,
    }
    f = tmp_path / "f.json"
    f.write_text(
        json.dumps({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}})
    )
    res = runner.invoke(app, ["asl", "run", str(f)])
    assert res.exit_code == 1
    assert json.loads(res.stdout) == {
        "status": "FAILED",
        "output": None,
        "error": "E",
        "cause": "C",
    }
    bad = tmp_path / "bad.json"
    bad.write_text('{"StartAt": "X", "States": {}}')
    res = runner.invoke(app, ["asl", "run", str(bad)])
    assert res.exit_code == 2 and json.loads(res.stdout)["status"] == "INVALID"


def test_rerun_goes_through_the_local_service(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepdag.api.service import LocalExecutionService
    from stepdag.runtime.engine import LocalEngine, default_store
    from stepdag.runtime.records import NodeKey

    args = ["run", "statemachines/etl.py:wf", "-i", "@statemachines/inputs/etl.json"]
    assert runner.invoke(app, [*args, "--name", "base"]).exit_code == 0
    calls: list[tuple[str, str]] = []
    real = LocalExecutionService.rerun

    def spy(self: LocalExecutionService, ref: str, from_node: str, **kwargs: object) -> object:
        calls.append((ref, from_node))
        return real(self, ref, from_node, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LocalExecutionService, "rerun", spy)
    monkeypatch.setattr(LocalEngine, "rerun", None)  # the engine's own loop is not used
    res = runner.invoke(app, ["rerun", "base", "--from", "load", "--name", "again"])
    assert res.exit_code == 0, res.output
    assert "execution again (etl) started: rerun of base from node 'load'" in res.output
    assert "SUCCEEDED" in res.output and calls == [("base", "load")]
    store = default_store(tmp_path / "home")
    old, new = store.get_execution("base"), store.get_execution("again")
    assert (new.rerun_of, new.rerun_from) == (old.execution_id, "load")
    copied = store.get_node(NodeKey(new.execution_id, "extract"))
    original = store.get_node(NodeKey(old.execution_id, "extract"))
    assert copied is not None and original is not None
    assert copied.started_at == original.started_at  # upstream of --from: not run again
    ghost = runner.invoke(app, ["rerun", "base", "--from", "ghost"])
    assert ghost.exit_code == 2 and "has no node 'ghost'" in ghost.output
    background = runner.invoke(app, ["rerun", "base", "--from", "load", "--no-wait"])
    assert background.exit_code == 2 and "--no-wait needs --remote" in background.output


def test_asl_run_type_picks_the_quotas(runner: CliRunner, tmp_path: Path) -> None:
    # 7,000 Pass iterations: 28,006 history events, over Standard's 25,000 cap.
    m = tmp_path / "map.json"
    m.write_text(
        json.dumps(
            {
                "StartAt": "M",
                "States": {
                    "M": {
                        "Type": "Map",
                        "ItemProcessor": {
                            "StartAt": "I",
                            "States": {"I": {"Type": "Pass", "End": True}},
                        },
                        "ResultSelector": {"n.$": "States.ArrayLength($)"},
                        "End": True,
                    }
                },
            }
        )
    )
    items = json.dumps(list(range(7000)))
    res = runner.invoke(app, ["asl", "run", str(m), "--input", items])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["cause"] == (
        "The execution reached the maximum number of history events (25000)."
    )
    res = runner.invoke(app, ["asl", "run", str(m), "--input", items, "--type", "express"])
    assert res.exit_code == 0 and json.loads(res.stdout)["output"] == {"n": 7000}
    res = runner.invoke(app, ["asl", "run", str(m), "--type", "bogus"])
    assert res.exit_code == 2 and "machine_type must be" in json.loads(res.stdout)["cause"]

"""Every failure located (issue 13, item 2): the CLI's ``run``, ``executions show`` and
live view name the node, the Map item and the attempt, on one line, escaped; a Map's row
counts its items; the API's read models carry the same one-line message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stepdag.api.models import Execution, Node
from stepdag.cli.main import app
from stepdag.cli.views import live_view, log_view
from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore

WHEN = """
from stepdag import Workflow

wf = Workflow("whenwf")

@wf.node
def src() -> list[int]:
    return [1, 2, 3]

@wf.node(when=lambda src: src[99] > 0)
def load(src: list[int]) -> int:
    return 1
"""

MAP = """
from stepdag import Retry, Workflow

wf = Workflow("mapwf")

@wf.node
def src() -> list[int]:
    return list(range(8))

@wf.node(map_over="src", retry=Retry(max_attempts=2, interval=1, errors=("ValueError",)))
def each(src: int) -> int:
    if src == 1:
        raise ValueError(
            '{"errorMessage": "bad \\x1b[31mred\\x1b[0m item\\rX", "errorType": "KeyError"}'
        )
    return src
"""


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.setenv("STEPDAG_POLL_SECONDS", "0.02")
    monkeypatch.delenv("STEPDAG_REMOTE", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _module(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return f"{path}:wf"


def _no_control(text: str) -> None:
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), repr(text)


def test_a_raising_when_condition_names_the_node_and_the_condition(
    runner: CliRunner, tmp_path: Path
) -> None:
    ref = _module(tmp_path, "whenwf", WHEN)
    expected = re.compile(
        r"node 'load': when= condition <lambda> \(whenwf\.py:10\) raised IndexError: "
        r"list index out of range"
    )
    res = runner.invoke(app, ["run", ref, "--name", "w1"])
    assert res.exit_code == 1, res.output
    assert expected.search(res.output), res.output
    assert '"errorMessage"' not in res.output  # the Lambda-style cause is read, not printed
    shown = runner.invoke(app, ["executions", "show", "w1"])
    assert shown.exit_code == 0 and expected.search(shown.output), shown.output
    with SqliteStore(tmp_path / "home" / "stepdag.db") as store:
        rec = store.get_execution("w1", workflow="whenwf")
        load = store.get_node(NodeKey(rec.execution_id, "load"))
    api = Execution.of(rec)
    assert api.error == "IndexError"  # the error name a Retry/Catch matches is kept
    assert api.message is not None and expected.search(api.message)
    # The node's own record says it too: its row, the failures list, the API's node.
    row = (
        "node 'load', attempt 1: when= condition <lambda> (whenwf.py:10) raised IndexError: "
        "list index out of range"
    )
    assert row in res.output and row in shown.output, res.output
    assert load is not None and Node.of(load).message == row


def test_a_failed_map_item_is_counted_and_listed_with_index_attempt_and_one_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    ref = _module(tmp_path, "mapwf", MAP)
    res = runner.invoke(app, ["run", ref, "--name", "m1"])
    assert res.exit_code == 1, res.output
    _no_control(res.output)
    assert "PENDING" not in res.output and "8 items" not in res.output, res.output
    assert re.search(r"each\s+FAILED\s+-\s+\S+\s+items 7/8 done, 1 failed", res.output)
    line = r"node 'each' item 1, attempt 2: KeyError: bad \x1b[31mred\x1b[0m item\x0dX"
    assert line in res.output, res.output
    assert f"error {line}" in res.output  # the execution's error, located
    shown = runner.invoke(app, ["executions", "show", "m1"])
    assert shown.exit_code == 0 and line in shown.output, shown.output
    assert "errorMessage" not in shown.output
    verbose = runner.invoke(app, ["executions", "show", "m1", "--verbose"])
    _no_control(verbose.output)
    # The full cause stays available, escaped.
    assert 'cause: {"errorMessage": "bad \\x1b[31mred' in verbose.output, verbose.output
    with SqliteStore(tmp_path / "home" / "stepdag.db") as store:
        ex = store.get_execution("m1", workflow="mapwf")
        nodes = store.list_nodes(ex.execution_id, include_items=True)
    item = next(n for n in nodes if n.map_index == 1)
    assert Node.of(item).message == line


def _render(renderable: object) -> str:
    console = Console(width=160, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_log_lines_escape_terminal_control_codes() -> None:
    text = _render(
        log_view(
            [
                {
                    "timestamp": "t",
                    "level": "ERROR",
                    "node": "n",
                    "message": "\x1b[2Jgone\rback\x9b",
                    "exception": "Traceback\n  \x1b]0;title\x07",
                }
            ]
        )
    )
    _no_control(text)
    assert "\\x1b[2Jgone\\x0dback\\x9b" in text
    assert "Traceback\n      \\x1b]0;title\\x07" in text


def test_a_lambda_style_cause_reads_as_type_colon_message() -> None:
    from stepdag.core.failures import message, one_line

    cause = '{"errorMessage":"list index out of range","errorType":"IndexError"}'
    assert one_line("IndexError", cause) == "IndexError: list index out of range"
    # a node re-raising a downstream Lambda's error: the innermost error is shown
    nested = (
        '{"errorMessage":"{\\"errorMessage\\": \\"no key\\", \\"errorType\\": \\"KeyError\\"}",'
    )
    nested += '"errorType":"ValueError"}'
    assert one_line("ValueError", nested) == "KeyError: no key"
    # not a Lambda document: error and cause as they are
    assert one_line("RuntimeError", "boom") == "RuntimeError: boom"
    assert one_line("X", "{not json") == "X: {not json"
    assert one_line("RuntimeError", "first\nsecond") == "RuntimeError: first …"
    assert message("RuntimeError", "first\nsecond") == "RuntimeError: first\nsecond"
    assert len(one_line("E", "x" * 500)) == 200


def test_a_live_view_counts_items_while_they_run() -> None:
    from datetime import UTC, datetime

    from stepdag.core.status import NodeStatus
    from stepdag.runtime.records import ExecutionRecord, NodeRecord

    now = datetime.now(UTC)
    ex = ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=now)
    statuses = [NodeStatus.SUCCEEDED] * 3 + [NodeStatus.RUNNING] * 2 + [NodeStatus.FAILED]
    nodes = [NodeRecord(execution_id="e", node="m", items=8, started_at=now)]
    nodes += [
        NodeRecord(
            execution_id="e", node="m", map_index=i, status=s, attempts=1, started_at=now, error="E"
        )
        for i, s in enumerate(statuses)
    ]
    shown = _render(live_view(ex, nodes))
    assert re.search(r"m\s+RUNNING\s+-\s+\S+\s+items 3/8 done, 2 running, 1 retrying", shown)
    assert "node 'm' item 5, attempt 1: E (retrying)" in shown


def test_replay_escapes_control_codes_and_markup_in_errors_inputs_and_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from stepdag.cli import replay as replay_cli
    from stepdag.runtime.records import ExecutionRecord
    from stepdag.runtime.replay import ReplayResult

    console = Console(width=160, record=True, force_terminal=True)
    monkeypatch.setattr(replay_cli, "out", console)
    ex = ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=datetime.now(UTC))
    try:
        raise RuntimeError("\x1b[2Jcleared\rover")
    except RuntimeError as exc:
        error = exc
    replay_cli.show_result(
        ReplayResult(ex, "n", None, "FAILED", inputs={"a": "[red]x[/red]"}, error=error)
    )
    replay_cli.show_result(ReplayResult(ex, "n", None, "SUCCEEDED", output="[bold]y[/bold]"))
    text = console.export_text()
    _no_control(text)
    assert "FAILED: RuntimeError: \\x1b[2Jcleared\\x0dover" in text
    assert '"[red]x[/red]"' in text and '"[bold]y[/bold]"' in text  # data, not markup


def test_the_live_view_updates_item_counts_on_each_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from stepdag.cli import session as session_cli
    from stepdag.core.status import NodeStatus, RunStatus
    from stepdag.runtime.records import ExecutionRecord, NodeRecord

    now = datetime.now(UTC)
    ex = ExecutionRecord(execution_id="e", name="e", workflow="w", started_at=now)
    whole = NodeRecord(execution_id="e", node="m", items=3, started_at=now)

    def item(i: int, status: NodeStatus) -> NodeRecord:
        return NodeRecord(execution_id="e", node="m", map_index=i, status=status, started_at=now)

    run, ok = NodeStatus.RUNNING, NodeStatus.SUCCEEDED
    polls = [
        (ex, [whole, item(0, run), item(1, run)]),
        (ex, [whole, item(0, ok), item(1, run), item(2, run)]),
        (
            replace(ex, status=RunStatus.SUCCEEDED, ended_at=now),
            [replace(whole, status=ok), item(0, ok), item(1, ok), item(2, ok)],
        ),
    ]
    seen = iter(polls)

    class Polled:
        label = "test"
        poll_seconds = 0.0

        def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]:
            return next(seen)

    console = Console(width=160, record=True, force_terminal=True)
    monkeypatch.setattr(session_cli, "out", console)
    monkeypatch.delenv("STEPDAG_NO_LIVE", raising=False)
    monkeypatch.setenv("STEPDAG_POLL_SECONDS", "0")
    rec, _ = session_cli.watch(Polled(), "e")  # type: ignore[arg-type]
    assert rec.status is RunStatus.SUCCEEDED
    text = console.export_text()
    assert "items 0/3 done, 2 running" in text, text
    assert "items 1/3 done, 2 running" in text, text

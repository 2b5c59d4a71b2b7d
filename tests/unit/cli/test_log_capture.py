"""``runtime/logs.py``, the capture behind ``stepdag logs``: the LOG_LEVEL filter, the
root logger's level put back, warnings printed once, and one file handle per capture."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepdag.runtime import logs
from stepdag.runtime.logs import FileLogSink, LogCapture, LogContext, MemoryLogSink

EXECUTION = "arn:aws:states:local:000000000000:execution:wf:e1"


def ctx(node: str = "n", index: int | None = None) -> LogContext:
    return LogContext(EXECUTION, "wf", node, index=index)


@pytest.fixture()
def bare_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The root logger of a plain CLI process: WARNING, no handler (pytest adds its own),
    so ``logging.lastResort`` is what prints warnings."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    saved = root.level
    root.setLevel(logging.WARNING)
    yield root
    root.setLevel(saved)


def messages(sink: MemoryLogSink) -> list[str]:
    return [str(e["message"]) for e in sink.entries]


def test_records_below_log_level_are_dropped_even_from_a_debug_logger(
    bare_root: logging.Logger,
) -> None:
    chatty = logging.getLogger("t.capture.debuggy")
    chatty.setLevel(logging.DEBUG)  # its own level lets DEBUG records through
    info = MemoryLogSink()
    with LogCapture(info, level="INFO").capture(ctx()):
        chatty.debug("debug line")
        chatty.info("info line")
    assert messages(info) == ["info line"]
    debug = MemoryLogSink()
    with LogCapture(debug, level="DEBUG").capture(ctx()):
        chatty.debug("debug line")
    assert messages(debug) == ["debug line"]
    errors = MemoryLogSink()
    with pytest.raises(ValueError), LogCapture(errors, level="CRITICAL").capture(ctx()):
        chatty.error("an error")
        raise ValueError("boom")
    assert messages(errors) == []  # "node invocation failed" is an ERROR line too


def test_the_root_level_is_lowered_only_while_captures_run(bare_root: logging.Logger) -> None:
    plain = logging.getLogger("t.capture.plain")  # NOTSET: inherits root's WARNING
    sink = MemoryLogSink()
    capture = LogCapture(sink, level="INFO")
    first_in, second_done = threading.Event(), threading.Event()
    levels: dict[str, int] = {}

    def other() -> None:
        with capture.capture(ctx("other")):
            first_in.set()
            second_done.wait(10)
        levels["after other"] = bare_root.level

    with capture.capture(ctx()):
        plain.info("kept")
        levels["during"] = bare_root.level
        thread = threading.Thread(target=other)
        thread.start()
        assert first_in.wait(10)
    levels["one still running"] = bare_root.level
    second_done.set()
    thread.join(10)
    assert messages(sink) == ["kept"]
    assert levels == {
        "during": logging.INFO,
        "one still running": logging.INFO,
        "after other": logging.WARNING,  # the last capture ended: put back
    }
    assert bare_root.level == logging.WARNING
    plain.info("not enabled again")
    assert not plain.isEnabledFor(logging.INFO)


def test_a_root_level_someone_changed_during_a_capture_is_left_alone(
    bare_root: logging.Logger,
) -> None:
    with LogCapture(MemoryLogSink(), level="INFO").capture(ctx()):
        bare_root.setLevel(logging.ERROR)  # e.g. the node's code configured logging
    assert bare_root.level == logging.ERROR


def test_warnings_outside_captures_print_once(
    bare_root: logging.Logger, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bare_root, "handlers", [])  # pytest adds its own for the test's call
    own_stream = io.StringIO()
    own = logging.getLogger("t.capture.own")  # propagates, and has its own handler
    own_handler = logging.StreamHandler(own_stream)
    own.addHandler(own_handler)
    powertools_like = logging.getLogger("t.capture.powertools")
    powertools_like.propagate = False  # capture hooks it too
    pt_stream = io.StringIO()
    pt_handler = logging.StreamHandler(pt_stream)
    powertools_like.addHandler(pt_handler)
    nobody = logging.getLogger("t.capture.nobody")  # no handler in its chain but ours
    try:
        with LogCapture(MemoryLogSink()).capture(ctx()):  # installs the routing handler
            pass
        assert logs._HANDLER in bare_root.handlers
        assert logs._HANDLER in powertools_like.handlers
        own.warning("own warning")
        powertools_like.warning("powertools warning")
        nobody.warning("orphan warning")
        nobody.info("orphan info")
    finally:
        own.removeHandler(own_handler)
        powertools_like.removeHandler(pt_handler)
        powertools_like.removeHandler(logs._HANDLER)
        bare_root.removeHandler(logs._HANDLER)
    stderr = capsys.readouterr().err
    assert own_stream.getvalue() == "own warning\n"
    assert pt_stream.getvalue() == "powertools warning\n"
    # Only the record no handler took goes to stderr, as logging.lastResort would do it.
    assert stderr == "orphan warning\n"


def test_a_capture_opens_its_file_once_and_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare_root: logging.Logger
) -> None:
    mkdirs: list[Path] = []
    real_mkdir = Path.mkdir

    def counting_mkdir(self: Path, *args: object, **kwargs: object) -> None:
        mkdirs.append(self)
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    sink = FileLogSink(tmp_path / "logs")
    folder = tmp_path / "logs" / "arn_aws_states_local_000000000000_execution_wf_e1"
    folder.mkdir(parents=True)  # so that one mkdir call is one (exist_ok) call
    monkeypatch.setattr(Path, "mkdir", counting_mkdir)
    log = logging.getLogger("t.capture.file")
    with LogCapture(sink).capture(ctx()):
        for i in range(50):
            log.info("line %d", i)
        writer = logs._ACTIVE.get()
        assert writer is not None
    assert len(mkdirs) == 1  # not once per line
    assert getattr(writer.writer, "_fh", "?") is None  # closed at the capture's end
    assert [e["message"] for e in sink.read(EXECUTION)] == [f"line {i}" for i in range(50)]
    with LogCapture(sink).capture(ctx("silent")):
        pass
    assert not (folder / "silent.jsonl").exists()  # a node that logs nothing leaves no file


def test_concurrent_captures_on_one_file_write_whole_lines(
    tmp_path: Path, bare_root: logging.Logger
) -> None:
    """Map items: one file per node, one handle per item, several sinks (a CLI run and a
    server in one process): long lines from many threads never interleave."""
    sinks = [FileLogSink(tmp_path / "logs"), FileLogSink(tmp_path / "logs")]
    log = logging.getLogger("t.capture.concurrent")
    items, lines = 8, 60
    barrier = threading.Barrier(items)
    big = "x" * 20_000  # beyond any write buffer: a split write would show

    def item(i: int) -> None:
        with LogCapture(sinks[i % 2]).capture(ctx("square", index=i)):
            barrier.wait(10)
            for n in range(lines):
                log.info("item %d line %d", i, n, extra={"blob": big})

    threads = [threading.Thread(target=item, args=(i,)) for i in range(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    raw = next((tmp_path / "logs").glob("*/square.jsonl")).read_text().splitlines()
    entries = [json.loads(line) for line in raw]  # every line is one whole document
    assert len(entries) == items * lines
    for i in range(items):
        mine = [e["message"] for e in entries if e["index"] == i]
        assert mine == [f"item {i} line {n}" for n in range(lines)]


def test_the_node_runner_does_not_import_log_capture_until_it_is_used() -> None:
    """The node-runner Lambda never captures (Powertools prints its lines): importing
    the runner and the Lambda app must not load runtime/logs.py (cold start)."""
    code = (
        "import sys\n"
        "import stepdag.handlers.app, stepdag.runtime.runner\n"
        "print('stepdag.runtime.logs' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr

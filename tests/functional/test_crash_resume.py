"""Crash safety: SIGKILL a running `stepdag run` at random points, resume, verify.

For each of 20 runs (seeded): start the CLI in a subprocess, wait until a random number
of nodes have completed (plus a random few ms, so kills also land mid-node and
mid-write), SIGKILL it, snapshot the store, `stepdag resume`, then check:

* the resumed execution SUCCEEDED and its output equals an uninterrupted run's;
* every node output that existed at the kill is byte-for-byte unchanged (never re-run,
  never stored twice) — the token inside each output identifies the invocation;
* every stored output comes from exactly one logged invocation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
WF = "tests.functional.workflows.crashy:wf"
RUNS = 20


def strip_tokens(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_tokens(v) for k, v in value.items() if k != "token"}
    if isinstance(value, list):
        return [strip_tokens(v) for v in value]
    return value


def cli(home: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STEPDAG_HOME": str(home), "CRASHY_LOG": str(log), "STEPDAG_NO_LIVE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "stepdag", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def completed(db: Path) -> int:
    """Succeeded node runs so far; -1 until the execution itself is recorded."""
    if not db.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            if con.execute("SELECT count(*) FROM executions").fetchone()[0] == 0:
                return -1
            row = con.execute("SELECT count(*) FROM nodes WHERE status = 'SUCCEEDED'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return -1


def finished(db: Path) -> bool:
    """The execution reached SUCCEEDED before the kill (so there was no crash to test)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        row = con.execute("SELECT status FROM executions WHERE name = 'victim'").fetchone()
    return row is not None and row[0] == "SUCCEEDED"


def outputs(store: SqliteStore, name: str) -> dict[str, Any]:
    rec = store.get_execution(name)
    out = {}
    for n in store.list_nodes(rec.execution_id, include_items=True):
        if n.status.value == "SUCCEEDED":
            out[f"{n.node}[{n.map_index}]" if n.map_index is not None else n.node] = n.output
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("ref")
    proc = cli(home, home / "log", "run", WF, "--input", '{"items": 4}', "--name", "ref")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    store = SqliteStore(home / "stepdag.db")
    return strip_tokens(store.get_execution("ref").output)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(RUNS))
def test_sigkill_then_resume(seed: int, reference: Any, tmp_path: Path) -> None:
    rng = random.Random(seed)
    log = tmp_path / "log"
    db = tmp_path / "stepdag.db"
    target = rng.randint(0, 10)  # nodes+items completed before the kill (12 in total)
    delay = rng.uniform(0, 0.03)
    for _ in range(4):
        proc = cli(tmp_path, log, "run", WF, "--input", '{"items": 4}', "--name", "victim")
        # Kill points are counted from the moment the execution is recorded (before that
        # there is nothing to resume: the CLI has not started the run).
        deadline = time.monotonic() + 60
        while completed(db) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        if not finished(db):
            break
        # On a loaded machine the run can finish inside the delay (or between its last
        # commit and its exit): no crash happened. Start over, fresh store, earlier kill.
        for path in tmp_path.iterdir():
            path.unlink()
        target, delay = target // 2, delay / 2
    else:
        pytest.fail("could not kill the run before it finished (machine too slow?)")

    store = SqliteStore(db)
    before = outputs(store, "victim")
    resume = cli(tmp_path, log, "resume", "victim", "--workflow", WF)
    _, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err.decode()

    after = outputs(store, "victim")
    for key, value in before.items():
        assert after[key] == value, f"{key} was re-run or overwritten after resume"
    final = store.get_execution("victim")
    assert final.status.value == "SUCCEEDED"
    assert strip_tokens(final.output) == reference

    tokens = [line.split()[1] for line in log.read_text().splitlines()]
    for key, value in after.items():
        token = value["token"] if isinstance(value, dict) else None
        if token is not None:
            assert tokens.count(token) == 1, f"{key}: output not from exactly one invocation"
    assert store.get_node(NodeKey(final.execution_id, "final")) is not None
    json.dumps(after)  # outputs are plain JSON

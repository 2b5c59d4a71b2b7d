"""Kill a running ``stepdag run`` mid-run, then look at what survived.

Shared by the crash test (``tests/functional/test_crash_resume.py``: 20 seeded kills in
``make test``) and the reliability benchmark (``benchmarks/reliability/crash.py``: 100).
The workflow (``tests/functional/workflows/crashy.py``) logs one token per invocation to
``$CRASHY_LOG`` and puts it in its output, so an output can be traced to the one
invocation that produced it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
WF = "tests.functional.workflows.crashy:wf"
INPUT = '{"items": 4}'
VICTIM = "victim"
KILL_ATTEMPTS = 4


def strip_tokens(value: Any) -> Any:
    """An output without its invocation tokens (comparable with another run's)."""
    if isinstance(value, dict):
        return {k: strip_tokens(v) for k, v in value.items() if k != "token"}
    if isinstance(value, list):
        return [strip_tokens(v) for v in value]
    return value


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``stepdag ARGS`` in a subprocess on the store in ``home`` (invocations: home/log);
    ``env`` adds to the environment (e.g. ``CRASHY_DELAY``)."""
    env = {
        **os.environ,
        "STEPDAG_HOME": str(home),
        "CRASHY_LOG": str(home / "log"),
        "STEPDAG_NO_LIVE": "1",
        **(env or {}),
    }
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
        row = con.execute("SELECT status FROM executions WHERE name = ?", (VICTIM,)).fetchone()
    return row is not None and row[0] == "SUCCEEDED"


def kill_mid_run(fresh_home: Callable[[int], Path], target: int, delay: float) -> Path | None:
    """Start the run, SIGKILL it once ``target`` node runs have completed (plus ``delay``
    seconds, so kills also land mid-node and mid-write); the home it died in.

    Kill points count from the moment the execution is recorded: before that the CLI
    has not started the run and there is nothing to resume.  On a loaded machine the run
    can finish inside the delay (or between its last commit and its exit): no crash
    happened, so it starts over in a fresh home with an earlier kill point.  None when
    every attempt finished first.
    """
    for attempt in range(KILL_ATTEMPTS):
        home = fresh_home(attempt)
        db = home / "stepdag.db"
        proc = cli(home, "run", WF, "--input", INPUT, "--name", VICTIM)
        deadline = time.monotonic() + 60
        while completed(db) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if not finished(db):
            return home
        target, delay = target // 2, delay / 2
    return None


def outputs(store: SqliteStore, name: str) -> dict[str, Any]:
    """Every stored output of execution ``name``: ``node`` or ``node[index]`` -> output."""
    rec = store.get_execution(name)
    return {
        n.node if n.map_index is None else f"{n.node}[{n.map_index}]": n.output
        for n in store.list_nodes(rec.execution_id, include_items=True)
        if n.status.value == "SUCCEEDED"
    }


def invocation_tokens(home: Path) -> list[str]:
    """The token of every invocation the workflow logged, in order."""
    return [line.split()[1] for line in (home / "log").read_text().splitlines()]


def invocations(home: Path) -> Counter[str]:
    """How many times each node (``node`` or ``node[index]``) was invoked."""
    return Counter(line.split()[0] for line in (home / "log").read_text().splitlines())


def reference_output(home: Path, timeout: float = 300) -> Any:
    """An uninterrupted run's final output, tokens stripped."""
    proc = cli(home, "run", WF, "--input", INPUT, "--name", "ref")
    _, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(err.decode())
    return strip_tokens(SqliteStore(home / "stepdag.db").get_execution("ref").output)

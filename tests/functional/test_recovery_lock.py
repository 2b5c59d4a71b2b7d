"""One recovery at a time: two `stepdag resume` of one execution at once, or a resume
while its run still lives in another process, are real concurrent processes here.

The loser is refused with one line and exit 2; the run is never corrupted: it ends
SUCCEEDED with an uninterrupted run's output, outputs stored before the crash are
untouched, and no node or item is invoked more than twice (once before the kill, once
by the one resume that ran).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from stepdag.runtime.sqlite import SqliteStore
from tests.support.crash import (
    VICTIM,
    WF,
    cli,
    completed,
    invocation_tokens,
    invocations,
    kill_mid_run,
    outputs,
    reference_output,
    strip_tokens,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return reference_output(tmp_path_factory.mktemp("ref"), timeout=120)


def ended(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out.decode(), err.decode()


def check_run(home: Path, reference: Any, before: dict[str, Any]) -> None:
    store = SqliteStore(home / "stepdag.db")
    final = store.get_execution(VICTIM)
    assert final.status.value == "SUCCEEDED", (final.error, final.cause)
    assert strip_tokens(final.output) == reference
    after = outputs(store, VICTIM)
    assert {k: after.get(k) for k in before} == before  # nothing re-run or overwritten
    tokens = invocation_tokens(home)
    for key, value in after.items():
        assert tokens.count(value["token"]) == 1 if isinstance(value, dict) else True, key
    assert max(invocations(home).values()) <= 2, invocations(home)


@pytest.mark.slow
def test_two_resumes_at_once_one_runs_the_other_is_refused(
    reference: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fresh(attempt: int) -> Path:
        home = tmp_path / f"try{attempt}"
        home.mkdir()
        return home

    home = kill_mid_run(fresh, 3, 0.0)
    assert home is not None, "could not kill the run before it finished"
    before = outputs(SqliteStore(home / "stepdag.db"), VICTIM)
    monkeypatch.setenv("CRASHY_DELAY", "0.3")  # the resumes overlap for seconds
    first = cli(home, "resume", VICTIM, "--workflow", WF)
    second = cli(home, "resume", VICTIM, "--workflow", WF)
    results = sorted([ended(first), ended(second)])
    (ok, _, _), (refused, _, message) = results
    assert (ok, refused) == (0, 2), results
    assert len(message.strip().splitlines()) == 1 and "Traceback" not in message, message
    check_run(home, reference, before)


@pytest.mark.slow
def test_a_resume_while_the_run_lives_is_refused(
    reference: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASHY_DELAY", "0.3")
    db = tmp_path / "stepdag.db"
    run = cli(tmp_path, "run", WF, "--input", '{"items": 4}', "--name", VICTIM)
    deadline = time.monotonic() + 60
    while completed(db) < 1 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    before = outputs(SqliteStore(db), VICTIM)
    code, _, message = ended(cli(tmp_path, "resume", VICTIM, "--workflow", WF))
    assert code == 2, message
    assert run.poll() is None, "the run ended before the resume was refused (machine too slow?)"
    assert "running" in message and len(message.strip().splitlines()) == 1, message
    assert ended(run)[0] == 0
    check_run(tmp_path, reference, before)

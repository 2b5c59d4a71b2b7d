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
import random
from pathlib import Path
from typing import Any

import pytest

from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore
from tests.support.crash import (
    VICTIM,
    WF,
    cli,
    invocation_tokens,
    kill_mid_run,
    outputs,
    reference_output,
    strip_tokens,
)

RUNS = 20


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return reference_output(tmp_path_factory.mktemp("ref"), timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(RUNS))
def test_sigkill_then_resume(seed: int, reference: Any, tmp_path: Path) -> None:
    rng = random.Random(seed)
    target = rng.randint(0, 10)  # nodes+items completed before the kill (12 in total)
    delay = rng.uniform(0, 0.03)

    def fresh(attempt: int) -> Path:
        home = tmp_path / f"try{attempt}"
        home.mkdir()
        return home

    home = kill_mid_run(fresh, target, delay)
    if home is None:
        pytest.fail("could not kill the run before it finished (machine too slow?)")

    store = SqliteStore(home / "stepdag.db")
    before = outputs(store, VICTIM)
    resume = cli(home, "resume", VICTIM, "--workflow", WF)
    _, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err.decode()

    after = outputs(store, VICTIM)
    for key, value in before.items():
        assert after[key] == value, f"{key} was re-run or overwritten after resume"
    final = store.get_execution(VICTIM)
    assert final.status.value == "SUCCEEDED"
    assert strip_tokens(final.output) == reference

    tokens = invocation_tokens(home)
    for key, value in after.items():
        token = value["token"] if isinstance(value, dict) else None
        if token is not None:
            assert tokens.count(token) == 1, f"{key}: output not from exactly one invocation"
    assert store.get_node(NodeKey(final.execution_id, "final")) is not None
    json.dumps(after)  # outputs are plain JSON

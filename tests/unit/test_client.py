"""The public Python surface (``stepdag.run``, ``stepdag.connect``): a local run to the end,
and a real ``stepdag serve`` (in-process, free port) driven through a ``Deployment``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import stepdag
from stepdag.api.service import LocalExecutionService
from stepdag.cli.client import NoOutput
from stepdag.client import Deployment, Run, RunTimeout, connect
from stepdag.core.status import RunStatus
from stepdag.runtime.sqlite import SqliteStore
from tests.support.api_server import serving
from tests.unit.api import workflows


def test_run_locally_to_the_end_then_read_and_rerun(tmp_path: Path) -> None:
    run = stepdag.run(workflows.demo, {"x": 3}, name="d1", home=tmp_path)
    assert isinstance(run, Run)
    assert run.status is RunStatus.SUCCEEDED and run.succeeded and run.done
    assert run.output() == 8
    assert run.output("first") == 4
    assert {n.node for n in run.nodes()} == {"first", "second"}
    again = run.rerun("second", name="d1-again")
    assert again.name == "d1-again" and again.wait(timeout=30).output() == 8
    # The store is durable: a new handle on the same home reads the run back.
    with connect(workflows=[workflows.demo], home=tmp_path) as local:
        assert local.execution("d1").output() == 8
        assert {r.name for r in local.executions(workflow="api_demo")} == {"d1", "d1-again"}


def test_a_failed_run_has_no_output_and_says_why(tmp_path: Path) -> None:
    workflows.FAIL["on"] = True
    run = stepdag.run(workflows.flaky, {}, name="f1", home=tmp_path)
    assert run.status is RunStatus.FAILED
    assert run.error == "RuntimeError"
    with pytest.raises(NoOutput, match="'f1' is FAILED"):
        run.output()


def test_import_stepdag_loads_neither_the_client_nor_the_cli() -> None:
    code = (
        "import sys, stepdag; "
        "print(sorted(m for m in sys.modules if m.startswith(('stepdag.client', 'stepdag.cli'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    assert stepdag.run is stepdag.client.run  # resolved on first use


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[str]:
    workflows.GATE.clear()
    store = SqliteStore(tmp_path / "server" / "api.db")
    service = LocalExecutionService(store, workflows.ALL)
    with serving(service) as url:
        try:
            yield url
        finally:
            workflows.GATE.set()
    service.wait_idle()
    store.close()


def test_deployment_over_the_rest_api(api: str, tmp_path: Path) -> None:
    with connect(api, home=tmp_path / "unused") as remote:
        assert isinstance(remote, Deployment)
        first = remote.start("api_demo", {"x": 1}, idempotency_key="k-1")
        second = remote.start("api_demo", {"x": 1}, idempotency_key="k-1")
        assert first.execution_id == second.execution_id  # one execution for one key
        assert first.wait(timeout=30, poll=0.02).output() == 4
        gated = remote.start("api_gated", {}, name="g1")
        with pytest.raises(RunTimeout, match="'g1' \\(api_gated\\) is still RUNNING"):
            gated.wait(timeout=0.1, poll=0.02)
        assert gated.cancel().status is RunStatus.ABORTED
        assert remote.execution("g1").status is RunStatus.ABORTED
    assert not (tmp_path / "unused").exists()  # a remote target touches no local store

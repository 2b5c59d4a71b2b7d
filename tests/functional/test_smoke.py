"""``scripts/smoke.py --url`` against a real ``stepdag serve`` (in-process, free port):
ready, one etl run to SUCCEEDED, one JSON line; an unknown workflow fails in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from statemachines import etl
from stepdag.api.service import LocalExecutionService
from stepdag.core.status import RunStatus
from stepdag.runtime.sqlite import SqliteStore
from tests.support.api_server import serving

SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "smoke.py"


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, LocalExecutionService]]:
    store = SqliteStore(tmp_path / "api.db")
    service = LocalExecutionService(store, [etl.wf])
    with serving(service) as url:
        yield url, service
    service.wait_idle()
    store.close()


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SMOKE), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_smoke_passes_against_stepdag_serve(served: tuple[str, LocalExecutionService]) -> None:
    url, service = served
    done = smoke("--url", url, "--key", "smoke-ci-1", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["ok"] is True and result["target"] == url
    assert result["health"]["status"] == 200
    assert result["health"]["checks"]["store"] is True
    assert result["run"]["workflow"] == "etl"
    assert result["run"]["execution"] == "smoke-ci-1"
    assert result["run"]["status"] == "SUCCEEDED"
    # The run is really on the server, on the sample input's 25 records.
    rec = service.get("smoke-ci-1", tenant=None)
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["loaded"] + rec.output["invalid"] == 25

    # The same key again joins that run: no second execution.
    again = smoke("--url", url, "--key", "smoke-ci-1", "--timeout", "60")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["run"]["execution_id"] == result["run"]["execution_id"]
    assert (
        len(
            service.list_executions(
                workflow="etl", status=None, tenant=None, limit=10, next_token=None
            ).items
        )
        == 1
    )


def test_an_unknown_workflow_fails_in_one_line(
    served: tuple[str, LocalExecutionService],
) -> None:
    url, _ = served
    done = smoke("--url", url, "--workflow", "nope")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["ok"] is False and result["step"] == "start"
    assert "nope" in result["reason"]
    assert result["health"]["status"] == 200  # it got past readiness
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"smoke: {url}: start failed:"), done.stderr


def test_nothing_listening_fails_at_health(tmp_path: Path) -> None:
    done = smoke("--url", "http://127.0.0.1:9/", "--timeout", "5")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["step"] == "health" and "/v1/health/ready" in result["reason"]

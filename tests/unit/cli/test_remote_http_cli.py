"""The CLI with ``--remote URL`` against a real ``stepdag serve`` server (in-process, on a
free port): the same views as locally, problem documents as clean errors, and auth."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepdag.api.service import LocalExecutionService
from stepdag.cli import rest
from stepdag.cli.client import RemoteError, TargetError
from stepdag.cli.main import app
from stepdag.cli.rest import HttpClient, api_base, default_auth
from stepdag.core.errors import StepdagError
from stepdag.runtime.errors import StoreUnavailable
from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore
from tests.support.api_server import serving
from tests.unit.api import workflows

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, LocalExecutionService]]:
    workflows.GATE.clear()
    workflows.FAIL["on"] = True
    store = SqliteStore(tmp_path / "server" / "api.db")
    service = LocalExecutionService(store, workflows.ALL)
    with serving(service) as url:
        try:
            yield url, service
        finally:
            workflows.GATE.set()
    service.wait_idle()
    store.close()


@pytest.fixture()
def runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: tuple[str, object]
) -> CliRunner:
    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "client-home"))  # must stay unused
    monkeypatch.setenv("STEPDAG_NO_LIVE", "1")
    monkeypatch.setenv("STEPDAG_POLL_SECONDS", "0.02")
    monkeypatch.setenv("STEPDAG_REMOTE", server[0])  # the environment selects the target
    monkeypatch.delenv("STEPDAG_TOKEN", raising=False)
    monkeypatch.chdir(REPO)
    return CliRunner()


def test_run_polls_to_the_end_and_shows_the_local_views(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", "api_demo", "-i", '{"x": 3}', "--name", "d1"])
    assert res.exit_code == 0, res.output
    assert "execution d1 (api_demo) started" in res.output
    assert "SUCCEEDED" in res.output and "first" in res.output and "second" in res.output
    show = runner.invoke(app, ["executions", "show", "d1"])
    assert show.exit_code == 0 and "timeline" in show.output and "second" in show.output
    out = runner.invoke(app, ["executions", "output", "d1"])
    assert json.loads(out.stdout) == 8
    node = runner.invoke(app, ["executions", "output", "d1", "first"])
    assert json.loads(node.stdout) == 4
    listing = runner.invoke(app, ["executions", "list", "--workflow", "api_demo"])
    assert "d1" in listing.output and "SUCCEEDED" in listing.output
    assert not (tmp_path / "client-home").exists()  # everything went over HTTP


def test_same_output_as_local_for_the_same_records(
    runner: CliRunner, server: tuple[str, LocalExecutionService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rendering path: the remote view of a run equals the local view of the server's
    own store (the server's home), durations and all."""
    assert runner.invoke(app, ["run", "api_demo", "-i", "{}", "--name", "same"]).exit_code == 0
    remote = runner.invoke(app, ["executions", "show", "same"]).output
    store_path = server[1].store.path  # type: ignore[attr-defined]
    monkeypatch.setenv("STEPDAG_HOME", str(store_path.parent))
    monkeypatch.delenv("STEPDAG_REMOTE")
    (store_path.parent / "stepdag.db").symlink_to(store_path)
    local = runner.invoke(app, ["executions", "show", "same"]).output
    assert remote == local


def test_no_wait_idempotency_key_and_cancel(runner: CliRunner) -> None:
    start = ["run", "api_gated", "-i", "{}", "--idempotency-key", "k-1", "--no-wait"]
    first = runner.invoke(app, start)
    assert first.exit_code == 0, first.output
    assert "execution k-1 (api_gated) started" in first.output
    assert "id arn:aws:states:local:000000000000:execution:api_gated:k-1" in first.output
    again = runner.invoke(app, start)
    assert again.exit_code == 0 and "already exists" in again.output
    listing = runner.invoke(app, ["executions", "list", "--workflow", "api_gated"])
    assert listing.output.count("k-1") == 1  # one execution for the two starts
    other = runner.invoke(app, ["run", "api_gated", "-i", '{"x": 1}', "--idempotency-key", "k-1"])
    assert other.exit_code == 2 and "different input" in other.output
    cancel = runner.invoke(app, ["cancel", "k-1"])
    assert cancel.exit_code == 0, cancel.output
    assert "ABORTED" in cancel.output
    twice = runner.invoke(app, ["cancel", "k-1"])
    assert twice.exit_code == 2 and "already ended ABORTED" in twice.output


def test_failed_run_exits_1_then_redrive_succeeds(runner: CliRunner) -> None:
    res = runner.invoke(app, ["run", "api_flaky", "-i", "{}", "--name", "f1"])
    assert res.exit_code == 1 and "RuntimeError" in res.output and "boom" in res.output
    workflows.FAIL["on"] = False
    again = runner.invoke(app, ["redrive", "f1"])
    assert again.exit_code == 0, again.output
    assert "redrive #1" in again.output and "SUCCEEDED" in again.output
    assert "redrives 1" in runner.invoke(app, ["executions", "show", "f1"]).output


def test_problem_documents_become_clean_errors(runner: CliRunner) -> None:
    cases = [
        (["executions", "show", "ghost"], "no execution with id or name 'ghost' (HTTP 404)"),
        (["run", "nope", "-i", "{}"], "no workflow named 'nope'"),
        (["executions", "list", "--next-token", "garbage"], "HTTP 400"),
        # Refused by the CLI before any request: the start rules (stepdag.core.inputs).
        (["run", "api_demo", "-i", "{}", "--name", "bad name!"], "execution name 'bad name!'"),
        # Refused by the server: its problem document, as one line.
        (["rerun", "ghost", "--from", "first", "--name", "bad name!"], "query name: String"),
    ]
    for args, needle in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, (args, res.output)


def test_unreachable_api_and_logs_over_http_are_clean_errors(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["run", "api_demo", "-i", "{}", "--name", "l1"]).exit_code == 0
    logs = runner.invoke(app, ["logs", "l1"])
    assert logs.exit_code == 2 and "the REST API serves no logs" in logs.output
    # Options that exist: no --log-group, and an API URL works with log groups known.
    assert "STEPDAG_LOG_GROUPS" in logs.output and "--stack NAME" in logs.output
    assert "--log-group" not in logs.output and "--remote aws" not in logs.output
    monkeypatch.setenv("STEPDAG_REMOTE", "http://127.0.0.1:9")  # discard port: refused
    res = runner.invoke(app, ["executions", "list"])
    assert res.exit_code == 2
    assert "cannot reach the stepdag API at http://127.0.0.1:9/v1" in res.output
    bad = runner.invoke(app, ["executions", "list", "--remote", "ftp://x"])
    assert bad.exit_code == 2 and "--remote must be an API URL" in bad.output


def test_replay_over_the_api(runner: CliRunner) -> None:
    assert runner.invoke(app, ["run", "api_demo", "-i", '{"x": 5}', "--name", "r1"]).exit_code == 0
    ref = "tests/unit/api/workflows.py:demo"
    res = runner.invoke(app, ["replay", "r1", "second", "--workflow", ref])
    assert res.exit_code == 0, res.output
    assert "input first = 6" in res.output and "\n12\n" in res.output
    assert "output is the same as the recorded output" in res.output


def test_api_base_and_auth() -> None:
    assert api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert api_base("https://x.execute-api.eu-west-1.amazonaws.com/prod/") == (
        "https://x.execute-api.eu-west-1.amazonaws.com/prod/v1"
    )
    assert api_base("https://h/v1/") == "https://h/v1"
    assert default_auth("http://127.0.0.1:8000", token=None, region=None) is None
    # API Gateway's Cognito authorizer wants the raw ID token, no "Bearer " scheme.
    for given in ("tok.en.sig", "Bearer tok.en.sig", "bearer  tok.en.sig "):
        req = urllib.request.Request("https://h/v1/health")
        auth = default_auth("https://h/v1", token=given, region=None)
        assert auth is not None
        auth(req)
        assert req.get_header("Authorization") == "tok.en.sig", given


def test_sigv4_signs_execute_api_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    auth = default_auth(url, token=None, region=None)
    assert auth is not None
    client = HttpClient(url, auth=auth)
    req = urllib.request.Request(client.base + "/executions?limit=5", method="GET")
    auth(req)
    header = req.get_header("Authorization") or ""
    assert header.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in header  # region from the host
    assert req.get_header("X-amz-date")
    # The signature covers the body: another body, another signature.
    signed = []
    for body in (b'{"input": 1}', b'{"input": 2}'):
        r = urllib.request.Request(client.base + "/workflows/etl/executions", data=body)
        auth(r)
        signed.append(r.get_header("Authorization"))
    assert signed[0] != signed[1]


@pytest.fixture()
def static_host(tmp_path: Path) -> Iterator[str]:
    """A plain static file server (``python -m http.server``), i.e. a wrong --remote."""
    root = tmp_path / "static"
    (root / "v1" / "executions").mkdir(parents=True)  # a directory listing: 200 HTML
    (root / "v1" / "executions" / "x").write_text('{"hello": "world"}')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None  # it would print into the CLI output under test

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_host_that_is_not_the_api_is_a_clean_error(runner: CliRunner, static_host: str) -> None:
    html = runner.invoke(app, ["executions", "list", "--remote", static_host])
    assert html.exit_code == 2, html.output
    assert f"{static_host}/v1/executions did not answer like a stepdag API" in html.output
    assert "expected a JSON object, got '<!DOCTYPE HTML>" in html.output
    other_json = runner.invoke(app, ["executions", "show", "x", "--remote", static_host])
    assert other_json.exit_code == 2, other_json.output
    assert "did not answer like a stepdag API: Execution id: Field required" in (other_json.output)
    missing = runner.invoke(app, ["executions", "show", "nope", "--remote", static_host])
    assert missing.exit_code == 2 and "HTTP 404 from GET" in missing.output
    for res in (html, other_json, missing):  # one line each, whatever the page's size
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_aws_region_from_the_environment_does_not_sign_a_local_api(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an execute-api host, or a region given as --region, gets a SigV4 signature:
    an exported AWS_REGION must not sign requests to `stepdag serve` on loopback."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    signed: list[str] = []

    def fake_sigv4(region: str, credentials: object) -> rest.Auth:
        signed.append(region)
        return lambda req: None

    monkeypatch.setattr(rest, "sigv4", fake_sigv4)
    res = runner.invoke(app, ["executions", "list"])
    assert res.exit_code == 0, res.output
    assert signed == []
    explicit = runner.invoke(app, ["executions", "list", "--region", "eu-central-1"])
    assert explicit.exit_code == 0, explicit.output
    assert signed == ["eu-central-1"]  # a custom domain in front of an IAM-authorized API


def test_sigv4_without_boto3_is_a_clean_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "botocore.session", None)  # import raises ImportError
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    with pytest.raises(
        StepdagError, match=r"SigV4 signing needs boto3: pip install 'stepdag\[aws\]'"
    ):
        default_auth(url, token=None, region=None)
    res = runner.invoke(app, ["executions", "list", "--remote", url])
    assert res.exit_code == 2, res.output
    assert "SigV4 signing needs boto3" in res.output and "Traceback" not in res.output


def test_rerun_over_the_api(runner: CliRunner, server: tuple[str, LocalExecutionService]) -> None:
    """`rerun --remote URL`: POST …/rerun on the server, watched to its end like `run`."""
    service = server[1]
    assert runner.invoke(app, ["run", "api_demo", "-i", '{"x": 3}', "--name", "o1"]).exit_code == 0
    res = runner.invoke(app, ["rerun", "o1", "--from", "second", "--name", "o2"])
    assert res.exit_code == 0, res.output
    assert "execution o2 (api_demo) started: rerun of o1 from node 'second'" in res.output
    assert "SUCCEEDED" in res.output
    old, new = service.store.get_execution("o1"), service.store.get_execution("o2")
    assert (new.rerun_of, new.rerun_from, new.output) == (old.execution_id, "second", 8)
    # "first" is upstream of --from: copied from o1, not run again
    copied = service.store.get_node(NodeKey(new.execution_id, "first"))
    original = service.store.get_node(NodeKey(old.execution_id, "first"))
    assert copied is not None and original is not None
    assert copied.started_at == original.started_at
    show = runner.invoke(app, ["executions", "show", "o2"])
    assert f"rerun of {old.execution_id} from node second" in show.output
    quick = runner.invoke(app, ["rerun", "o1", "--from", "first", "--name", "o3", "--no-wait"])
    assert quick.exit_code == 0, quick.output
    assert "id arn:aws:states:local:000000000000:execution:api_demo:o3" in quick.output
    ghost = runner.invoke(app, ["rerun", "o1", "--from", "ghost"])
    assert ghost.exit_code == 2 and "has no node 'ghost'" in ghost.output
    taken = runner.invoke(app, ["rerun", "o1", "--from", "second", "--name", "o2"])
    assert taken.exit_code == 2 and "is taken" in taken.output


@pytest.mark.parametrize(
    ("failure", "needle"),
    [
        (StoreUnavailable("database is locked"), "database is locked (HTTP 503)"),
        (RuntimeError("a bug"), "unexpected error; see the service logs"),
    ],
)
def test_a_failing_server_exits_3_not_2(
    runner: CliRunner,
    server: tuple[str, LocalExecutionService],
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    needle: str,
) -> None:
    """A 5xx answer is the server's failure (3: retry later); a 4xx the caller's (2)."""

    def fail(*args: object, **kwargs: object) -> object:
        raise failure

    monkeypatch.setattr(server[1], "list_executions", fail)
    res = runner.invoke(app, ["executions", "list"])
    assert res.exit_code == 3, res.output
    assert needle in res.output and "Traceback" not in res.output
    typo = runner.invoke(app, ["executions", "show", "ghost"])
    assert typo.exit_code == 2 and "(HTTP 404)" in typo.output


def test_a_remote_that_never_answers_is_its_failure_a_closed_port_the_callers() -> None:
    """Nothing listening at the address (a typo, no `stepdag serve`): exit 2; a server
    that accepts and never answers (timed out): the remote's failure, exit 3."""
    from stepdag.cli.app import exit_code

    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()  # the kernel accepts the connection; nobody ever answers
        client = HttpClient(f"http://127.0.0.1:{mute.getsockname()[1]}", timeout=0.2)
        with pytest.raises(RemoteError) as hung:
            client.get("x")
    assert "cannot reach the stepdag API" in str(hung.value)
    assert not isinstance(hung.value, TargetError) and exit_code(hung.value) == 3
    with pytest.raises(TargetError) as refused:
        HttpClient("http://127.0.0.1:9").get("x")  # the discard port: refused
    assert exit_code(refused.value) == 2


def test_any_name_step_functions_accepts_runs_and_reads_back_over_http(
    runner: CliRunner,
) -> None:
    """Outside the old URL-safe subset, inside the one name rule: percent-encoded on the
    way (``@`` and non-ASCII), decoded by the server, the same run read back."""
    name = "run@2026-12-04(ü)'1'"
    res = runner.invoke(app, ["run", "api_demo", "-i", '{"x": 1}', "--name", name])
    assert res.exit_code == 0, res.output
    show = runner.invoke(app, ["executions", "show", name])
    assert show.exit_code == 0 and "SUCCEEDED" in show.output, show.output
    assert json.loads(runner.invoke(app, ["executions", "output", name]).stdout) == 4
    over = runner.invoke(app, ["run", "api_demo", "-i", json.dumps({"x": 1, "p": "a" * 300_000})])
    assert over.exit_code == 2 and "262,144 bytes" in over.output  # refused before sending

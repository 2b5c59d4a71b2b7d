"""The CLI's REST client never sends credentials to another origin on a redirect.

Real servers on loopback: ``api`` redirects, ``elsewhere`` records what it received.
urllib copies a request's headers onto the redirected request, so a Cognito token (or a
SigV4 ``Authorization`` and session token) went to whatever host a redirect named.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from typer.testing import CliRunner

from stepdag.cli.client import TargetError
from stepdag.cli.main import app
from stepdag.cli.rest import HttpClient, id_token, sigv4

EXECUTION = {
    "id": "arn:aws:states:local:000000000000:execution:wf:run-1",
    "name": "run-1",
    "workflow": "wf",
    "status": "SUCCEEDED",
    "started_at": "2026-12-01T10:00:00Z",
}


@contextmanager
def recording(answer: Any) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server answering ``answer(handler)``; yields its URL and every request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            answer(self)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def redirect_to(location: str, code: int = 302) -> Any:
    """Redirect to the same path (less a leading ``/old``) under ``location``."""

    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        h.send_header("Location", location + h.path.removeprefix("/old"))
        h.send_header("Content-Length", "0")
        h.end_headers()

    return answer


def execution(h: http.server.BaseHTTPRequestHandler) -> None:
    data = json.dumps(EXECUTION).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def test_a_token_is_not_sent_to_another_host_on_a_redirect() -> None:
    with recording(execution) as (elsewhere, received):
        with recording(redirect_to(localhost(elsewhere))) as (api, asked):
            client = HttpClient(api, auth=id_token("secret-token"))
            with pytest.raises(TargetError) as caught:
                client.get("run-1")
    assert asked and asked[0]["authorization"] == "secret-token"
    assert received == []  # not followed at all: nothing reaches the other host
    message = str(caught.value)
    assert localhost(elsewhere) in message and "another host" in message
    assert "secret-token" not in message


def test_sigv4_credentials_are_not_sent_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("botocore")
    from botocore.credentials import Credentials  # type: ignore[import-untyped]

    creds = Credentials("AKIDEXAMPLE", "secret", token="session-token")
    with recording(execution) as (elsewhere, received):
        with recording(redirect_to(elsewhere, 307)) as (api, asked):
            client = HttpClient(api, auth=sigv4("eu-west-1", creds))
            with pytest.raises(TargetError):
                client.get("run-1")
    assert asked[0]["authorization"].startswith("AWS4-HMAC-SHA256")
    assert asked[0]["x-amz-security-token"] == "session-token"
    assert received == []


def test_a_redirect_within_the_api_keeps_its_credentials() -> None:
    """Same scheme, host and port: followed, and the token goes along (re-applied)."""

    def moved(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/old/"):
            redirect_to(f"http://{h.headers['Host']}", 308)(h)
            return
        execution(h)

    with recording(moved) as (api, seen):
        client = HttpClient(api + "/old", auth=id_token("secret-token"))
        rec = client.get("run-1")
    assert rec.name == "run-1"
    assert [h["path"] for h in seen] == ["/old/v1/executions/run-1", "/v1/executions/run-1"]
    assert [h.get("authorization") for h in seen] == ["secret-token", "secret-token"]


def test_the_cli_says_so_in_one_line_and_exits_2() -> None:
    with recording(execution) as (elsewhere, received):
        with recording(redirect_to(localhost(elsewhere))) as (api, _):
            res = CliRunner().invoke(
                app, ["executions", "show", "run-1", "--remote", api, "--token", "secret-token"]
            )
    assert res.exit_code == 2, res.output
    assert "another host" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert received == []

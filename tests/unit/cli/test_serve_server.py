"""``stepdag serve``'s HTTP server over real sockets: concurrency (a backlog for bursts,
one resolver per request in flight), the request rules (Host allow-list, Origin check,
JSON-only bodies, the body cap) and clean problem documents for malformed requests."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stepdag.api.app import build_app
from stepdag.api.service import LocalExecutionService
from stepdag.cli.serve import MAX_BODY_BYTES, Server, make_server, to_event
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.api import workflows

START = "/v1/workflows/api_demo/executions"
JSON = {"Content-Type": "application/json"}


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[LocalExecutionService]:
    workflows.GATE.set()
    store = SqliteStore(tmp_path / "api.db")
    svc = LocalExecutionService(store, workflows.ALL)
    yield svc
    svc.wait_idle()
    store.close()


@pytest.fixture()
def server(service: LocalExecutionService) -> Iterator[Server]:
    with running(make_server(build_app(service), "127.0.0.1", 0)) as srv:
        yield srv


def send(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        kind = resp.getheader("Content-Type") or ""
        decoded = json.loads(data) if data and "json" in kind else data
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, decoded
    finally:
        conn.close()


def raw(server: Server, request: bytes) -> bytes:
    """Send bytes as they are (requests http.client would not write); read the answer."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def problem_of(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/problem+json" in head.lower()
    return status, json.loads(body)


# ---------------------------------------------------------------- concurrency


def test_a_burst_of_a_hundred_starts_is_answered_without_a_reset(
    server: Server, service: LocalExecutionService
) -> None:
    """The listen backlog was 5: a burst of 100 connections got 39 resets."""
    go = threading.Event()
    answers: list[int | str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        go.wait()
        body = json.dumps({"input": {"x": i}, "name": f"burst-{i}"}).encode()
        try:
            status, _, answer = send(server, "POST", START, body, JSON)
            # Its own execution, not another request's (see the serialisation test).
            result: int | str = status if answer["name"] == f"burst-{i}" else str(answer)
        except OSError as exc:
            result = type(exc).__name__
        with lock:
            answers.append(result)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    assert answers == [201] * 100
    service.wait_idle()
    page = service.list_executions(
        workflow="api_demo", status=None, tenant=None, limit=1000, next_token=None
    )
    assert len(page.items) == 100
    assert {r.status.value for r in page.items} == {"SUCCEEDED"}


def test_two_resolvers_share_the_request_in_progress_so_requests_take_turns(
    service: LocalExecutionService,
) -> None:
    """Why the server serialises *all* resolving, not per resolver: Powertools keeps the
    current event on its router class, so a second resolver's request replaces the
    first's under it (measured: with one resolver per thread, a start was answered with
    another client's execution).  Should Powertools stop doing this, one resolver per
    request becomes possible and this test says so."""
    first, second = build_app(service), build_app(service)
    seen: list[str] = []

    @first.get("/probe")  # type: ignore[untyped-decorator]
    def probe() -> dict[str, str]:
        second.resolve(to_event("GET", "/v1/health", {}, b""), None)  # another request
        seen.append(first.current_event.path)
        return {}

    first.resolve(to_event("GET", "/probe", {}, b""), None)
    assert seen == ["/v1/health"]


def test_parallel_reads_answer_their_own_arguments(
    server: Server, service: LocalExecutionService
) -> None:
    """What the serialisation prevents: route arguments (or the event) of one request
    handed to another -- a 500, or another execution's answer."""
    ids = []
    for i in range(8):
        rec, _ = service.start("api_demo", {"x": i}, name=f"par-{i}", tenant=None)
        ids.append(rec.name)
    service.wait_idle()
    mismatches: list[str] = []

    def reader(name: str) -> None:
        for _ in range(10):
            for path in (f"/v1/executions/{name}", f"/v1/executions/{name}/nodes/second/output"):
                status, _, body = send(server, "GET", path)
                got = body.get("name") or body.get("execution", "")
                if status != 200 or not str(got).endswith(name):
                    mismatches.append(f"{path}: {status} {body}")

    threads = [threading.Thread(target=reader, args=(n,)) for n in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert mismatches == []


# ---------------------------------------------------------------- Host and Origin


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.nip.io"])
def test_a_foreign_host_is_refused(server: Server, host: str) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 reads the API."""
    status, headers, body = send(server, "GET", "/v1/executions", headers={"Host": host})
    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == "host_not_allowed"
    assert host.split(":", maxsplit=1)[0] in body["detail"] and "--allow-host" in body["detail"]


def test_loopback_names_and_the_bound_address_are_allowed(server: Server) -> None:
    port = server.server_port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert send(server, "GET", "/v1/health", headers={"Host": host})[0] == 200, host


def test_allow_host_extends_the_list(service: LocalExecutionService) -> None:
    app = build_app(service)
    srv = make_server(app, "127.0.0.1", 0, allow_hosts=["box.lan", "other.lan:9000"])
    with running(srv):
        ok = {
            h: send(srv, "GET", "/v1/health", headers={"Host": h})[0]
            for h in ("box.lan", "box.lan:1234", "other.lan:9000", "other.lan:9001")
        }
    assert ok == {"box.lan": 200, "box.lan:1234": 200, "other.lan:9000": 200, "other.lan:9001": 403}


def test_two_host_headers_are_a_bad_request(server: Server) -> None:
    port = server.server_port
    answer = raw(
        server,
        f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n".encode(),
    )
    status, body = problem_of(answer)
    assert status == 400 and body["code"] == "bad_host"


def test_a_cross_site_post_is_refused_and_starts_nothing(
    server: Server, service: LocalExecutionService
) -> None:
    """A form on any web page can POST here (no preflight for a 'simple' request)."""
    for headers in (
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Origin": f"http://localhost:{server.server_port + 1}", **JSON},
    ):
        status, _, body = send(server, "POST", START, b'{"input": {}}', headers)
        assert (status, body["code"]) == (403, "origin_not_allowed"), headers
        assert headers["Origin"] in body["detail"]
    page = service.list_executions(
        workflow=None, status=None, tenant=None, limit=10, next_token=None
    )
    assert page.items == []


def test_same_origin_and_originless_posts_are_accepted(server: Server) -> None:
    port = server.server_port
    same = {"Origin": f"http://127.0.0.1:{port}", **JSON}
    assert send(server, "POST", START, b'{"input": {}}', same)[0] == 201
    alias = {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}", **JSON}
    assert send(server, "POST", START, b'{"input": {}}', alias)[0] == 201
    assert send(server, "POST", START, b'{"input": {}}', JSON)[0] == 201  # curl, the CLI


def test_allow_origin_admits_that_origin_and_answers_its_preflight(
    service: LocalExecutionService,
) -> None:
    origin = "http://console.example:3000"
    app = build_app(service, cors_origins=[origin])
    srv = make_server(app, "127.0.0.1", 0, allow_origins=[origin])
    with running(srv):
        status, headers, _ = send(srv, "POST", START, b'{"input": {}}', {"Origin": origin, **JSON})
        assert status == 201 and headers["access-control-allow-origin"] == origin
        other = {"Origin": "http://console.example:3001", **JSON}
        assert send(srv, "POST", START, b'{"input": {}}', other)[0] == 403


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x", None]
)
def test_state_changing_bodies_must_be_json(server: Server, kind: str | None) -> None:
    """text/plain was a 500; a form or no Content-Type was accepted (a CSRF vector)."""
    headers = {} if kind is None else {"Content-Type": kind}
    status, headers_out, body = send(server, "POST", START, b'{"input": {}}', headers)
    assert status == 415 and headers_out["content-type"] == "application/problem+json"
    assert body["code"] == "unsupported_media_type" and "application/json" in body["detail"]


def test_json_with_parameters_is_json(server: Server) -> None:
    headers = {"Content-Type": "Application/JSON; charset=utf-8"}
    assert send(server, "POST", START, b'{"input": {}}', headers)[0] == 201


def test_a_bodiless_post_needs_no_content_type(
    server: Server, service: LocalExecutionService
) -> None:
    service.start("api_demo", {}, name="done-1", tenant=None)
    service.wait_idle()
    status, _, body = send(server, "POST", "/v1/executions/done-1/cancel")
    assert status == 409 and body["code"] != "unsupported_media_type"


def test_a_body_over_the_cap_is_413_before_it_is_read(server: Server) -> None:
    size = MAX_BODY_BYTES + 1
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
        head = (
            f"POST {START} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode())  # the body is never sent: the answer must not wait for it
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, body = problem_of(answer)
    assert status == 413 and body["code"] == "body_too_large"
    assert str(size) in body["detail"] and str(MAX_BODY_BYTES) in body["detail"]


def test_a_body_under_the_cap_reaches_the_api(server: Server) -> None:
    """Between the API's input limit and the server's cap the API answers for itself."""
    padding = "x" * (MAX_BODY_BYTES // 2)
    body = json.dumps({"input": {"pad": padding}}).encode()
    status, _, answer = send(server, "POST", START, body, JSON)
    assert status != 413 or answer["code"] != "body_too_large"


@pytest.mark.parametrize("length", ["abc", "-5", "1, 2"])
def test_a_malformed_content_length_is_a_bad_request(server: Server, length: str) -> None:
    answer = raw(
        server,
        f"POST {START} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n".encode(),
    )
    status, body = problem_of(answer)
    assert status == 400 and body["code"] == "bad_content_length"


def test_a_chunked_body_is_refused_not_left_in_the_stream(server: Server) -> None:
    answer = raw(
        server,
        f"POST {START} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        'Transfer-Encoding: chunked\r\n\r\nd\r\n{"input": {}}\r\n0\r\n\r\n'.encode(),
    )
    status, body = problem_of(answer)
    assert status == 411 and body["code"] == "length_required"
    assert answer.count(b"HTTP/1.1 ") == 1  # the chunks were not read as a next request


def test_a_five_thousand_digit_integer_is_a_clean_400(server: Server) -> None:
    body = b'{"input": {"n": ' + b"9" * 5000 + b"}}"
    status, _, answer = send(server, "POST", START, body, JSON)
    assert status == 400 and answer["code"] == "invalid_request"
    assert "digits" in answer["detail"]


# ---------------------------------------------------------------- methods, malformed requests


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_unsupported_methods_are_405_problems(server: Server, method: str) -> None:
    status, headers, body = send(server, method, "/v1/health")
    assert status == 405 and headers["content-type"] == "application/problem+json"
    assert body["code"] == "method_not_allowed" and method in body["detail"]
    assert "GET" in headers["allow"] and "TRACE" not in headers["allow"]


def test_malformed_requests_are_problem_documents(server: Server) -> None:
    status, body = problem_of(raw(server, b"GET /v1/health extra HTTP/1.1\r\n\r\n"))
    assert status == 400 and body["code"] == "bad_request"
    long_header = b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n"
    status, body = problem_of(raw(server, long_header))
    assert status == 431 and body["status"] == 431


def test_http11_without_host_is_a_bad_request(server: Server) -> None:
    status, body = problem_of(raw(server, b"GET /v1/health HTTP/1.1\r\n\r\n"))
    assert status == 400 and body["code"] == "bad_host"


def test_serve_refuses_an_allow_option_that_is_not_a_host_or_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from stepdag.cli.main import app

    monkeypatch.setenv("STEPDAG_HOME", str(tmp_path / "home"))
    empty = tmp_path / "wf"
    empty.mkdir()
    for option, value in (("--allow-origin", "console.example"), ("--allow-host", "a/b")):
        res = CliRunner().invoke(
            app, ["serve", "--port", "0", "--directory", str(empty), option, value]
        )
        assert res.exit_code == 2, res.output
        assert value in res.output and "Traceback" not in res.output


def test_answers_are_not_held_back_by_nagles_algorithm(server: Server) -> None:
    """Headers and body are two writes: with Nagle on, the body of every answer on a
    kept-alive connection waited for the client's delayed ACK (~40 ms each)."""
    flags: list[int] = []
    handler = server.RequestHandlerClass
    setup = handler.setup

    def spy(self: Any) -> None:
        setup(self)
        flags.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    handler.setup = spy  # type: ignore[method-assign]
    try:
        assert send(server, "GET", "/v1/health")[0] == 200
    finally:
        handler.setup = setup  # type: ignore[method-assign]
    assert flags and all(flags)

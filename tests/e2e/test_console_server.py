"""The console's server side without a browser: the SSE stream read over raw HTTP,
the static files ``stepdag serve`` answers, and ``stepdag console export``."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import urlopen

from typer.testing import CliRunner

from stepdag import console
from stepdag.api.service import LocalExecutionService
from stepdag.cli.main import app
from stepdag.cli.serve import Server
from tests.e2e import workflows
from tests.e2e.harness import node_status, wait_for


class Stream:
    """A raw HTTP/1.1 client for an event stream: parses ``event:``/``data:`` frames."""

    def __init__(self, base: str, target: str) -> None:
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        self.sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines if x)}

    def _until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"stream closed before {sep!r}; had {self.buf!r}")
            self.buf += chunk
        block, self.buf = self.buf.split(sep, 1)
        return block

    def next(self) -> tuple[str, Any, str | None]:
        """The next event (name, decoded data, id), skipping comments and ``retry:``."""
        while True:
            fields: dict[str, str] = {}
            for line in self._until(b"\n\n").decode().split("\n"):
                if line and not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    fields[key] = value
            if "event" in fields:
                return fields["event"], json.loads(fields["data"]), fields.get("id")

    def closed(self, *, drain: bool = False) -> bool:
        """True once the server has closed the connection (EOF) within the timeout, with
        nothing sent before it (``drain``: whatever comes before EOF is dropped)."""
        try:
            while self.sock.recv(65536):
                if not drain:
                    return False
            return not self.buf or drain
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def events_url(execution_id: str) -> str:
    return f"/v1/executions/{quote(execution_id, safe='')}/events"


def only_event(url: str, execution_id: str) -> tuple[str, Any]:
    """The one event of a stream that must end after it: (name, data)."""
    stream = Stream(url, events_url(execution_id))
    try:
        name, data, _ = stream.next()
        assert stream.closed(), f"the stream goes on after {name!r}"
        return name, data
    finally:
        stream.close()


def statuses(snapshot: dict[str, Any]) -> dict[str, str]:
    """Whole-node statuses (not Map items) in a snapshot event."""
    return {n["node"]: n["status"] for n in snapshot["nodes"] if n["map_index"] is None}


def request_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def test_stream_sends_a_snapshot_per_change_then_end_and_closes(
    service: LocalExecutionService, served: tuple[str, Server]
) -> None:
    url, _ = served
    rec, _ = service.start("console_live", {"n": 2}, name="sse-1", tenant=None)
    wait_for(lambda: node_status(service, rec.execution_id, "extract") == "RUNNING")
    stream = Stream(url, events_url(rec.execution_id))
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in stream.headers
        name, data, first_id = stream.next()
        assert name == "snapshot"
        assert data["execution"]["status"] == "RUNNING"
        assert {n["node"]: n["status"] for n in data["nodes"]} == {"extract": "RUNNING"}

        workflows.GATES["extract"].set()  # audit and profile stay blocked: a new state
        seen = [stream.next()]
        while statuses(seen[-1][1]).get("extract") != "SUCCEEDED":
            seen.append(stream.next())
        assert seen[-1][0] == "snapshot"
        assert seen[-1][1]["execution"]["status"] == "RUNNING"
        assert statuses(seen[-1][1])["audit"] == "RUNNING"
        workflows.release_all()
        while seen[-1][0] != "end":
            seen.append(stream.next())
        ids = [int(first_id or 0)] + [int(i or 0) for _, _, i in seen]
        assert ids == sorted(set(ids)), "event ids increase"
        final = seen[-1][1]
        assert final["execution"]["status"] == "SUCCEEDED"
        assert statuses(final) == dict.fromkeys(
            ("extract", "clean", "audit", "profile", "publish"), "SUCCEEDED"
        )
        assert sum(n["map_index"] is not None for n in final["nodes"]) == 2  # the Map items
        assert stream.closed(), "the stream closes after its end event"
    finally:
        stream.close()


def test_stream_of_a_finished_run_is_one_end_event(
    service: LocalExecutionService, served: tuple[str, Server]
) -> None:
    url, _ = served
    rec, _ = service.start("console_quick", {"x": 5}, name="done-1", tenant=None)
    service.wait_idle()
    name, data = only_event(url, rec.execution_id)
    assert (name, data["execution"]["output"]) == ("end", 5)


def test_stream_of_an_unknown_execution_is_a_problem(served: tuple[str, Server]) -> None:
    url, _ = served
    name, data = only_event(url, "no-such-run")
    assert name == "problem"
    assert data["status"] == 404 and "no-such-run" in data["detail"]


def test_stream_ends_when_the_client_goes_away(
    service: LocalExecutionService, served: tuple[str, Server]
) -> None:
    url, _ = served
    before = request_threads()
    rec, _ = service.start("console_live", {}, name="gone-1", tenant=None)
    stream = Stream(url, events_url(rec.execution_id))
    assert stream.next()[0] == "snapshot"
    # This stream's own thread(s), by identity: an earlier test's threads ending late
    # must not count.
    mine = request_threads() - before
    assert mine and all(t.is_alive() for t in mine)
    stream.close()  # the run is still blocked: only the client's leaving can end the stream
    wait_for(
        lambda: not any(t.is_alive() for t in mine), timeout=10, what="the stream thread to end"
    )


def test_closing_the_server_ends_open_streams(
    service: LocalExecutionService, served: tuple[str, Server]
) -> None:
    url, server = served
    rec, _ = service.start("console_live", {}, name="shutdown-1", tenant=None)
    stream = Stream(url, events_url(rec.execution_id))
    try:
        assert stream.next()[0] == "snapshot"
        started = time.monotonic()
        server.shutdown()
        server.server_close()  # the fixture's second close is harmless
        assert stream.closed(drain=True)  # a last snapshot may come first
        # The run is still blocked: only the server's closing ended it.  The bound tells
        # "ended by close" from "never ends", with room for a loaded machine.
        assert time.monotonic() - started < 15
    finally:
        stream.close()


def test_serve_answers_the_console_files_and_its_local_config(
    served: tuple[str, Server],
) -> None:
    url, _ = served
    with urlopen(f"{url}/") as answer:
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.read() == console.asset("index.html")
    with urlopen(f"{url}/app.js") as answer:
        assert answer.headers["Content-Type"].startswith("text/javascript")
    with urlopen(f"{url}/config.json") as answer:
        assert json.load(answer) == {"api": "", "events": True}
    with urlopen(f"{url}/v1/health") as answer:  # the API is still the API
        assert json.load(answer)["status"] == "ok"


def test_console_export_writes_a_self_contained_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/"
    result = CliRunner().invoke(app, ["console", "export", str(out), "--api", api])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*console.ASSETS, "config.json"])
    config = json.loads((out / "config.json").read_text())
    assert config == {"api": api.rstrip("/"), "events": False}  # API Gateway cannot stream
    html = (out / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    local = [r for r in refs if not r.startswith(("data:", "#"))]
    assert local and all((out / r).is_file() for r in local), refs
    for name in console.ASSETS:  # offline and no CDN: no file loads anything from elsewhere
        text = (out / name).read_text().replace("http://www.w3.org/2000/svg", "")  # a name
        assert not re.search(r"https?://", text), name
    markup_sinks = re.compile(r"\.(inner|outer)HTML\b|insertAdjacentHTML|document\.write")
    for name in console.ASSETS:  # API values reach the DOM as text only
        assert not markup_sinks.search((out / name).read_text()), name

    token = CliRunner().invoke(app, ["console", "export", str(out), "--auth", "token"])
    assert token.exit_code == 0, token.output
    assert json.loads((out / "config.json").read_text()) == {
        "api": "",
        "events": False,
        "auth": "token",
    }
    bad = CliRunner().invoke(app, ["console", "export", str(out), "--auth", "basic"])
    assert bad.exit_code != 0


def test_the_server_resolves_one_request_at_a_time_like_a_lambda_instance() -> None:
    # Powertools' resolver is not re-entrant (it keeps the request's route arguments on
    # itself); the console fires parallel requests, so the server must serialise them.
    from stepdag.cli.serve import make_server

    lock = threading.Lock()
    inside = [0, 0]  # now, most at once

    class Probe:
        def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
            with lock:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
            time.sleep(0.02)  # long enough for the other threads to arrive
            with lock:
                inside[0] -= 1
            return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}

    server = make_server(Probe(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/health"
    answers: list[int] = []

    def client() -> None:
        for _ in range(5):
            with urlopen(url) as answer:
                answers.append(answer.status)

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [200] * 30
    assert inside[1] == 1

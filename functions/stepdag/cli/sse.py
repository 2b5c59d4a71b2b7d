"""Server-sent events for ``stepdag serve``: ``GET /v1/executions/{id}/events``.

Not a resolver route, on purpose: API Gateway + Lambda cannot hold a response open and
stream, so on AWS the console polls the REST routes instead, and this endpoint exists only
in the local HTTP server.  It polls through the *same resolver* the REST routes use
(``GET /v1/executions/{id}`` and ``/nodes``, with the caller's headers), so every event
body is exactly a REST answer and the same auth and tenant scoping apply -- the stream
can show nothing the routes would not.

Events: ``snapshot`` (``{"execution": ..., "nodes": [...]}``) first and whenever either
changes, ``end`` (the final snapshot) when the execution is terminal, then the stream
closes; ``problem`` (a problem document) when the execution cannot be read, then closes.
A ``: ping`` comment goes out every few seconds so a vanished client is noticed even on
a quiet run.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from stepdag.core.inputs import dumps

EVENTS_PATH = re.compile(r"^/v1/executions/(?P<ref>[^/]+)/events$")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

POLL_SECONDS = 0.2
PING_SECONDS = 5.0
RETRY_MS = 1000  # EventSource's reconnect delay, should a stream drop mid-run


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


# (path) -> (status, decoded JSON body): one GET through the resolver.
Fetch = Callable[[str], tuple[int, Any]]

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # No Content-Length: the stream ends when the server closes the connection.
    "Connection": "close",
}


def events_ref(target: str) -> str | None:
    """The execution reference of an events URL, or None if ``target`` is not one."""
    match = EVENTS_PATH.match(unquote(urlsplit(target).path))
    return match.group("ref") if match else None


def frame(event: str, data: Any, event_id: int | None = None) -> bytes:
    # One JSON document on one data line (json.dumps never emits a raw newline); strict
    # JSON, or the browser's JSON.parse fails on the frame.
    head = f"id: {event_id}\n" if event_id is not None else ""
    text = dumps(data, "the event", separators=(",", ":"))
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


def client_gone(conn: socket.socket, timeout: float) -> bool:
    """Wait up to ``timeout``; True if the client closed its end meanwhile.

    An EventSource sends nothing after its request, so a readable socket means EOF (or
    a reset): that is how a closed tab is noticed without waiting for a failed write.
    """
    readable, _, _ = select.select([conn], [], [], timeout)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def stream(
    ref: str,
    fetch: Fetch,
    wfile: Writer,
    conn: socket.socket,
    closing: threading.Event,
    *,
    poll: float = POLL_SECONDS,
    ping: float = PING_SECONDS,
) -> str:
    """Write events for execution ``ref`` until it ends, the client goes or the server
    closes.  Returns why it stopped: ``end``, ``problem``, ``client`` or ``server``."""
    base = "/v1/executions/" + quote(ref, safe=":")
    last: Any = None
    seq = 0
    last_write = time.monotonic()
    wfile.write(f"retry: {RETRY_MS}\n\n".encode())
    try:
        while True:
            status, execution = fetch(base)
            if status == 200:
                status, listing = fetch(base + "/nodes")
                execution = execution if status == 200 else listing
            if status != 200:
                wfile.write(frame("problem", execution))
                return "problem"
            snapshot = {"execution": execution, "nodes": listing.get("nodes", [])}
            done = execution.get("status") in TERMINAL
            if snapshot != last or done:
                seq += 1
                wfile.write(frame("end" if done else "snapshot", snapshot, seq))
                last, last_write = snapshot, time.monotonic()
                if done:
                    return "end"
            elif time.monotonic() - last_write >= ping:
                wfile.write(b": ping\n\n")
                last_write = time.monotonic()
            if closing.is_set():
                return "server"
            if client_gone(conn, poll):
                return "client"
    except OSError:  # a broken pipe, a reset, an aborted or timed-out socket: gone
        return "client"


__all__ = ["HEADERS", "events_ref", "frame", "stream"]

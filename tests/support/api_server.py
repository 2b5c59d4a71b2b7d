"""A real ``stepdag serve`` server (in-process, free port) around a service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stepdag.api.app import build_app
from stepdag.cli.serve import Server, make_server


@contextmanager
def serving_server(service: Any, *, quiet: bool = False) -> Iterator[tuple[str, Server]]:
    """Serve ``service``'s REST API in a thread: (base URL, server); shut down after.
    ``quiet`` drops the access log, which would print into the output of CLI commands
    under test."""
    server = make_server(build_app(service), "127.0.0.1", 0)
    if quiet:
        server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serving(service: Any) -> Iterator[str]:
    """The quiet server's base URL."""
    with serving_server(service, quiet=True) as (url, _server):
        yield url

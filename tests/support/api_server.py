"""A real ``stepdag serve`` server (in-process, free port, quiet) around a service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stepdag.api.app import build_app
from stepdag.cli.serve import make_server


@contextmanager
def serving(service: Any) -> Iterator[str]:
    """Serve ``service``'s REST API; yields the base URL, shuts the server down after."""
    httpd = make_server(build_app(service), "127.0.0.1", 0)
    # Its access log would print into the output of CLI commands under test.
    httpd.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()

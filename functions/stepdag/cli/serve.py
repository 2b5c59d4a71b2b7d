"""``stepdag serve``: the REST API on a local HTTP server.

Each HTTP request becomes an API Gateway REST proxy event and goes through the same
resolver the API Lambda runs (``stepdag.api.app.build_app``), so what works here works
behind API Gateway.  Standard library only: ThreadingHTTPServer, one thread per request;
executions themselves run in the service's background threads.
"""

from __future__ import annotations

import base64
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer

from stepdag.cli.main import app, friendly, out

PLACEHOLDER_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>stepdag</title></head>
<body><h1>stepdag</h1>
<p>The web console comes later. Meanwhile: <a href="/v1/docs">API docs (Swagger UI)</a>,
<a href="/v1/openapi.json">OpenAPI document</a>, <a href="/v1/health">health</a>.</p>
</body></html>
"""


def to_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event for one HTTP request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    text: str | None = None
    encoded = False
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:  # API Gateway base64-encodes bodies that are not text
            text, encoded = base64.b64encode(body).decode("ascii"), True
    path = unquote(parts.path) or "/"
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": encoded,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def make_server(resolver: Any, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server answering every request with ``resolver.resolve(event, None)``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stepdag"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            if self.command == "GET" and urlsplit(self.path).path in ("", "/"):
                self._write(200, {"Content-Type": "text/html; charset=utf-8"}, PLACEHOLDER_PAGE)
                return
            headers = dict(self.headers.items())
            result = resolver.resolve(to_event(self.command, self.path, headers, body), None)
            raw = result.get("body") or ""
            data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
            merged: dict[str, str] = {}
            for key, values in (result.get("multiValueHeaders") or {}).items():
                merged[key] = ", ".join(values)
            merged.update(result.get("headers") or {})
            self._write(int(result["statusCode"]), merged, data)

        def _write(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            out.print(f"{self.address_string()} {format % args}")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


@app.command()
@friendly
def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8000,
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    directory: Annotated[Path, typer.Option(help="where to discover workflows")] = Path(
        "statemachines"
    ),
) -> None:
    """Serve the REST API (and, later, the console) locally on the local engine."""
    from stepdag.api.app import build_app
    from stepdag.api.service import LocalExecutionService
    from stepdag.cli.runs import _store
    from stepdag.core.loader import discover

    workflows = [lw.workflow for lw in discover(directory)] if directory.is_dir() else []
    service = LocalExecutionService(_store(), workflows)
    server = make_server(build_app(service), host, port)
    url = f"http://{host}:{server.server_port}"
    out.print(f"stepdag API on {url}/v1/docs ({len(workflows)} workflows)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


__all__ = ["make_server", "serve", "to_event"]

"""``stepdag serve``: the REST API and the web console on a local HTTP server.

Each HTTP request becomes an API Gateway REST proxy event and goes through the same
resolver the API Lambda runs (``stepdag.api.app.build_app``), so what works here works
behind API Gateway.  Standard library only: ThreadingHTTPServer, one thread per request;
executions themselves run in the service's background threads.

Two things only this server does, because API Gateway cannot: the console's static files
at ``/`` (on AWS they are exported and hosted, see ``stepdag console export``) and the
server-sent events stream ``/v1/executions/{id}/events`` (cli/sse.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer
from rich.markup import escape

from stepdag import console
from stepdag.cli import sse
from stepdag.cli.app import err, out
from stepdag.cli.target import home
from stepdag.core.errors import StepdagError

if TYPE_CHECKING:
    from stepdag.core.model import Workflow

# What the console's config.json says when this server serves it: the API is the page's
# own origin, and live updates may use server-sent events.
LOCAL_CONFIG = console.config("", events=True)


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


def call(
    resolver: Any, method: str, target: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request through the resolver: (status, headers, body bytes)."""
    result = resolver.resolve(to_event(method, target, headers, body), None)
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    merged: dict[str, str] = {}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        merged[key] = ", ".join(values)
    merged.update(result.get("headers") or {})
    return int(result["statusCode"]), merged, data


def console_file(path: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of the console file at URL path ``path``, if it is one."""
    name = path.lstrip("/") or "index.html"
    if name == console.CONFIG:
        return console.content_type(name), LOCAL_CONFIG
    if name in console.ASSETS:
        return console.content_type(name), console.asset(name)
    return None


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer whose long-lived event streams end when it closes.

    ``daemon_threads``: a stream's thread never keeps the process alive, and
    ``server_close`` does not wait for it; ``closing`` tells streams to stop now.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.closing = threading.Event()
        super().__init__(address, handler)

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()


class SerialResolver:
    """One request at a time through ``resolver``, as in one Lambda instance.

    Powertools' resolver keeps the request in progress on itself (``current_event``, the
    route arguments in ``app.context``), so two threads resolving at once can hand one
    route the other's arguments: seen as ``TypeError: MiddlewareFrame.__call__() got an
    unexpected keyword argument 'id'`` and a 500 when the console fetched several node
    outputs at once.  A Lambda instance never runs two requests concurrently; the
    threaded server must not either.  Event streams hold the lock only per read.
    """

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver
        self._lock = threading.Lock()

    def resolve(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            return self._resolver.resolve(event, context)


def make_server(resolver: Any, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """A server answering every request with ``resolver.resolve(event, None)`` (one at a
    time, see :class:`SerialResolver`), plus the console's files and the executions'
    event streams."""
    resolver = SerialResolver(resolver)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stepdag"
        server: Server

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            headers = dict(self.headers.items())
            if self.command in ("GET", "HEAD"):
                found = console_file(urlsplit(self.path).path)
                if found is not None:
                    kind, data = found
                    self._write(200, {"Content-Type": kind, "Cache-Control": "no-cache"}, data)
                    return
                ref = sse.events_ref(self.path)
                if ref is not None and self.command == "GET":
                    self._events(ref, headers)
                    return
            status, merged, data = call(resolver, self.command, self.path, headers, body)
            self._write(status, merged, data)

        def _events(self, ref: str, headers: dict[str, str]) -> None:
            # The stream owns this connection to its end: never reused for a next request.
            self.close_connection = True
            # The reads answer plain JSON: not event-stream, and never compressed.
            headers = {
                k: v for k, v in headers.items() if k.lower() not in ("accept", "accept-encoding")
            }

            def fetch(path: str) -> tuple[int, Any]:
                status, _, data = call(resolver, "GET", path, headers)
                try:
                    return status, json.loads(data or b"null")
                except ValueError:  # not JSON (never from our routes): end as a problem
                    return 500, {"status": 500, "detail": f"GET {path}: not a JSON answer"}

            self.send_response(200)
            for key, value in sse.HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            sse.stream(ref, fetch, self.wfile, self.connection, self.server.closing)

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

    return Server((host, port), Handler)


def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8000,
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    directory: Annotated[Path, typer.Option(help="where to discover workflows")] = Path(
        "statemachines"
    ),
) -> None:
    """Serve the REST API and the web console locally on the local engine."""
    # Imported here for start-up: the API and the engine load for this command only.
    from stepdag.api.app import build_app
    from stepdag.api.service import LocalExecutionService
    from stepdag.runtime.engine import default_store

    workflows, skipped = servable(directory)
    for reason in skipped:
        err.print(f"[yellow]warning:[/] skipped {escape(reason)}", markup=True)
    service = LocalExecutionService(default_store(home()), workflows)
    server = make_server(build_app(service), host, port)
    url = f"http://{host}:{server.server_port}"
    note = f", {len(skipped)} skipped" if skipped else ""
    out.print(
        f"stepdag console on {url}/ · API docs on {url}/v1/docs ({len(workflows)} workflows{note})"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def servable(directory: Path) -> tuple[list[Workflow], list[str]]:
    """The workflows in ``directory`` that import and build, and one line for each
    module or workflow skipped: one typo does not take the others down. A missing
    directory or a workflow name defined twice raises (that is not one file's fault)."""
    from stepdag.core.loader import discover

    skipped: list[str] = []
    workflows = []
    for lw in discover(directory, on_error=lambda exc: skipped.append(str(exc))):
        try:
            lw.workflow.build()
        except StepdagError as exc:
            # One line: an invalid workflow's report lists its problems below its first.
            first = str(exc).splitlines()[0].rstrip(":")
            hint = f"`stepdag validate {lw.where}` lists them)"
            reason = f"{first[:-1]}; {hint}" if first.endswith(")") else f"{first} ({hint}"
            skipped.append(f"{lw.where}: {reason}")
            continue
        workflows.append(lw.workflow)
    return workflows, skipped


def console_export(
    directory: Annotated[Path, typer.Argument(help="folder to write the console into")],
    api: Annotated[
        str,
        typer.Option(help="the API's base URL, e.g. the API Gateway stage URL ('': same origin)"),
    ] = "",
    events: Annotated[
        bool,
        typer.Option(help="the API streams server-sent events (stepdag serve does; Lambda not)"),
    ] = False,
    auth: Annotated[
        str | None, typer.Option(help="'token': the page asks for a token (Cognito authorizer)")
    ] = None,
) -> None:
    """Write the console's static files and config.json, ready to host (S3, any server)."""
    if auth not in (None, "token"):
        raise typer.BadParameter("only 'token' is supported", param_hint="--auth")
    written = console.export(directory, api, events=events, auth=auth)
    for path in written:
        out.print(str(path))
    target = api or "the same origin"
    out.print(f"console for {target}: {len(written)} files in {directory}")


__all__ = [
    "SerialResolver",
    "Server",
    "call",
    "console_export",
    "console_file",
    "make_server",
    "serve",
    "to_event",
]

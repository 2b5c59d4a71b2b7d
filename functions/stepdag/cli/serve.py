"""``stepdag serve``: the REST API and the web console on a local HTTP server.

Each HTTP request becomes an API Gateway REST proxy event and goes through the same
resolver the API Lambda runs (``stepdag.api.app.build_app``), so what works here works
behind API Gateway.  Standard library only: ThreadingHTTPServer, one thread per
connection, one request at a time in the resolver (:class:`SerialResolver`); executions
themselves run in the service's background threads.  The rules API Gateway and its
authorizer apply on AWS -- which hosts, origins and bodies are answered -- are
:mod:`stepdag.cli.guard`'s here.

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
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import typer
from rich.markup import escape

from stepdag import console
from stepdag.cli import sse
from stepdag.cli.app import err, out
from stepdag.cli.guard import MAX_BODY_BYTES, METHODS, Policy, Refused, canonical_headers
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


class SerialResolver:
    """One request at a time through ``resolver``, as in one Lambda instance.

    Powertools' resolver keeps the request in progress on itself (the route arguments in
    ``app.context``) and, worse, on its *class* (``BaseRouter.current_event``, shared by
    every resolver in the process, so that sub-routers see it): two threads resolving at
    once -- through one resolver or through two -- can hand one route the other's
    arguments or body.  Seen as ``TypeError: MiddlewareFrame.__call__() got an unexpected
    keyword argument 'id'`` and a 500 when the console fetched several node outputs at
    once, and, with one resolver per thread, as a start answered with another client's
    execution.  A Lambda instance never runs two requests concurrently; the threaded
    server must not either.  The server's threads still accept, read, apply the request
    rules and write concurrently; event streams hold the lock only per read.
    """

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver
        self._lock = threading.Lock()

    def resolve(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            return self._resolver.resolve(event, context)


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a listen backlog for bursts, its request rules
    (:class:`~stepdag.cli.guard.Policy`), and long-lived event streams that end when it
    closes.

    ``request_queue_size``: socketserver's default backlog of 5 reset 39 of 100
    connections opened at once.  ``daemon_threads``: a stream's thread never keeps the
    process alive, and ``server_close`` does not wait for it; ``closing`` tells streams to
    stop now.
    """

    daemon_threads = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        allow_hosts: Sequence[str] = (),
        allow_origins: Sequence[str] = (),
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.closing = threading.Event()
        super().__init__(address, handler)
        self.policy = Policy.local(
            address[0],
            self.server_port,
            allow_hosts=allow_hosts,
            allow_origins=allow_origins,
            max_body=max_body,
        )

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()


def make_server(
    resolver: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_hosts: Sequence[str] = (),
    allow_origins: Sequence[str] = (),
    max_body: int = MAX_BODY_BYTES,
) -> Server:
    """A server answering every request with ``resolver.resolve(event, None)`` (one at a
    time, see :class:`SerialResolver`), plus the console's files and the executions'
    event streams.  Requests the rules refuse (:mod:`stepdag.cli.guard`) never reach the
    resolver."""
    from stepdag.api.errors import PROBLEM_CONTENT_TYPE, problem

    serial = SerialResolver(resolver)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "stepdag"
        # A client that stops sending mid-request (or idles on a kept-alive connection)
        # frees its thread after this long; streams only write, and a stalled write ends
        # them as the client gone.
        timeout = 60
        # Headers and body go out as two writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK of the headers: ~40 ms on every kept-alive answer.
        disable_nagle_algorithm = True
        server: Server

        def _handle(self) -> None:
            try:
                length = self.server.policy.admit(self.command, self.headers, self.request_version)
            except Refused as refused:
                self._problem(refused.status, refused.code, refused.detail, refused.headers)
                return
            body = self.rfile.read(length) if length > 0 else b""
            headers = canonical_headers(self.headers.items())
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
            status, merged, data = call(serial, self.command, self.path, headers, body)
            self._write(status, merged, data)

        def _events(self, ref: str, headers: dict[str, str]) -> None:
            # The stream owns this connection to its end: never reused for a next request.
            self.close_connection = True
            # The reads answer plain JSON: not event-stream, and never compressed.
            headers = {
                k: v for k, v in headers.items() if k.lower() not in ("accept", "accept-encoding")
            }

            def fetch(path: str) -> tuple[int, Any]:
                status, _, data = call(serial, "GET", path, headers)
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
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _problem(
            self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
        ) -> None:
            # The request's body (if any) is unread: the connection cannot carry another.
            self.close_connection = True
            answer = problem(status, code, detail)
            data = str(answer.body).encode()
            self._write(status, {**(headers or {}), "Content-Type": PROBLEM_CONTENT_TYPE}, data)

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """The standard library's own refusals (a malformed request line or header, a
            URI too long, a method without ``do_*``) as problem documents, not HTML."""
            if code == HTTPStatus.NOT_IMPLEMENTED:  # its only 501: no do_<METHOD>
                detail = f"method {self.command} is not supported; use one of {', '.join(METHODS)}"
                self._problem(405, "method_not_allowed", detail, {"Allow": ", ".join(METHODS)})
                return
            phrase = HTTPStatus(code).phrase
            self._problem(code, phrase.lower().replace(" ", "_"), message or phrase)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            out.print(f"{self.address_string()} {format % args}")

    return Server(
        (host, port),
        Handler,
        allow_hosts=allow_hosts,
        allow_origins=allow_origins,
        max_body=max_body,
    )


def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: any free port")] = 8000,
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    directory: Annotated[Path, typer.Option(help="where to discover workflows")] = Path(
        "statemachines"
    ),
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            help="also answer requests for this Host, NAME or NAME:PORT (repeatable); "
            "loopback names and the bound address always are"
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="a web origin (scheme://host[:port]) whose pages may call the API, "
            "start and cancel runs included (repeatable; CORS is answered for it)"
        ),
    ] = None,
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
    origins = list(allow_origin or ())
    app = build_app(service, cors_origins=origins)
    try:
        server = make_server(app, host, port, allow_hosts=allow_host or (), allow_origins=origins)
    except ValueError as exc:  # an --allow-host/--allow-origin that is not one
        raise typer.BadParameter(str(exc)) from None
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
    "MAX_BODY_BYTES",
    "SerialResolver",
    "Server",
    "call",
    "console_export",
    "console_file",
    "make_server",
    "serve",
    "to_event",
]

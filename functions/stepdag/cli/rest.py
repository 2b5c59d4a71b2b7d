"""The CLI's client for the REST API (``stepdag serve`` or API Gateway), over urllib.

API JSON is turned back into the store's record types, so ``cli/views.py`` renders a
remote execution exactly like a local one.  Auth: SigV4 (service ``execute-api``) for an
API Gateway host with IAM auth, or a Cognito ID token (sent raw) for the Cognito authorizer.

Credentials never leave the API's origin: auth headers are *unredirected* headers (urllib
copies the others onto a redirected request), a redirect to another scheme, host or port
is refused with an error naming it, and one within the origin is authenticated afresh
(a SigV4 signature covers the URL it was made for).
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from stepdag.api.models import (
    Execution,
    ExecutionPage,
    ExecutionSummary,
    Node,
    NodeList,
    NodeOutput,
)
from stepdag.cli.client import LogReader, RemoteError, TargetError, read_logs, run_name
from stepdag.core.inputs import dumps
from stepdag.core.status import RunStatus
from stepdag.runtime.logs import LogEntry
from stepdag.runtime.records import ExecutionRecord, NodeRecord, Page

M = TypeVar("M", bound=BaseModel)
_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


def api_base(url: str) -> str:
    """``http://127.0.0.1:8000`` / ``https://…/prod/`` -> the ``…/v1`` routes' base."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def _aware(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


def execution_record(m: Execution | ExecutionSummary) -> ExecutionRecord:
    """The API's execution (or list row) as the store's record, for the shared views."""
    full = m if isinstance(m, Execution) else None
    started = _aware(m.started_at)
    assert started is not None
    return ExecutionRecord(
        execution_id=m.id,
        name=m.name,
        workflow=m.workflow,
        started_at=started,
        status=m.status,
        ended_at=_aware(m.ended_at),
        tenant=m.tenant,
        input=full.input if full else None,
        output=full.output if full else None,
        error=full.error if full else None,
        cause=full.cause if full else None,
        redrive_count=full.redrive_count if full else 0,
        rerun_of=full.rerun_of if full else None,
        rerun_from=full.rerun_from if full else None,
    )


def node_record(execution_id: str, m: Node, output: Any = None) -> NodeRecord:
    return NodeRecord(
        execution_id=execution_id,
        node=m.node,
        map_index=m.map_index,
        status=m.status,
        attempt=m.attempt,
        attempts=m.attempts,
        started_at=_aware(m.started_at),
        ended_at=_aware(m.ended_at),
        error=m.error,
        cause=m.cause,
        output=output,
        output_bytes=m.output_bytes,
        cache_hit=m.cache_hit,
        items=m.items,
        skip_reason=m.skip_reason,
    )


Auth = Callable[[urllib.request.Request], None]


def id_token(token: str) -> Auth:
    """Cognito auth: the raw ID token as the ``Authorization`` header.

    API Gateway's Cognito user-pool authorizer (REST API) reads the header's value as the
    token itself, as the console and ``docs/deployment.md`` send it: a ``Bearer `` prefix
    makes it reject the request (401).  A prefix pasted along with the token is dropped.
    """
    value = token.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()

    def add(req: urllib.request.Request) -> None:
        req.add_unredirected_header("Authorization", value)

    return add


# botocore is imported where a request is signed: it is the aws extra (optional), and
# `stepdag serve` on loopback needs no signing, so the CLI starts without it.
BOTO_MISSING = "SigV4 signing needs boto3: pip install 'stepdag[aws]'"


def sigv4(region: str, credentials: Any) -> Auth:
    """IAM auth: sign each request for ``execute-api`` with botocore's SigV4Auth."""
    try:
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    except ImportError:
        raise TargetError(BOTO_MISSING) from None

    signer = SigV4Auth(credentials, "execute-api", region)

    def add(req: urllib.request.Request) -> None:
        data = req.data if isinstance(req.data, bytes) else None
        aws = AWSRequest(method=req.get_method(), url=req.full_url, data=data)
        for key, value in req.header_items():
            aws.headers[key] = value
        signer.add_auth(aws)
        for key, value in aws.headers.items():
            if not req.has_header(key.capitalize()):  # Authorization, X-Amz-*: the signature's
                req.add_unredirected_header(key, value)

    return add


def default_auth(url: str, *, token: str | None, region: str | None) -> Auth | None:
    """How to authenticate to the API at ``url``:

    * ``token``: the Cognito ID token, whatever the host;
    * an API Gateway host (``<id>.execute-api.<region>.amazonaws.com``): SigV4, the region
      from the host name, when AWS credentials exist;
    * any other host with ``region`` (pass it only when the user chose it, ``--region`` on
      the command line, not from ``AWS_REGION``: a custom domain in front of an
      IAM-authorized API): SigV4 for that region;
    * otherwise nothing (``stepdag serve`` on loopback): no botocore import, no signing.
    """
    if token:
        return id_token(token)
    host = urlsplit(url).hostname or ""
    found = _EXECUTE_API.match(host)
    if found is None and region is None:
        return None
    try:
        import botocore.session  # type: ignore[import-untyped]
    except ImportError:
        raise TargetError(BOTO_MISSING) from None

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        return None  # the API answers 403 and the error says so
    return sigv4(found.group(1) if found else str(region), credentials)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").rstrip("."), parts.port or default


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the API's origin only, authenticating each afresh."""

    def __init__(self, auth: Auth | None) -> None:
        self.auth = auth

    def redirect_request(  # noqa: PLR0917 -- urllib calls it with these six, by position
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        if _origin(new.full_url) != _origin(req.full_url):
            fp.close()
            scheme, host, port = _origin(req.full_url)
            raise TargetError(
                f"{req.get_method()} {req.full_url} redirected (HTTP {code}) to {new.full_url}, "
                f"outside the API's origin {scheme}://{host}:{port}: not followed, so no "
                "credentials go to another host (if that is the API, pass it as --remote)"
            )
        if self.auth is not None:
            self.auth(new)
        return new


class HttpClient:
    """The REST API (``stepdag serve`` or API Gateway) over urllib."""

    def __init__(
        self,
        url: str,
        *,
        auth: Auth | None = None,
        logs: LogReader | None = None,
        timeout: float = 30.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.base = api_base(url)
        self.label = self.base
        self.full_records = False
        self.auth = auth
        self._opener = urllib.request.build_opener(SameOriginRedirects(auth))
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self._logs = logs

    # -------------------------------------------------------------- transport

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = self.base + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        data = None if body is None else dumps(body, "the request body").encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if self.auth is not None:
            self.auth(req)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as exc:
            raise _api_error(method, url, exc.code, _decode(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            message = f"cannot reach the stepdag API at {self.base}: {reason}"
            if isinstance(reason, ConnectionRefusedError | socket.gaierror):
                # Nothing listens at the address given: a typo, `stepdag serve` not started.
                raise TargetError(message) from None
            # A time-out or a dropped connection: the remote's failure (retry later).
            raise RemoteError(message, http_status=504) from None

    def answer(self, model: type[M], method: str, path: str, **kwargs: Any) -> tuple[int, M]:
        """``request`` whose answer must be the API's JSON for ``model``.

        A wrong base URL can still answer 200 (a static host's HTML, another service's
        JSON): that is the URL's fault, said in one line, not a validation traceback.
        """
        status, body = self.request(method, path, **kwargs)
        try:
            if not isinstance(body, dict):
                raise TypeError(f"expected a JSON object, got {_sample(body)}")
            return status, model.model_validate(body)
        except (TypeError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(body)"
                why = f"{model.__name__} {where}: {first['msg']}"
            else:
                why = str(exc)
            raise TargetError(
                f"{self.base + path} did not answer like a stepdag API: {why} "
                "(is --remote the API's URL?)"
            ) from None

    @staticmethod
    def _ref(ref: str) -> str:
        # Execution ids are ARNs: colons are legal in a path segment, slashes are not.
        return quote(ref, safe=":@")

    # -------------------------------------------------------------- reads

    def get(self, ref: str) -> ExecutionRecord:
        _, m = self.answer(Execution, "GET", f"/executions/{self._ref(ref)}")
        return execution_record(m)

    def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]:
        rec = self.get(ref)
        path = f"/executions/{self._ref(rec.execution_id)}/nodes"
        _, listing = self.answer(NodeList, "GET", path)
        return rec, [node_record(listing.execution, n) for n in listing.nodes]

    def list_executions(
        self, *, workflow: str | None, status: RunStatus | None, limit: int, next_token: str | None
    ) -> Page[ExecutionRecord]:
        query = {
            "workflow": workflow,
            "status": None if status is None else status.value,
            "limit": limit,
            "next_token": next_token,
        }
        _, page = self.answer(ExecutionPage, "GET", "/executions", query=query)
        return Page([execution_record(i) for i in page.items], page.next_token)

    def node_output(self, ref: str, node: str) -> Any:
        path = f"/executions/{self._ref(ref)}/nodes/{quote(node, safe='')}/output"
        return self.answer(NodeOutput, "GET", path)[1].output

    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        """From the node list; the output from ``…/nodes/{node}/output`` (the API serves
        whole nodes' outputs only: a Map item's record comes without its output)."""
        _, nodes = self.nodes(rec.execution_id)
        found = next((n for n in nodes if n.node == node and n.map_index == index), None)
        if found is None or index is not None or not found.status.has_output:
            return found
        output = self.node_output(rec.execution_id, node)
        return replace(found, output=output)

    def logs(self, rec: ExecutionRecord, *, node: str | None, index: int | None) -> list[LogEntry]:
        if self._logs is None:
            raise TargetError(
                "the REST API serves no logs; to read them from CloudWatch Logs with this "
                "URL, set STEPDAG_LOG_GROUPS (the node runners' log groups) or pass --stack NAME"
            )
        return read_logs(self._logs, rec, node=node, index=index)

    # -------------------------------------------------------------- writes

    def start(
        self, workflow: str, input: Any, *, name: str | None, idempotency_key: str | None
    ) -> tuple[ExecutionRecord, bool]:
        body: dict[str, Any] = {"input": input}
        if name and not idempotency_key:
            body["name"] = name
        run_name(name, idempotency_key)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        path = f"/workflows/{quote(workflow, safe='')}/executions"
        status, m = self.answer(Execution, "POST", path, body=body, headers=headers)
        return execution_record(m), status == 201

    def cancel(self, ref: str) -> ExecutionRecord:
        return execution_record(
            self.answer(Execution, "POST", f"/executions/{self._ref(ref)}/cancel")[1]
        )

    def redrive(self, ref: str) -> ExecutionRecord:
        path = f"/executions/{self._ref(ref)}/redrive"
        return execution_record(self.answer(Execution, "POST", path)[1])

    def rerun(self, ref: str, from_node: str, *, name: str | None) -> ExecutionRecord:
        path = f"/executions/{self._ref(ref)}/rerun"
        query = {"from": from_node, "name": name}
        return execution_record(self.answer(Execution, "POST", path, query=query)[1])

    def close(self, *, wait: bool = True) -> None:
        return None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _sample(body: Any, limit: int = 80) -> str:
    """A short one-line look at an unexpected answer (an HTML page is hundreds of lines)."""
    if body is None:
        return "an empty body"
    if isinstance(body, str):
        text = " ".join(body.split())
        return repr(text if len(text) <= limit else text[:limit] + "…")
    return f"JSON {type(body).__name__}"


def _api_error(method: str, url: str, status: int, body: Any) -> RemoteError:
    """A problem document (or API Gateway's own ``{"message": …}``) as one clean line."""
    if isinstance(body, dict) and "detail" in body:
        detail = str(body["detail"])
        errors = body.get("errors") or []
        if len(errors) > 1:  # the detail names the first one already
            detail += "".join(
                f"\n  - {e.get('location')} {e.get('field')}: {e.get('message')}" for e in errors
            )
        return RemoteError(f"{detail} (HTTP {status})", http_status=status)
    text = body.get("message") if isinstance(body, dict) else None
    shown = str(text) if text else _sample(body, 200)
    return RemoteError(f"HTTP {status} from {method} {url}: {shown}", http_status=status)


__all__ = ["HttpClient", "api_base", "default_auth", "execution_record", "node_record"]

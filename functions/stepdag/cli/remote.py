"""Where the CLI's commands go: the local store, the REST API, or AWS directly.

One :class:`Client` protocol, three targets, so a command is written once:

* **local** (no ``--remote``): :class:`ServiceClient` over the same
  ``LocalExecutionService`` that ``stepdag serve`` runs, on ``$STEPDAG_HOME``;
* **an API URL** (``--remote https://…/v1``): :class:`HttpClient`, stdlib ``urllib`` on
  the REST API; SigV4-signed for an ``execute-api`` host (IAM auth, the default), or a
  bearer token (``--token``) for the Cognito authorizer;
* **aws** (``--remote aws``): :class:`ServiceClient` over the very
  ``StepFunctionsExecutionService`` the API Lambda runs, on the DynamoDB store.

Every client answers with the store's record types (``ExecutionRecord``/``NodeRecord``),
so ``cli/views.py`` renders one shape whatever the target.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import typer

from stepdag.api.models import Execution, ExecutionPage, ExecutionSummary, Node, NodeList
from stepdag.core.errors import InputValidationError, StepdagError, WorkflowLoadError
from stepdag.core.model import Dag
from stepdag.core.status import RunStatus
from stepdag.runtime.logs import LogEntry
from stepdag.runtime.records import ExecutionRecord, NodeKey, NodeRecord, Page
from stepdag.runtime.store import ExecutionStore

_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


class RemoteError(StepdagError):
    """The remote target refused a request or could not be reached."""

    code = "remote_error"


class LogReader(Protocol):
    def read(
        self, execution: str, *, node: str | None = None, index: int | None = None
    ) -> list[LogEntry]: ...


class Client(Protocol):
    label: str
    poll_seconds: float
    full_records: bool

    def get(self, ref: str) -> ExecutionRecord: ...

    def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]: ...

    def list_executions(
        self, *, workflow: str | None, status: RunStatus | None, limit: int, next_token: str | None
    ) -> Page[ExecutionRecord]: ...

    def node_output(self, ref: str, node: str) -> Any: ...

    def start(
        self, workflow: str, input: Any, *, name: str | None, idempotency_key: str | None
    ) -> tuple[ExecutionRecord, bool]: ...

    def cancel(self, ref: str) -> ExecutionRecord: ...

    def redrive(self, ref: str) -> ExecutionRecord: ...

    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        """The node's record *with its output* when it succeeded (replay's inputs)."""
        ...

    def logs(
        self, rec: ExecutionRecord, *, node: str | None, index: int | None
    ) -> list[LogEntry]: ...

    def close(self) -> None: ...


def read_logs(
    reader: LogReader, rec: ExecutionRecord, *, node: str | None, index: int | None
) -> list[LogEntry]:
    window = getattr(reader, "read_window", None)
    if window is not None:  # CloudWatch: scan only the execution's time window
        entries: list[LogEntry] = window(
            rec.execution_id, node=node, index=index, start=rec.started_at, end=rec.ended_at
        )
        return entries
    return reader.read(rec.execution_id, node=node, index=index)


def run_name(name: str | None, idempotency_key: str | None) -> str | None:
    """The API's rule, applied before any request: the key *is* the execution name."""
    if idempotency_key and name and name != idempotency_key:
        raise InputValidationError("--name and --idempotency-key differ; the key is the name")
    return idempotency_key or name


# ------------------------------------------------------------------ services (local, aws)


F = TypeVar("F", bound=Callable[..., Any])


def _clean(fn: F) -> F:
    """An AWS SDK error (throttling, access denied, a missing table) as one clean line."""

    @wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StepdagError:
            raise
        except Exception as exc:
            if not type(exc).__module__.startswith(("botocore", "boto3")):
                raise
            raise RemoteError(f"AWS refused {fn.__name__}: {exc}") from None

    return call  # type: ignore[return-value]


class ServiceClient:
    """A client on an in-process ``ExecutionService`` (local engine, or Step Functions)."""

    def __init__(
        self,
        service: Any,
        store: ExecutionStore,
        *,
        label: str,
        logs: LogReader | None = None,
        logs_hint: str = "",
        poll_seconds: float = 0.1,
    ) -> None:
        self.service = service
        self.store = store
        self.label = label
        self.poll_seconds = poll_seconds
        self.full_records = True  # the store's records: cache keys, item outputs
        self._logs = logs
        self._logs_hint = logs_hint

    @_clean
    def get(self, ref: str) -> ExecutionRecord:
        rec: ExecutionRecord = self.service.get(ref, tenant=None)
        return rec

    @_clean
    def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]:
        rec, nodes = self.service.nodes(ref, tenant=None)
        return rec, list(nodes)

    @_clean
    def list_executions(
        self, *, workflow: str | None, status: RunStatus | None, limit: int, next_token: str | None
    ) -> Page[ExecutionRecord]:
        page: Page[ExecutionRecord] = self.service.list_executions(
            workflow=workflow, status=status, tenant=None, limit=limit, next_token=next_token
        )
        return page

    @_clean
    def node_output(self, ref: str, node: str) -> Any:
        return self.service.node_output(ref, node, tenant=None)[1]

    @_clean
    def start(
        self, workflow: str, input: Any, *, name: str | None, idempotency_key: str | None
    ) -> tuple[ExecutionRecord, bool]:
        started: tuple[ExecutionRecord, bool] = self.service.start(
            workflow, input, name=run_name(name, idempotency_key), tenant=None
        )
        return started

    @_clean
    def cancel(self, ref: str) -> ExecutionRecord:
        rec: ExecutionRecord = self.service.cancel(ref, tenant=None)
        return rec

    @_clean
    def redrive(self, ref: str) -> ExecutionRecord:
        rec: ExecutionRecord = self.service.redrive(ref, tenant=None)
        return rec

    @_clean
    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        return self.store.get_node(NodeKey(rec.execution_id, node, index))

    @_clean
    def logs(self, rec: ExecutionRecord, *, node: str | None, index: int | None) -> list[LogEntry]:
        if self._logs is None:
            raise RemoteError(f"no node logs are configured for {self.label}{self._logs_hint}")
        return read_logs(self._logs, rec, node=node, index=index)

    def close(self) -> None:
        wait = getattr(self.service, "wait_idle", None)
        if wait is not None:  # a local run's background thread: let it finish its writes
            wait()


# ------------------------------------------------------------------ the REST API


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


def bearer(token: str) -> Auth:
    value = token if token.lower().startswith("bearer ") else f"Bearer {token}"

    def add(req: urllib.request.Request) -> None:
        req.add_header("Authorization", value)

    return add


def sigv4(region: str, credentials: Any) -> Auth:
    """IAM auth: sign each request for ``execute-api`` with botocore's SigV4Auth."""
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

    signer = SigV4Auth(credentials, "execute-api", region)

    def add(req: urllib.request.Request) -> None:
        data = req.data if isinstance(req.data, bytes) else None
        aws = AWSRequest(method=req.get_method(), url=req.full_url, data=data)
        for key, value in req.header_items():
            aws.headers[key] = value
        signer.add_auth(aws)
        for key, value in aws.headers.items():
            req.add_header(key, value)

    return add


def default_auth(url: str, *, token: str | None, region: str | None) -> Auth | None:
    """A bearer token if given; else SigV4 for API Gateway hosts when credentials exist."""
    if token:
        return bearer(token)
    host = urlsplit(url).hostname or ""
    found = _EXECUTE_API.match(host)
    if found is None and region is None:
        return None  # e.g. `stepdag serve` on loopback: no auth
    import botocore.session  # type: ignore[import-untyped]

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        return None  # the API answers 403 and the error says so
    return sigv4(found.group(1) if found else str(region), credentials)


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
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if self.auth is not None:
            self.auth(req)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as exc:
            raise _api_error(method, url, exc.code, _decode(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach the stepdag API at {self.base}: {reason}") from None

    @staticmethod
    def _ref(ref: str) -> str:
        # Execution ids are ARNs: colons are legal in a path segment, slashes are not.
        return quote(ref, safe=":@")

    # -------------------------------------------------------------- reads

    def get(self, ref: str) -> ExecutionRecord:
        _, body = self.request("GET", f"/executions/{self._ref(ref)}")
        return execution_record(Execution.model_validate(body))

    def nodes(self, ref: str) -> tuple[ExecutionRecord, list[NodeRecord]]:
        rec = self.get(ref)
        _, body = self.request("GET", f"/executions/{self._ref(rec.execution_id)}/nodes")
        listing = NodeList.model_validate(body)
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
        _, body = self.request("GET", "/executions", query=query)
        page = ExecutionPage.model_validate(body)
        return Page([execution_record(i) for i in page.items], page.next_token)

    def node_output(self, ref: str, node: str) -> Any:
        path = f"/executions/{self._ref(ref)}/nodes/{quote(node, safe='')}/output"
        _, body = self.request("GET", path)
        return body.get("output") if isinstance(body, dict) else None

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
            raise RemoteError(
                "the REST API serves no logs; read them from CloudWatch Logs with "
                "--remote aws (log groups from --log-group, STEPDAG_LOG_GROUPS or --stack)"
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
        status, answer = self.request(
            "POST", f"/workflows/{quote(workflow, safe='')}/executions", body=body, headers=headers
        )
        return execution_record(Execution.model_validate(answer)), status == 201

    def cancel(self, ref: str) -> ExecutionRecord:
        _, body = self.request("POST", f"/executions/{self._ref(ref)}/cancel")
        return execution_record(Execution.model_validate(body))

    def redrive(self, ref: str) -> ExecutionRecord:
        _, body = self.request("POST", f"/executions/{self._ref(ref)}/redrive")
        return execution_record(Execution.model_validate(body))

    def close(self) -> None:
        return None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _api_error(method: str, url: str, status: int, body: Any) -> RemoteError:
    """A problem document (or API Gateway's own ``{"message": …}``) as one clean line."""
    if isinstance(body, dict) and "detail" in body:
        detail = str(body["detail"])
        errors = body.get("errors") or []
        if len(errors) > 1:  # the detail names the first one already
            detail += "".join(
                f"\n  - {e.get('location')} {e.get('field')}: {e.get('message')}" for e in errors
            )
        exc = RemoteError(f"{detail} (HTTP {status})")
    else:
        text = body.get("message") if isinstance(body, dict) else body
        exc = RemoteError(f"HTTP {status} from {method} {url}: {text or 'no body'}")
    exc.http_status = status
    return exc


# ------------------------------------------------------------------ aws (boto3 directly)


@dataclass(frozen=True)
class AwsConfig:
    """Where a deployment keeps its state: the values the API Lambda gets as environment."""

    table: str
    bucket: str | None
    state_machines: dict[str, str]
    log_groups: tuple[str, ...] = ()
    region: str | None = None


STACK_HINT = (
    "set STEPDAG_TABLE_NAME (and STEPDAG_BUCKET, STEPDAG_STATE_MACHINES, "
    "STEPDAG_LOG_GROUPS) or pass --stack NAME to read them from the CloudFormation stack"
)
_ALIAS_OUTPUT = re.compile(r"^start (?P<workflow>\S+) runs here")


def aws_config(
    *, stack: str | None, region: str | None, environ: Mapping[str, str] | None = None
) -> AwsConfig:
    """From the environment (``STEPDAG_TABLE_NAME``, ``STEPDAG_BUCKET``,
    ``STEPDAG_STATE_MACHINES`` JSON, ``STEPDAG_LOG_GROUPS`` comma-separated), or from a
    stack's outputs and resources when ``stack`` is given."""
    env = os.environ if environ is None else environ
    if stack:
        return stack_config(stack, region=region)
    table = env.get("STEPDAG_TABLE_NAME", "").strip()
    if not table:
        raise InputValidationError(f"--remote aws needs the deployment's table: {STACK_HINT}")
    raw = env.get("STEPDAG_STATE_MACHINES", "").strip() or "{}"
    try:
        machines = json.loads(raw)
    except ValueError as exc:
        raise InputValidationError(f"STEPDAG_STATE_MACHINES is not JSON: {exc}") from None
    if not isinstance(machines, dict):
        raise InputValidationError("STEPDAG_STATE_MACHINES must map workflow names to ARNs")
    groups = log_groups_env(env)
    bucket = (env.get("STEPDAG_BUCKET") or env.get("STEPDAG_BUCKET_NAME") or "").strip()
    return AwsConfig(
        table, bucket or None, {str(k): str(v) for k, v in machines.items()}, groups, region
    )


def log_groups_env(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(g.strip() for g in env.get("STEPDAG_LOG_GROUPS", "").split(",") if g.strip())


def stack_config(stack: str, *, region: str | None, cfn: Any = None) -> AwsConfig:
    """The deployment's names from its CloudFormation outputs (``infra/stack.py``): table,
    bucket, each workflow's ``live`` alias; the node runners' log groups from its
    resources (they have no output: CDK names them)."""
    import boto3  # type: ignore[import-untyped]

    cfn = cfn or boto3.client("cloudformation", region_name=region)
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        raise RemoteError(f"cannot read CloudFormation stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o for o in stacks[0].get("Outputs", [])}
    if "TableName" not in outputs:
        raise RemoteError(f"stack {stack!r} has no TableName output; is it a stepdag stack?")
    machines = {}
    for key, output in outputs.items():
        found = _ALIAS_OUTPUT.match(output.get("Description", ""))
        if key.endswith("AliasArn") and found:
            machines[found["workflow"]] = output["OutputValue"]
    groups = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for res in page["StackResourceSummaries"]:
            logical = res["LogicalResourceId"]
            if res["ResourceType"] == "AWS::Logs::LogGroup" and "NodeRunner" in logical:
                groups.append(res["PhysicalResourceId"])
    bucket = outputs.get("BucketName", {}).get("OutputValue")
    return AwsConfig(
        outputs["TableName"]["OutputValue"], bucket, machines, tuple(sorted(groups)), region
    )


def aws_client(
    config: AwsConfig, workflows: Mapping[str, Dag], *, session: Any = None
) -> ServiceClient:
    from stepdag.api.aws import StepFunctionsExecutionService
    from stepdag.cli.logs import CloudWatchLogs
    from stepdag.runtime.dynamodb import DynamoDbStore

    if session is None:
        import boto3

        session = boto3.session.Session(region_name=config.region)
    store = DynamoDbStore(config.table, bucket=config.bucket, boto3_session=session)
    # Starts need the local code of a workflow *and* its ARN; reads need neither.
    dags = {n: d for n, d in workflows.items() if n in config.state_machines}
    service = StepFunctionsExecutionService(
        store, dags, config.state_machines, boto3_session=session
    )
    logs = CloudWatchLogs(config.log_groups, session=session) if config.log_groups else None
    return ServiceClient(
        service,
        store,
        label=f"aws (table {config.table})",
        logs=logs,
        logs_hint=": set STEPDAG_LOG_GROUPS or pass --stack",
        poll_seconds=1.0,
    )


def local_client(home: Path, workflows: Sequence[Any]) -> ServiceClient:
    from stepdag.api.service import LocalExecutionService
    from stepdag.runtime.engine import default_store
    from stepdag.runtime.logs import FileLogSink

    store = default_store(home)
    service = LocalExecutionService(store, workflows)
    return ServiceClient(service, store, label="local", logs=FileLogSink(home / "logs"))


# ------------------------------------------------------------------ choosing the target


RemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--remote",
        envvar="STEPDAG_REMOTE",
        help="an API URL (https://…/v1, http://127.0.0.1:8000) or 'aws' (boto3: DynamoDB, "
        "Step Functions, CloudWatch Logs); default: the local store",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(envvar="STEPDAG_TOKEN", help="bearer token for a Cognito-authorized API"),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], help="AWS region (SigV4, aws)"),
]
StackOpt = Annotated[
    str | None,
    typer.Option(envvar="STEPDAG_STACK", help="read the aws target's names from this stack"),
]
WorkflowsOpt = Annotated[
    list[str] | None,
    typer.Option("--workflow", help="workflow reference(s) to load (default: statemachines/)"),
]


@dataclass(frozen=True)
class Target:
    remote: str | None = None
    token: str | None = None
    region: str | None = None
    stack: str | None = None
    workflows: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return not self.remote or self.remote == "local"


def is_workflow_ref(value: str) -> bool:
    """``statemachines/etl.py:wf`` or ``pkg.mod:attr`` (load it) vs ``etl`` (a name)."""
    return any(c in value for c in ":/\\.")


def load_workflows(refs: Sequence[str]) -> list[Any]:
    """The given references, else every workflow under ``statemachines/`` (if any)."""
    from stepdag.core.loader import discover, load_workflow

    if refs:
        return [load_workflow(ref).workflow for ref in refs]
    if Path("statemachines").is_dir():
        return [lw.workflow for lw in discover("statemachines")]
    return []


def connect(target: Target, home: Path) -> Client:
    """The client for ``--remote`` (see the module docstring)."""
    if target.is_local:
        return local_client(home, load_workflows(target.workflows))
    remote = str(target.remote)
    if remote == "aws":
        dags = {wf.name: wf.build() for wf in load_workflows(target.workflows)}
        return aws_client(aws_config(stack=target.stack, region=target.region), dags)
    if not remote.startswith(("http://", "https://")):
        raise InputValidationError(
            f"--remote must be an API URL (http[s]://…) or 'aws', got {remote!r}"
        )
    # The API serves no logs: with log groups known, `stepdag logs` reads CloudWatch.
    groups = (
        stack_config(target.stack, region=target.region).log_groups
        if target.stack
        else log_groups_env(os.environ)
    )
    logs = None
    if groups:
        from stepdag.cli.logs import CloudWatchLogs

        logs = CloudWatchLogs(groups, region=target.region)
    auth = default_auth(remote, token=target.token, region=target.region)
    return HttpClient(remote, auth=auth, logs=logs)


def require_workflow(dags: Mapping[str, Dag], name: str) -> Dag:
    dag = dags.get(name)
    if dag is None:
        known = ", ".join(sorted(dags)) or "none"
        raise WorkflowLoadError(
            f"workflow {name!r} is not in the local checkout (found: {known}); "
            "pass --workflow REF or run from the project directory"
        )
    return dag


__all__ = [
    "AwsConfig",
    "Client",
    "HttpClient",
    "RemoteError",
    "ServiceClient",
    "Target",
    "api_base",
    "aws_client",
    "aws_config",
    "connect",
    "default_auth",
    "local_client",
    "stack_config",
]

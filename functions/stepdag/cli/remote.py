"""Where the CLI's commands go: the local store, the REST API, or AWS directly.

One ``Client`` protocol (``cli/client.py``), three targets, so a command is written once:

* **local** (no ``--remote``): :class:`ServiceClient` over the same
  ``LocalExecutionService`` that ``stepdag serve`` runs, on ``$STEPDAG_HOME``;
* **an API URL** (``--remote https://…/v1``): ``cli/rest.py``'s ``HttpClient``, ``urllib`` on
  the REST API; SigV4-signed for an ``execute-api`` host (IAM auth, the default), or a
  Cognito ID token (``--token``, sent as the raw ``Authorization`` header);
* **aws** (``--remote aws``): :class:`ServiceClient` over the very
  ``StepFunctionsExecutionService`` the API Lambda runs, on the DynamoDB store.

Every client answers with the store's record types (``ExecutionRecord``/``NodeRecord``),
so ``cli/views.py`` renders one shape whatever the target.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from stepdag import constants as contract
from stepdag.cli.client import (
    Client,
    LogReader,
    RemoteError,
    TargetError,
    read_logs,
    run_name,
)
from stepdag.cli.cloudwatch import CloudWatchLogs
from stepdag.cli.rest import HttpClient, default_auth
from stepdag.constants import STATE_MACHINE_ARN_PATTERN
from stepdag.core.errors import InputValidationError, StepdagError, WorkflowLoadError
from stepdag.core.model import Dag
from stepdag.core.status import RunStatus
from stepdag.runtime.logs import LogEntry
from stepdag.runtime.records import ExecutionRecord, NodeKey, NodeRecord, Page
from stepdag.runtime.store import ExecutionStore, StoreUnavailable

# ------------------------------------------------------------------ services (local, aws)


F = TypeVar("F", bound=Callable[..., Any])


# botocore's errors for credentials that are not there: the caller's to set up.
_NO_CREDENTIALS = frozenset({"NoCredentialsError", "PartialCredentialsError"})


def _callers_status(exc: BaseException | None) -> int | None:
    """The 4xx status of an AWS answer that is the caller's to fix (access denied, no
    such table), or None.  Throttling is a 4xx too, but the store has made it
    ``StoreUnavailable`` (503) by then: see ``_clean``."""
    if type(exc).__name__ in _NO_CREDENTIALS:
        return 401
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
    status = meta.get("HTTPStatusCode")
    return status if isinstance(status, int) and 400 <= status < 500 else None


def _clean(fn: F) -> F:
    """An AWS SDK error (throttling, access denied, a missing table) as one clean line.

    The store's errors keep their class, except a plain store failure caused by an AWS
    4xx answer or missing credentials: that is the caller's configuration, said with
    its 4xx status (exit 2 rather than 3, like a REST API's 4xx).
    """

    @wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable:
            raise
        except StepdagError as exc:
            status = _callers_status(exc.__cause__) if exc.http_status >= 500 else None
            if status is None:
                raise
            raise RemoteError(str(exc), http_status=status) from exc
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
    def rerun(self, ref: str, from_node: str, *, name: str | None) -> ExecutionRecord:
        rec: ExecutionRecord = self.service.rerun(ref, from_node, name=name, tenant=None)
        return rec

    @_clean
    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        return self.store.get_node(NodeKey(rec.execution_id, node, index))

    @_clean
    def logs(self, rec: ExecutionRecord, *, node: str | None, index: int | None) -> list[LogEntry]:
        if self._logs is None:
            raise TargetError(f"no node logs are configured for {self.label}{self._logs_hint}")
        return read_logs(self._logs, rec, node=node, index=index)

    def close(self, *, wait: bool = True) -> None:
        wait_idle = getattr(self.service, "wait_idle", None)
        if wait and wait_idle is not None:  # a local run's thread: let it finish its writes
            wait_idle()


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
    f"set {contract.ENV_TABLE_NAME} (and {contract.ENV_BUCKET_NAME}, "
    f"{contract.ENV_STATE_MACHINES}, {contract.ENV_LOG_GROUPS}) or pass --stack NAME to read "
    "them from the CloudFormation stack"
)
_TARGET_ARN = re.compile(STATE_MACHINE_ARN_PATTERN)
_MACHINES = contract.ENV_STATE_MACHINES


def aws_config(
    *, stack: str | None, region: str | None, environ: Mapping[str, str] | None = None
) -> AwsConfig:
    """From the environment, under the names the API Lambda gets (``stepdag.constants``:
    table, bucket, state machines as JSON, node log groups comma-separated), or from a
    stack's outputs when ``stack`` is given."""
    env = os.environ if environ is None else environ
    if stack:
        return stack_config(stack, region=region)
    retired = contract.renamed_env_vars(env)
    if retired:
        raise InputValidationError("; ".join(retired))
    table = env.get(contract.ENV_TABLE_NAME, "").strip()
    if not table:
        raise InputValidationError(f"--remote aws needs the deployment's table: {STACK_HINT}")
    raw = env.get(_MACHINES, "").strip() or "{}"
    try:
        machines = json.loads(raw)
    except ValueError as exc:
        raise InputValidationError(f"{_MACHINES} is not JSON: {exc}") from None
    if not isinstance(machines, dict):
        raise InputValidationError(f"{_MACHINES} must map workflow names to ARNs")
    # The API Lambda's rule (handlers/api_settings.py): caught here, not as a ValueError
    # from deep in the Step Functions service on the first start.
    bad = [f"{k}={v!r}" for k, v in machines.items() if not _is_target_arn(v)]
    if bad:
        raise InputValidationError(
            f"{_MACHINES} values must be state machine or alias ARNs "
            "(arn:aws:states:<region>:<account>:stateMachine:<name>[:<alias>]); not: "
            + ", ".join(bad)
        )
    groups = log_groups_env(env)
    bucket = env.get(contract.ENV_BUCKET_NAME, "").strip()
    return AwsConfig(
        table, bucket or None, {str(k): str(v) for k, v in machines.items()}, groups, region
    )


def _is_target_arn(value: object) -> bool:
    return isinstance(value, str) and _TARGET_ARN.match(value) is not None


def log_groups_env(env: Mapping[str, str]) -> tuple[str, ...]:
    groups = env.get(contract.ENV_LOG_GROUPS, "")
    return tuple(g.strip() for g in groups.split(",") if g.strip())


def stack_config(stack: str, *, region: str | None, cfn: Any = None) -> AwsConfig:
    """The deployment's names from its CloudFormation outputs (``infra/stack.py``, keys in
    ``stepdag.constants``): table, bucket, each workflow's ``live`` alias and the node
    runners' log groups, the last two as JSON.  ``cfn``: a CloudFormation client."""
    if cfn is None:
        import boto3  # type: ignore[import-untyped]

        cfn = boto3.client("cloudformation", region_name=region)
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        raise RemoteError(f"cannot read CloudFormation stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    table = outputs.get(contract.OUTPUT_TABLE_NAME)
    if not table:
        raise RemoteError(
            f"stack {stack!r} has no {contract.OUTPUT_TABLE_NAME} output; is it a stepdag stack?"
        )
    found = _json_outputs(stack, outputs)
    machines = {}
    for workflow, arns in found[contract.OUTPUT_STATE_MACHINES].items():
        alias = arns.get(contract.ALIAS_ARN_KEY) if isinstance(arns, dict) else None
        if not _is_target_arn(alias):
            raise RemoteError(
                f"stack {stack!r}: output {contract.OUTPUT_STATE_MACHINES} has no "
                f"{contract.ALIAS_ARN_KEY} ARN for workflow {workflow!r}: {arns!r}"
            )
        machines[str(workflow)] = str(alias)
    groups = found[contract.OUTPUT_NODE_LOG_GROUPS].values()
    if not all(isinstance(g, str) and g for g in groups):
        raise RemoteError(
            f"stack {stack!r}: output {contract.OUTPUT_NODE_LOG_GROUPS} must map functions "
            f"to log group names, got {found[contract.OUTPUT_NODE_LOG_GROUPS]!r}"
        )
    bucket = outputs.get(contract.OUTPUT_BUCKET_NAME) or None
    return AwsConfig(table, bucket, machines, tuple(sorted(groups)), region)


def _json_outputs(stack: str, outputs: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The stack's JSON-object outputs the CLI reads, parsed; one clean line if absent
    (a stack deployed before they existed) or not a JSON object."""
    parsed = {}
    for key in (contract.OUTPUT_STATE_MACHINES, contract.OUTPUT_NODE_LOG_GROUPS):
        if key not in outputs:
            raise RemoteError(
                f"stack {stack!r} has no {key} output (deployed by an older stepdag?): "
                f"redeploy it, or set {contract.ENV_TABLE_NAME}, {contract.ENV_STATE_MACHINES} "
                f"and {contract.ENV_LOG_GROUPS} instead of passing --stack"
            )
        try:
            value = json.loads(outputs[key])
        except ValueError as exc:
            raise RemoteError(f"stack {stack!r}: output {key} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RemoteError(f"stack {stack!r}: output {key} is not a JSON object: {value!r}")
        parsed[key] = value
    return parsed


def aws_client(
    config: AwsConfig,
    workflows: Mapping[str, Dag],
    *,
    session: Any = None,
    home: Path | None = None,
) -> ServiceClient:
    # Imported here for start-up: boto3 and the Step Functions service load only for
    # the aws target (likewise the engine in local_client, the loader in load_workflows).
    from stepdag.api.aws import StepFunctionsExecutionService
    from stepdag.runtime.dynamodb import DynamoDbStore

    if session is None:
        import boto3

        session = boto3.session.Session(region_name=config.region)
    # `executions list --next-token` reads a token the previous invocation signed: the
    # home's key (runtime/pagination.py) when there is a home -- the aws target creates
    # no local state, so without one tokens are valid within this process only.
    from stepdag.runtime.pagination import home_key

    key = home_key(home) if home is not None and home.is_dir() else None
    store = DynamoDbStore(
        config.table, bucket=config.bucket, boto3_session=session, pagination_key=key
    )
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

    store = default_store(home)
    service = LocalExecutionService(store, workflows)
    # `stepdag logs` reads the very sink the engine captures into (engine.default_log_sink):
    # one place decides where local logs live.
    return ServiceClient(service, store, label="local", logs=service.engine.logs)


# ------------------------------------------------------------------ choosing the target


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
    from stepdag.core.loader import discover, load_workflow, unique

    if refs:
        return [lw.workflow for lw in unique(load_workflow(ref) for ref in refs)]
    if Path("statemachines").is_dir():
        return [lw.workflow for lw in discover("statemachines")]
    return []


def sdk_region(target: Target, environ: Mapping[str, str] | None = None) -> str | None:
    """The region for boto3 calls: ``--region``, else ``AWS_REGION`` (which botocore does
    not read itself), else None (boto3's own chain: ``AWS_DEFAULT_REGION``, profile)."""
    env = os.environ if environ is None else environ
    return target.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def connect(target: Target, home: Path, workflows: Sequence[Any] | None = None) -> Client:
    """The client for ``--remote`` (see the module docstring).

    ``workflows``: ``load_workflows(target.workflows)`` when the caller has it already
    (``run``, ``replay``), so the references are resolved once.
    """

    def loaded() -> Sequence[Any]:
        return load_workflows(target.workflows) if workflows is None else workflows

    if target.is_local:
        return local_client(home, loaded())
    remote = str(target.remote)
    region = sdk_region(target)
    if remote == "aws":
        dags = {wf.name: wf.build() for wf in loaded()}
        return aws_client(aws_config(stack=target.stack, region=region), dags, home=home)
    if not remote.startswith(("http://", "https://")):
        raise InputValidationError(
            f"--remote must be an API URL (http[s]://…) or 'aws', got {remote!r}"
        )
    # The API serves no logs: with log groups known, `stepdag logs` reads CloudWatch.
    groups = (
        stack_config(target.stack, region=region).log_groups
        if target.stack
        else log_groups_env(os.environ)
    )
    logs = None
    if groups:
        logs = CloudWatchLogs(groups, region=region)
    # Signing: an execute-api host always (its name holds the region); another host only
    # for a --region typed on the command line, never one defaulted from the environment.
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
    "ServiceClient",
    "Target",
    "aws_client",
    "aws_config",
    "connect",
    "local_client",
    "stack_config",
]

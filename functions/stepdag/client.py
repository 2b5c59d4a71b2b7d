"""The public Python surface: run a workflow on this machine, talk to a deployed stack.

Two entry points and one handle, in the spirit of Metaflow's ``Runner``/``Deployer`` and
``TriggeredRun``::

    import stepdag

    run = stepdag.run(wf, {"day": "2026-12-01"})      # local: this process, $STEPDAG_HOME
    run.status, run.output()

    with stepdag.connect("aws", stack="stepdag-prod") as prod:   # or an API URL
        run = prod.start("etl", {"day": "2026-12-01"}, idempotency_key="etl-2026-12-01")
        run.wait(timeout=900).output()

Everything goes through the same execution service and the same rules as the CLI and the
REST API (``runtime/executions.py``): names, idempotency keys, redrive and rerun behave
identically whichever target a handle talks to.  What this module returns
(:class:`Run`, :class:`Deployment`) is the supported surface; the modules below it
(engine, stores, services) are internals and may change.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from stepdag.core.errors import StepdagError
from stepdag.core.model import Workflow
from stepdag.core.status import RunStatus

if TYPE_CHECKING:  # the CLI's client modules are imported only when a handle is made
    from stepdag.cli.client import Client
    from stepdag.runtime.records import ExecutionRecord, NodeRecord

DEFAULT_HOME = ".stepdag"


class RunTimeout(StepdagError):
    """:meth:`Run.wait` gave up before the execution ended (the execution goes on)."""

    http_status = 504
    code = "wait_timeout"


class Run:
    """One execution on one target: read it, wait for it, act on it.

    ``status``/``record`` are as of the last read; :meth:`refresh` (or :meth:`wait`)
    reads again.
    """

    def __init__(self, deployment: Deployment, record: ExecutionRecord) -> None:
        self._deployment = deployment
        self.record = record

    def __repr__(self) -> str:
        return f"Run({self.workflow}/{self.name}: {self.status.value})"

    @property
    def execution_id(self) -> str:
        return self.record.execution_id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def workflow(self) -> str:
        return self.record.workflow

    @property
    def status(self) -> RunStatus:
        return self.record.status

    @property
    def done(self) -> bool:
        return self.status.is_terminal

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def cause(self) -> str | None:
        return self.record.cause

    def refresh(self) -> Run:
        self.record = self._client.get(self.execution_id)
        return self

    def wait(self, timeout: float | None = None, *, poll: float | None = None) -> Run:
        """Read until the execution ends; :class:`RunTimeout` after ``timeout`` seconds."""
        interval = poll if poll is not None else self._client.poll_seconds
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeout(
                    f"execution {self.name!r} ({self.workflow}) is still "
                    f"{self.status.value} after {timeout:g} s"
                )
            time.sleep(interval)
        return self

    def output(self, node: str | None = None) -> Any:
        """The workflow's output, or one node's (``node``); an execution that has none
        (not SUCCEEDED, or the node did not succeed) raises a 4xx ``StepdagError``."""
        if node is not None:
            return self._client.node_output(self.execution_id, node)
        if not self.succeeded:
            self.refresh()
        if not self.succeeded:
            from stepdag.cli.client import NoOutput

            raise NoOutput(f"execution {self.name!r} is {self.status.value}; it has no output")
        return self.record.output

    def nodes(self) -> list[NodeRecord]:
        self.record, records = self._client.nodes(self.execution_id)
        return records

    def cancel(self) -> Run:
        self.record = self._client.cancel(self.execution_id)
        return self

    def redrive(self) -> Run:
        """Resume a failed or interrupted run: completed nodes are not run again."""
        self.record = self._client.redrive(self.execution_id)
        return self

    def rerun(self, from_node: str, *, name: str | None = None) -> Run:
        """A new execution reusing every stored output not downstream of ``from_node``."""
        return Run(self._deployment, self._client.rerun(self.execution_id, from_node, name=name))

    @property
    def _client(self) -> Client:
        return self._deployment.client


class Deployment:
    """A target (this machine's store, a REST API, or a stack through boto3) and the
    runs on it.  Close it (or use ``with``) to release it; a local target first lets
    this process's runs finish their writes."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Deployment({self.client.label})"

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An interrupt must not wait for local runs (they end with the process).
        self.close(wait=not isinstance(exc, KeyboardInterrupt))

    def close(self, *, wait: bool = True) -> None:
        self.client.close(wait=wait)

    def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Start an execution (non-blocking).  The same ``idempotency_key`` (which is the
        execution's name) with the same input returns the existing run."""
        # Every Client applies the key-is-the-name rule itself (cli.client.run_name).
        record, _created = self.client.start(
            workflow, input, name=name, idempotency_key=idempotency_key
        )
        return Run(self, record)

    def run(
        self,
        workflow: str,
        input: Any = None,
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Run:
        """:meth:`start` and :meth:`Run.wait`."""
        started = self.start(workflow, input, name=name, idempotency_key=idempotency_key)
        return started.wait(timeout)

    def execution(self, ref: str) -> Run:
        """An existing execution by name, execution id or ARN."""
        return Run(self, self.client.get(ref))

    def executions(
        self, *, workflow: str | None = None, status: RunStatus | str | None = None, limit: int = 50
    ) -> list[Run]:
        """The newest ``limit`` executions (all pages up to ``limit``)."""
        wanted = RunStatus(status) if isinstance(status, str) else status
        runs: list[Run] = []
        token: str | None = None
        while len(runs) < limit:
            page = self.client.list_executions(
                workflow=workflow, status=wanted, limit=limit - len(runs), next_token=token
            )
            runs += [Run(self, rec) for rec in page.items]
            token = page.next_token
            if not token:
                break
        return runs


def connect(
    remote: str | None = None,
    *,
    stack: str | None = None,
    region: str | None = None,
    token: str | None = None,
    workflows: list[Workflow] | None = None,
    home: str | Path | None = None,
) -> Deployment:
    """A :class:`Deployment` for a target, chosen as the CLI's ``--remote`` chooses it:

    * ``None`` / ``"local"``: this machine's store (``home``, default ``$STEPDAG_HOME`` or
      ``.stepdag``); ``workflows`` are the workflows it can start (default: every
      workflow under ``./statemachines``);
    * an API URL (``https://…/v1``, ``http://127.0.0.1:8000``): the REST API, SigV4-signed
      for execute-api hosts (or any host when ``region`` is given), or a Cognito
      ``token``;
    * ``"aws"``: DynamoDB and Step Functions through boto3 (the ``aws`` extra); ``stack``
      reads the names from the stack's outputs.
    """
    from stepdag.cli.remote import Target
    from stepdag.cli.remote import connect as client_for

    target = Target(remote=remote, token=token, region=region, stack=stack)
    base = Path(home if home is not None else os.environ.get("STEPDAG_HOME", DEFAULT_HOME))
    return Deployment(client_for(target, base, workflows))


def run(
    workflow: Workflow,
    input: Any = None,
    *,
    name: str | None = None,
    home: str | Path | None = None,
    timeout: float | None = None,
) -> Run:
    """Run ``workflow`` on this machine to the end (the local engine, a durable SQLite
    store under ``home``) and return the finished :class:`Run`.

    The returned run can still be read (``output()``, ``nodes()``) and acted on
    (``rerun``); its store stays open until the process ends.
    """
    deployment = connect(workflows=[workflow], home=home)
    return deployment.run(workflow.name, input, name=name, timeout=timeout)


__all__ = ["Deployment", "Run", "RunTimeout", "connect", "run"]

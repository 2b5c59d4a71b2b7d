"""What the routes call: the :class:`ExecutionService` protocol, and the reads both of its
implementations share (:class:`StoreReads`).

The routes know nothing about engines or stores, so the same API fronts the local engine
(``stepdag serve``, :mod:`stepdag.api.service`) and Step Functions (the API Lambda,
:mod:`stepdag.api.aws`).  Every method takes the caller's ``tenant``: ``None`` is unscoped,
a value restricts reads and writes to that tenant's executions, and another tenant's
execution is reported as *not found* (never "forbidden": that would confirm it exists).

Writes -- start, cancel, redrive, rerun -- follow the rules of the execution lifecycle
(:mod:`stepdag.runtime.executions`); this module, like the lifecycle, loads neither the
interpreter nor an AWS library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from stepdag.api.errors import NodeNotFound, NoOutput
from stepdag.api.health import Check
from stepdag.core.model import Dag
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.records import ExecutionRecord, NodeKey, NodeRecord, Page
from stepdag.runtime.store import ExecutionStore


class ExecutionService(Protocol):
    def workflows(self) -> list[Dag]: ...

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        """The DAG and its compiled definition; WorkflowLoadError (404) if unknown."""
        ...

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        """(record, created): a replay of the same name and input is (existing, False)."""
        ...

    def get(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def list_executions(
        self,
        *,
        workflow: str | None,
        status: RunStatus | None,
        tenant: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[ExecutionRecord]: ...

    def nodes(
        self, ref: str, *, tenant: str | None
    ) -> tuple[ExecutionRecord, list[NodeRecord]]: ...

    def node_output(self, ref: str, node: str, *, tenant: str | None) -> tuple[str, Any]: ...

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord: ...

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord: ...

    def health(self) -> dict[str, Any]:
        """What readiness reports besides its checks: ``workflows`` and ``store``."""
        ...

    def health_checks(self) -> dict[str, Check]:
        """The readiness checks by name (:mod:`stepdag.api.health`)."""
        ...


class StoreReads:
    """Reads every service answers from the ExecutionStore, tenant-scoped.

    Local and AWS services differ only in how a record is brought up to date
    (``_fresh``): locally the engine writes final statuses itself; on AWS a run that is
    not finished yet is refreshed from Step Functions when read.
    """

    store: ExecutionStore
    _dags: Mapping[str, Dag]

    def _fresh(self, rec: ExecutionRecord) -> ExecutionRecord:
        return rec

    def get(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self._fresh(self.store.get_execution(ref, tenant=tenant))

    def list_executions(
        self,
        *,
        workflow: str | None,
        status: RunStatus | None,
        tenant: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[ExecutionRecord]:
        return self.store.list_executions(
            workflow=workflow, status=status, tenant=tenant, limit=limit, next_token=next_token
        )

    def nodes(self, ref: str, *, tenant: str | None) -> tuple[ExecutionRecord, list[NodeRecord]]:
        rec = self.get(ref, tenant=tenant)
        return rec, self.store.list_nodes(rec.execution_id, include_items=True)

    def node_output(self, ref: str, node: str, *, tenant: str | None) -> tuple[str, Any]:
        rec = self.get(ref, tenant=tenant)
        found = self.store.get_node(NodeKey(rec.execution_id, node))
        if found is None:
            dag = self._dags.get(rec.workflow)
            if dag is not None and node not in dag.nodes:
                raise NodeNotFound(f"workflow {rec.workflow!r} has no node {node!r}", field="node")
            raise NoOutput(f"node {node!r} of {rec.name!r} has not run", field="node")
        if found.status is not NodeStatus.SUCCEEDED:
            raise NoOutput(f"node {node!r} of {rec.name!r} is {found.status.value}; no output")
        return rec.execution_id, found.output

    def health(self) -> dict[str, Any]:
        return {"workflows": len(self._dags), "store": type(self.store).__name__}

    def health_checks(self) -> dict[str, Check]:
        return {"store": self._check_store, "settings": self._check_settings}

    def _check_store(self) -> str:
        """A read through the store, as every route makes (a Query on DynamoDB)."""
        page = self.store.list_executions(
            workflow=None, status=None, tenant=None, limit=1, next_token=None
        )
        return f"{type(self.store).__name__}: listed {len(page.items)} execution(s)"

    def _check_settings(self) -> str:
        if not self._dags:
            raise LookupError("no workflows are loaded: nothing can be started")
        return f"{_count(len(self._dags), 'workflow')} loaded: {', '.join(sorted(self._dags))}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


__all__ = ["ExecutionService", "StoreReads"]

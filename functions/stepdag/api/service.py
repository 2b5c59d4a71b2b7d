"""The :class:`ExecutionService` on the local engine (``stepdag serve``, the CLI's local
target): executions run in background threads of this process.

A thin adapter: the rules are the lifecycle's (:mod:`stepdag.runtime.executions`), the
runs the engine's (:class:`~stepdag.runtime.engine.LocalLauncher`).  Cancel stops the
interpreter like ``StopExecution`` -- the run ends ABORTED with an ``ExecutionAborted``
history event; a RUNNING execution no thread of this process runs (a crashed process,
another server) is marked ABORTED in the store instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stepdag.api.port import ExecutionService, StoreReads
from stepdag.core.model import Dag, Workflow
from stepdag.runtime.engine import LocalEngine, LocalLauncher
from stepdag.runtime.executions import Executions
from stepdag.runtime.records import ExecutionRecord
from stepdag.runtime.store import ExecutionStore


class LocalExecutionService(StoreReads):
    """ExecutionService on a LocalEngine; executions run in background threads."""

    def __init__(self, store: ExecutionStore, workflows: Iterable[Workflow | Dag] = ()) -> None:
        self.store = store
        self.engine = LocalEngine(store)
        for wf in workflows:
            self.engine.register(wf)
        self._dags = self.engine.workflows
        self.executions = Executions(store, LocalLauncher(self.engine))

    def workflows(self) -> list[Dag]:
        return [self._dags[k] for k in sorted(self._dags)]

    def workflow(self, name: str) -> tuple[Dag, dict[str, Any]]:
        dag = self.engine.dag(name)
        return dag, self.engine.definition(dag.workflow)

    def start(
        self, workflow: str, input: Any, *, name: str | None, tenant: str | None
    ) -> tuple[ExecutionRecord, bool]:
        return self.executions.start(workflow, input, name=name, tenant=tenant)

    def cancel(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self.executions.cancel(ref, tenant=tenant)

    def redrive(self, ref: str, *, tenant: str | None) -> ExecutionRecord:
        return self.executions.redrive(ref, tenant=tenant)

    def rerun(
        self, ref: str, from_node: str, *, name: str | None, tenant: str | None
    ) -> ExecutionRecord:
        return self.executions.rerun(ref, from_node, name=name, tenant=tenant)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait for every background run (tests; graceful shutdown)."""
        self.engine.wait_idle(timeout)


def service_for(
    store: ExecutionStore, workflows: Mapping[str, Workflow | Dag] | Iterable[Workflow | Dag]
) -> LocalExecutionService:
    values = workflows.values() if isinstance(workflows, Mapping) else workflows
    return LocalExecutionService(store, values)


__all__ = ["ExecutionService", "LocalExecutionService", "service_for"]

"""Fixtures: the real handler module, wired to a SQLite store and a captured log stream."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from stepdag.handlers.app import NodeRunnerApp
from stepdag.handlers.observability import LazyTracer
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.handlers.support import EXECUTION, FakeLambdaContext, import_handler
from tests.unit.handlers.workflows import wf


@dataclass
class Harness:
    module: ModuleType
    store: SqliteStore
    logs: io.StringIO

    def invoke(self, node: str, *, phase: str = "run", attempt: int = 0, **extra: Any) -> Any:
        event = {
            "workflow": "obs",
            "node": node,
            "phase": phase,
            "execution": EXECUTION,
            "attempt": attempt,
            **extra,
        }
        return self.module.handler(event, FakeLambdaContext())

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def handler_module() -> ModuleType:
    return import_handler()


@pytest.fixture
def harness(handler_module: ModuleType, tmp_path: Path) -> Iterator[Harness]:
    store = SqliteStore(tmp_path / "unit.db")
    app = NodeRunnerApp(
        handler_module.settings,
        logger=handler_module.logger,
        metrics=handler_module.metrics,
        tracer=LazyTracer("test", enabled=False),
        store_factory=lambda _settings: store,
        workflow_loader=lambda _settings: {"obs": wf.build()},
    )
    logs = io.StringIO()
    stream_handler = handler_module.logger.registered_handler
    previous = stream_handler.setStream(logs)
    with mock.patch.object(handler_module, "app", app):
        yield Harness(handler_module, store, logs)
    stream_handler.setStream(previous)
    store.close()

"""Fixtures for the console tests: a LocalExecutionService on SQLite behind ``stepdag
serve``'s server on a free port, and one headless Chromium for the session.

A missing /usr/bin/chromium FAILS the browser tests (never skips them): a skipped browser
test looks green while proving nothing, and ``make test`` installs it (``make browser``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepdag.api.service import LocalExecutionService
from stepdag.cli.serve import Server
from stepdag.runtime.sqlite import SqliteStore
from tests.e2e import workflows
from tests.e2e.harness import BrowserMissing, chromium
from tests.support.api_server import serving_server as serving


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LocalExecutionService]:
    workflows.reset()
    with SqliteStore(tmp_path / "console.db") as store:
        svc = LocalExecutionService(store, workflows.ALL)
        try:
            yield svc
        finally:
            workflows.release_all()  # never leave a run waiting on a gate
            svc.wait_idle()


@pytest.fixture
def served(service: LocalExecutionService) -> Iterator[tuple[str, Server]]:
    with serving(service) as pair:
        yield pair


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        with chromium() as b:
            yield b
    except BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()

"""The machinery of the console's browser tests and of scripts/console_screenshot.py:
Debian's headless Chromium driven by playwright (never a downloaded browser build: none
can be fetched here); the server is ``tests.support.api_server.serving_server``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stepdag.api.service import LocalExecutionService

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium phones home at start, and the closed
# network refuses it; the rest keeps a headless run quiet and quick.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserMissing(RuntimeError):
    pass


def require_chromium() -> None:
    if not CHROMIUM.exists():
        raise BrowserMissing(
            f"{CHROMIUM} is missing: run `make browser` (scripts/install-browser.sh installs "
            "Debian's chromium package); the console's browser tests need it"
        )


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright Browser) on Debian's binary."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def node_status(service: LocalExecutionService, execution_id: str, node: str) -> str | None:
    """A node's status in the store (None before its record exists)."""
    for rec in service.store.list_nodes(execution_id):
        if rec.node == node and rec.map_index is None:
            return rec.status.value
    return None

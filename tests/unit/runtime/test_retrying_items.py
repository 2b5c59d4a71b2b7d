"""An item waiting for its retry is shown retrying, not FAILED (issue 13, item 2): the
store records the failed attempt as FAILED; the views tell it from a final failure by
the run and its Map still going (``core/failures.is_retrying``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console

from stepdag import Retry, Workflow
from stepdag.api.service import LocalExecutionService
from stepdag.cli.views import live_view
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.sqlite import SqliteStore

GATE = threading.Event()
FAILED_ONCE: set[int] = set()

wf = Workflow("retrying")


@wf.node
def src() -> list[int]:
    return [0, 1, 2]


@wf.node(map_over="src", retry=Retry(max_attempts=2, interval=1, errors=("ValueError",)))
def each(src: int) -> int:
    if src == 0 and not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    if src == 1 and src not in FAILED_ONCE:
        FAILED_ONCE.add(src)
        raise ValueError("first attempt fails")
    return src


def _text(renderable: object) -> str:
    console = Console(width=160, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_an_item_waiting_for_its_retry_is_shown_retrying(tmp_path: Path) -> None:
    GATE.clear()
    FAILED_ONCE.clear()
    with SqliteStore(tmp_path / "s.db") as store:
        svc = LocalExecutionService(store, [wf])
        try:
            rec, _ = svc.start("retrying", None, name="r1", tenant=None)
            deadline = time.monotonic() + 20
            while True:
                ex, nodes = svc.nodes(rec.execution_id, tenant=None)
                item = next((n for n in nodes if n.map_index == 1), None)
                if item is not None and item.status is NodeStatus.FAILED:
                    break
                assert time.monotonic() < deadline, nodes
                time.sleep(0.01)
            shown = _text(live_view(ex, nodes))
            assert "node 'each' item 1, attempt 1: ValueError: first attempt fails (retrying)" in (
                shown
            ), shown
            assert "1 retrying" in shown and "failed" not in shown.replace(
                "first attempt fails", ""
            ), shown
            GATE.set()
            svc.wait_idle()
            ex, nodes = svc.nodes(rec.execution_id, tenant=None)
            assert ex.status is RunStatus.SUCCEEDED
            assert "items 3/3 done" in _text(live_view(ex, nodes))
        finally:
            GATE.set()
            svc.wait_idle()

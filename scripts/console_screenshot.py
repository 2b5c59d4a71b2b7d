"""Screenshot of the web console showing a run's DAG mid-run: docs/images/console.png.

Uses the browser tests' machinery (tests/e2e/harness.py): ``stepdag serve``'s server on
a free port, the test workflow whose nodes block on Events, Debian's headless Chromium
driven by playwright.  The run is caught with mixed states: extract, the Map node and
profile SUCCEEDED, audit RUNNING, publish PENDING.

    .venv/bin/python scripts/console_screenshot.py [OUT.png]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stepdag.api.service import LocalExecutionService  # noqa: E402
from stepdag.runtime.sqlite import SqliteStore  # noqa: E402
from tests.e2e import workflows  # noqa: E402
from tests.e2e.harness import chromium, node_status, wait_for  # noqa: E402
from tests.support.api_server import serving_server as serving  # noqa: E402


def main(out: Path) -> None:
    workflows.reset()
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "shot.db") as store:
        service = LocalExecutionService(store, workflows.ALL)
        try:
            with serving(service) as (url, _), chromium() as browser:
                # A finished run and a failed one, so the executions list has history.
                service.start("console_quick", {"x": 1}, name="warm-up", tenant=None)
                service.start("console_broken", {"note": "x"}, name="bad-input", tenant=None)
                rec, _ = service.start("console_live", {"n": 4}, name="nightly-0142", tenant=None)
                time.sleep(0.6)  # visible bars on the timeline
                workflows.GATES["extract"].set()
                wait_for(lambda: node_status(service, rec.execution_id, "clean") == "SUCCEEDED")
                wait_for(lambda: node_status(service, rec.execution_id, "audit") == "RUNNING")
                time.sleep(0.8)
                workflows.GATES["profile"].set()
                wait_for(lambda: node_status(service, rec.execution_id, "profile") == "SUCCEEDED")
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(f"{url}/#/executions/{quote(rec.execution_id, safe='')}?node=clean")
                page.wait_for_selector('[data-node="audit"][data-status="RUNNING"]')
                page.wait_for_selector('[data-output="clean"]:not(:text("loading"))')
                page.wait_for_timeout(1200)  # let the running bars grow a little
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                print(f"wrote {out}")
        finally:
            workflows.release_all()
            service.wait_idle()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "images" / "console.png")

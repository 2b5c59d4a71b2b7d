"""The web console in real headless Chromium (Debian's), against ``stepdag serve``'s
server, during live runs whose nodes the test releases one by one."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

from stepdag import console
from stepdag.api.service import LocalExecutionService
from stepdag.cli.serve import Server
from tests.e2e import workflows
from tests.e2e.harness import node_status, wait_for


def node(page: Any, name: str, status: str) -> Any:
    """Wait until the DAG shows ``name`` in ``status``; the element."""
    return page.wait_for_selector(f'svg.dag [data-node="{name}"][data-status="{status}"]')


def start(service: LocalExecutionService, workflow: str, input: Any, name: str) -> str:
    rec, created = service.start(workflow, input, name=name, tenant=None)
    assert created
    return rec.execution_id


def test_node_states_change_live_on_the_page(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    eid = start(service, "console_live", {"n": 3}, "live-run")
    wait_for(lambda: node_status(service, eid, "extract") == "RUNNING", what="extract running")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(urlsplit(r.url).path))
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}")

    node(page, "extract", "RUNNING")
    for name in ("clean", "audit", "profile", "publish"):
        node(page, name, "PENDING")
    assert page.get_attribute("#live", "data-live") == "sse"
    # A marker a reload would wipe: every change below must arrive on this same page.
    page.evaluate("window.__sameDocument = true")

    workflows.GATES["extract"].set()
    node(page, "extract", "SUCCEEDED")
    node(page, "clean", "SUCCEEDED")
    node(page, "audit", "RUNNING")
    node(page, "profile", "RUNNING")
    node(page, "publish", "PENDING")
    assert "3/3 items" in page.text_content('[data-node="clean"]')

    workflows.GATES["audit"].set()
    node(page, "audit", "SUCCEEDED")
    assert page.get_attribute('[data-node="profile"]', "data-status") == "RUNNING"
    workflows.GATES["profile"].set()
    node(page, "publish", "SUCCEEDED")
    page.wait_for_selector('#exec-status[data-status="SUCCEEDED"]')
    page.wait_for_selector('#live[data-live="done"]', state="attached")
    assert page.evaluate("window.__sameDocument") is True

    # The updates came over the event stream: the page read the execution's REST route
    # once (its first render) and never polled it.
    exec_path = f"/v1/executions/{quote(eid, safe='')}"
    assert requests.count(f"{exec_path}/events") >= 1
    assert requests.count(exec_path) == 1, requests
    assert requests.count(f"{exec_path}/nodes") == 1, requests

    # The timeline has a bar per node, and a selected node shows its output.
    for name in ("extract", "clean", "audit", "profile", "publish"):
        page.wait_for_selector(f'svg.timeline [data-bar="{name}"][data-status="SUCCEEDED"]')
    page.click('[data-node="publish"]')
    assert page.wait_for_selector('[data-output="publish"]:has-text("35")')  # 30 + 3 + 2


def test_a_failed_node_shows_its_error_as_text(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    eid = start(service, "console_broken", {"note": workflows.XSS}, "broken-run")
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}?node=explode")
    node(page, "fetch", "SUCCEEDED")
    node(page, "explode", "FAILED")
    page.wait_for_selector('#exec-status[data-status="FAILED"]')
    error = page.wait_for_selector('[data-error="explode"]').text_content()
    assert "RuntimeError" in error
    assert workflows.XSS in error  # shown literally ...
    page.click("summary:has-text('execution input')")
    shown_input = page.text_content("details:has(summary:has-text('execution input')) pre")
    assert json.dumps(workflows.XSS) in shown_input
    page.click('[data-node="explode"]')
    page.wait_for_timeout(300)  # ... and never run: no element, no script effect
    assert page.evaluate("window.__xss") is None
    assert page.locator("#view img, #view script").count() == 0


def test_executions_list_shows_runs_newest_first_with_filters_and_pages(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    quick = [start(service, "console_quick", {"x": i}, f"quick-{i}") for i in range(3)]
    broken = start(service, "console_broken", {}, "broken-1")
    service.wait_idle()

    page.goto(f"{url}/#/workflows")
    for name in ("console_live", "console_broken", "console_quick"):
        page.wait_for_selector(f'tr[data-workflow="{name}"]')

    page.goto(f"{url}/#/executions")
    page.wait_for_selector(f'tr[data-execution="{broken}"][data-status="FAILED"]')
    rows = page.eval_on_selector_all("tr[data-execution]", "rs => rs.map(r => r.dataset.execution)")
    assert rows == [broken, *reversed(quick)]  # newest first

    page.select_option('select[name="status"]', "FAILED")
    page.wait_for_function("document.querySelectorAll('tr[data-execution]').length === 1")
    assert page.get_attribute("tr[data-execution]", "data-execution") == broken

    page.goto(f"{url}/#/executions?workflow=console_quick&limit=2")
    page.wait_for_selector(f'tr[data-execution="{quick[2]}"]')
    first = page.eval_on_selector_all(
        "tr[data-execution]", "rs => rs.map(r => r.dataset.execution)"
    )
    assert first == [quick[2], quick[1]]
    page.click("button:has-text('older')")
    page.wait_for_selector(f'tr[data-execution="{quick[0]}"]')
    assert page.locator("tr[data-execution]").count() == 1
    assert page.is_disabled("button:has-text('older')")
    page.click("button:has-text('newer')")
    page.wait_for_selector(f'tr[data-execution="{quick[2]}"]')

    page.click(f'tr[data-execution="{quick[1]}"] a')
    node(page, "only", "SUCCEEDED")


def test_without_event_streams_the_page_polls_the_rest_routes(
    service: LocalExecutionService,
    served: tuple[str, Server],
    page: Any,
    monkeypatch: Any,
) -> None:
    """The AWS path: API Gateway cannot stream, config.json says so, the page polls."""
    monkeypatch.setattr("stepdag.cli.serve.LOCAL_CONFIG", console.config("", events=False))
    url, _ = served
    eid = start(service, "console_live", {"n": 1}, "polled-run")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(urlsplit(r.url).path))
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}")
    node(page, "audit", "PENDING")
    assert page.get_attribute("#live", "data-live") == "polling"
    workflows.release_all()
    node(page, "publish", "SUCCEEDED")
    page.wait_for_selector('#exec-status[data-status="SUCCEEDED"]')
    assert not any(p.endswith("/events") for p in requests)
    assert requests.count(f"/v1/executions/{quote(eid, safe='')}") >= 2  # first render + polls


def test_token_mode_sends_the_token_and_polls(
    service: LocalExecutionService,
    served: tuple[str, Server],
    page: Any,
    monkeypatch: Any,
) -> None:
    """--auth token (a Cognito authorizer): the page asks for a token, sends it as the
    Authorization header, and polls (EventSource cannot send headers)."""
    monkeypatch.setattr(
        "stepdag.cli.serve.LOCAL_CONFIG", console.config("", events=True, auth="token")
    )
    url, _ = served
    eid = start(service, "console_live", {"n": 1}, "token-run")
    sent: dict[str, str | None] = {}
    page.on(
        "request", lambda r: sent.__setitem__(urlsplit(r.url).path, r.headers.get("authorization"))
    )
    page.goto(f"{url}/#/workflows")
    page.fill("#token", "id-token-123")
    page.press("#token", "Enter")
    page.wait_for_function("sessionStorage.getItem('stepdag.token') === 'id-token-123'")
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}")
    node(page, "publish", "PENDING")
    assert page.get_attribute("#live", "data-live") == "polling"
    workflows.release_all()
    node(page, "publish", "SUCCEEDED")
    assert f"/v1/executions/{quote(eid, safe='')}/events" not in sent
    assert sent[f"/v1/executions/{quote(eid, safe='')}"] == "id-token-123"
    assert sent["/config.json"] is None  # static files go without it


def test_a_failed_output_fetch_is_retried(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    for gate in workflows.GATES.values():
        gate.set()
    eid = start(service, "console_live", {"n": 2}, "retry-run")
    wait_for(lambda: service.get(eid, tenant=None).status.value == "SUCCEEDED", what="run end")
    failed: list[str] = []

    def flaky(route: Any) -> None:
        if not failed:  # the first output read fails, as a restarting server would
            failed.append(route.request.url)
            route.fulfill(
                status=503,
                content_type="application/problem+json",
                body=json.dumps({"status": 503, "title": "unavailable", "detail": "restarting"}),
            )
        else:
            route.continue_()

    page.route("**/nodes/publish/output", flaky)
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}?node=publish")
    node(page, "publish", "SUCCEEDED")
    # The failure shows, then the page retries by itself and shows the output.
    assert page.wait_for_selector('[data-output="publish"]:has-text("13")')  # 10 + 2 + 1
    assert len(failed) == 1


def test_a_failed_map_item_is_located_and_the_map_counts_its_items(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    eid = start(service, "console_mapfail", None, "mapfail-run")
    service.wait_idle()
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}?node=each")
    page.wait_for_selector('#exec-status[data-status="FAILED"]')
    # The Map's own record never finished (its items did): the DAG says how they went.
    each = node(page, "each", "FAILED")
    # Item 3 may have been stopped with the Map (Step Functions stops the other items).
    assert re.search(r"[23]/4, 1 fail", each.text_content()), each.text_content()
    line = "node 'each' item 2, attempt 1: KeyError: row 2 is \\x1b[31mbad"
    failure = page.wait_for_selector('li[data-failure="each[2]"]').text_content()
    assert failure == line
    assert page.text_content('[data-error="execution"] strong') == line  # located
    # The detail pane lists the failed item first, with its one line; the full cause stays.
    first = page.wait_for_selector('tr[data-item="2"][data-status="FAILED"]')
    assert line in first.text_content()
    assert page.eval_on_selector("tr[data-item]", "r => r.dataset.item") == "2"
    assert re.search(r"[23]/4 items · 1 failed", page.text_content('[data-detail="each"] + dl'))
    page.click('[data-error="execution"] summary:has-text("full cause")')
    assert '"errorMessage"' in page.text_content('[data-error="execution"] details pre')


def test_an_item_waiting_for_its_retry_is_shown_retrying(
    service: LocalExecutionService, served: tuple[str, Server], page: Any
) -> None:
    url, _ = served
    eid = start(service, "console_retry", None, "retry-run")

    def item_failed() -> bool:
        return any(
            r.map_index == 1 and r.status.value == "FAILED"
            for r in service.store.list_nodes(eid, include_items=True)
        )

    wait_for(item_failed, what="item 1's first attempt failed")
    page.goto(f"{url}/#/executions/{quote(eid, safe='')}?node=work")
    # Within the retry's 5 s interval: the item is retrying, not failed, and so is its Map.
    li = page.wait_for_selector('li[data-failure="work[1]"][data-retrying="true"]')
    assert li.text_content() == (
        "node 'work' item 1, attempt 1: ValueError: first attempt fails (retrying)"
    )
    box = node(page, "work", "RUNNING")
    assert "1 retry" in box.text_content() and "fail" not in box.text_content()
    page.wait_for_selector('tr[data-item="1"][data-status="RETRYING"]')
    workflows.GATES["hold"].set()
    page.wait_for_selector('#exec-status[data-status="SUCCEEDED"]', timeout=20_000)
    assert "3/3 items" in node(page, "work", "SUCCEEDED").text_content()
    assert page.locator("li[data-failure]").count() == 0

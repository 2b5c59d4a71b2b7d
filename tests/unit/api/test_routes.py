"""Route behaviours through the resolver (both stores: see conftest)."""

from __future__ import annotations

import time

from tests.unit.api import workflows
from tests.unit.api.conftest import Answer, Client

PROBLEM = "application/problem+json"


def assert_problem(answer: Answer, status: int, field: str | None = None) -> dict:
    assert answer.status == status, answer.body
    assert answer.content_type == PROBLEM
    doc = answer.body
    assert {"type", "title", "status", "detail", "code"} <= set(doc)
    assert doc["status"] == status
    if field is not None:
        assert doc.get("field") == field, doc
    return doc


def wait_status(client: Client, ref: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/executions/{ref}").body
        if body["status"] == status or time.monotonic() > deadline:
            assert body["status"] == status, body
            return body
        time.sleep(0.02)


# ------------------------------------------------------------------ meta, workflows


def test_health_and_workflows(client: Client) -> None:
    assert client.get("/v1/health").body["status"] == "ok"
    names = [w["name"] for w in client.get("/v1/workflows").body["items"]]
    assert names == ["api_demo", "api_flaky", "api_gated"]
    graph = client.get("/v1/workflows/api_demo").body
    assert [n["name"] for n in graph["nodes"]] == ["first", "second"]
    assert graph["edges"] == [["first", "second"]]
    assert graph["structure"] == "first ; second"
    assert graph["definition"]["StartAt"]
    assert_problem(client.get("/v1/workflows/nope"), 404)


def test_openapi_and_docs_are_served(client: Client) -> None:
    doc = client.get("/v1/openapi.json").body
    assert "/v1/executions/{id}/rerun" in doc["paths"]
    assert PROBLEM in doc["paths"]["/v1/executions"]["get"]["responses"]["400"]["content"]
    docs = client.get("/v1/docs")
    assert docs.status == 200 and "text/html" in docs.content_type


# ------------------------------------------------------------------ start and read


def test_start_runs_in_background_and_is_inspectable(client: Client) -> None:
    started = client.start(input={"x": 4})
    assert started.status == 201
    ref = started.body["name"]
    client.service.wait_idle()
    done = wait_status(client, ref, "SUCCEEDED")
    assert done["output"] == 10 and done["input"] == {"x": 4}
    nodes = client.get(f"/v1/executions/{ref}/nodes").body["nodes"]
    assert {n["node"]: n["status"] for n in nodes} == {"first": "SUCCEEDED", "second": "SUCCEEDED"}
    out = client.get(f"/v1/executions/{done['id']}/nodes/first/output").body
    assert out["output"] == 5
    assert_problem(client.get(f"/v1/executions/{ref}/nodes/nope/output"), 404, "node")


def test_idempotency_key_starts_one_execution(client: Client) -> None:
    key = {"Idempotency-Key": "order-42"}
    one = client.start(headers=key)
    two = client.start(headers={"idempotency-key": "order-42"})  # headers are case-blind
    assert (one.status, two.status) == (201, 200)
    assert one.body["id"] == two.body["id"] and one.body["name"] == "order-42"
    client.service.wait_idle()
    assert len(client.get("/v1/executions").body["items"]) == 1
    doc = assert_problem(client.start(input={"x": 2}, headers=key), 409, "input")
    assert doc["code"] == "idempotency_conflict"
    assert_problem(client.start(headers={"Idempotency-Key": "has space"}), 400, "idempotency-key")


def test_list_paginates_newest_first(client: Client) -> None:
    for i in range(5):
        client.start(input={"x": i}, headers={"Idempotency-Key": f"run-{i}"})
        time.sleep(0.002)  # distinct started_at, so "newest first" is observable
    client.service.wait_idle()
    names, token, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        page = client.get("/v1/executions", query=query).body
        names += [e["name"] for e in page["items"]]
        pages += 1
        token = page["next_token"]
        if token is None:
            break
    assert names == [f"run-{i}" for i in reversed(range(5))] and pages == 3
    filtered = client.get("/v1/executions", query={"status": "SUCCEEDED", "workflow": "api_demo"})
    assert len(filtered.body["items"]) == 5
    assert client.get("/v1/executions", query={"status": "FAILED"}).body["items"] == []


# ------------------------------------------------------------------ problem documents


def test_bad_input_is_400_naming_the_field(client: Client) -> None:
    assert_problem(client.get("/v1/executions", query={"limit": "0"}), 400, "limit")
    assert_problem(client.get("/v1/executions", query={"limit": "1001"}), 400, "limit")
    assert_problem(client.get("/v1/executions", query={"limit": "x"}), 400, "limit")
    assert_problem(client.get("/v1/executions", query={"status": "BOGUS"}), 400, "status")
    bad_token = client.get("/v1/executions", query={"next_token": "garbage"})
    assert_problem(bad_token, 400, "next_token")
    extra = client.post("/v1/workflows/api_demo/executions", body={"input": {}, "zzz": 1})
    assert_problem(extra, 400, "zzz")
    bad_name = client.post("/v1/workflows/api_demo/executions", body={"name": "a/b"})
    assert_problem(bad_name, 400, "name")
    assert_problem(client.start(input={"x": "not-an-int"}), 400, "input")
    assert_problem(client.call("POST", "/v1/workflows/api_demo/executions"), 400)


def test_404_and_409_problems(client: Client) -> None:
    assert_problem(client.get("/v1/executions/nope"), 404)
    assert_problem(client.get("/v1/executions/nope/nodes"), 404)
    assert_problem(client.get("/v1/no/such/route"), 404)
    assert_problem(client.start("no_such_workflow"), 404)
    ref = client.start().body["name"]
    client.service.wait_idle()
    assert_problem(client.post(f"/v1/executions/{ref}/cancel"), 409)
    assert_problem(client.post(f"/v1/executions/{ref}/redrive"), 409)
    assert_problem(client.post(f"/v1/executions/{ref}/rerun", query={"from": "zz"}), 400, "from")
    assert_problem(client.post(f"/v1/executions/{ref}/rerun"), 400, "from")


# ------------------------------------------------------------------ cancel, redrive, rerun


def test_cancel_stops_the_running_interpreter(client: Client) -> None:
    ref = client.start("api_gated").body["name"]
    assert client.get(f"/v1/executions/{ref}").body["status"] == "RUNNING"
    cancelled = client.post(f"/v1/executions/{ref}/cancel")
    assert cancelled.status == 200 and cancelled.body["status"] == "ABORTED"
    assert cancelled.body["error"] == "Cancelled"


def test_redrive_and_rerun(client: Client) -> None:
    ref = client.start("api_flaky").body["name"]
    client.service.wait_idle()
    assert wait_status(client, ref, "FAILED")["error"] == "RuntimeError"
    workflows.FAIL["on"] = False
    redriven = client.post(f"/v1/executions/{ref}/redrive")
    assert redriven.status == 202 and redriven.body["redrive_count"] == 1
    client.service.wait_idle()
    assert wait_status(client, ref, "SUCCEEDED")["output"] == 7

    demo = client.start(headers={"Idempotency-Key": "base"}).body["id"]
    client.service.wait_idle()
    again = client.post(f"/v1/executions/{demo}/rerun", query={"from": "second", "name": "r2"})
    assert again.status == 201 and again.body["rerun_of"] == demo
    client.service.wait_idle()
    assert wait_status(client, "r2", "SUCCEEDED")["output"] == 4
    nodes = {n["node"]: n for n in client.get("/v1/executions/r2/nodes").body["nodes"]}
    assert nodes["first"]["status"] == "SUCCEEDED"  # copied, not re-run


# ------------------------------------------------------------------ roles and tenants


def claims(tenant: str | None, *roles: str, key: str = "cognito:groups") -> dict:
    out: dict = {"sub": "user"}
    if tenant is not None:
        out["custom:tenant"] = tenant
    if roles:
        out[key] = ",".join(roles)
    return out


def test_roles_are_checked_on_every_route(client: Client) -> None:
    viewer = claims("a", "viewer")
    assert client.get("/v1/executions", claims=viewer).status == 200
    doc = assert_problem(client.start(claims=viewer), 403)
    assert "operator" in doc["detail"]
    assert_problem(client.get("/v1/executions", claims=claims("a")), 403)  # no role at all
    assert_problem(client.get("/v1/workflows", claims=claims("a")), 403)
    groups = claims("a", key="cognito:groups")
    groups["cognito:groups"] = "[operator]"  # API Gateway's rendering of a list claim
    assert client.start(claims=groups).status == 201
    assert client.start(claims=claims("a", "admin")).status == 201
    assert client.get("/v1/health", claims=claims("a")).status == 200  # health is open


def test_tenant_isolation(client: Client) -> None:
    a, b = claims("tenant-a", "admin"), claims("tenant-b", "admin")
    mine = client.start("api_gated", claims=b).body
    assert mine["tenant"] == "tenant-b"
    ref, eid = mine["name"], mine["id"]
    for who, visible in ((a, False), (b, True)):
        for path in (f"/v1/executions/{ref}", f"/v1/executions/{eid}/nodes"):
            answer = client.get(path, claims=who)
            assert answer.status == (200 if visible else 404), (path, answer.body)
        listed = [e["id"] for e in client.get("/v1/executions", claims=who).body["items"]]
        assert listed == ([eid] if visible else [])
    assert_problem(client.get(f"/v1/executions/{eid}/nodes/hold/output", claims=a), 404)
    assert_problem(client.post(f"/v1/executions/{eid}/cancel", claims=a), 404)
    assert_problem(client.post(f"/v1/executions/{eid}/redrive", claims=a), 404)
    assert_problem(
        client.post(f"/v1/executions/{eid}/rerun", query={"from": "hold"}, claims=a), 404
    )
    # the same Idempotency-Key in another tenant must not hand back B's execution
    key = {"Idempotency-Key": ref}
    assert_problem(client.start("api_gated", headers=key, claims=a), 409)
    assert client.post(f"/v1/executions/{eid}/cancel", claims=b).body["status"] == "ABORTED"
    answer = client.call("GET", "/v1/executions")  # unauthenticated: unscoped, sees all
    assert [e["id"] for e in answer.body["items"]] == [eid]


def test_a_name_another_tenant_also_uses_is_not_ambiguous(client: Client) -> None:
    a, b = claims("tenant-a", "admin"), claims("tenant-b", "admin")
    key = {"Idempotency-Key": "shared"}
    ids = {
        "a": client.start("api_demo", headers=key, claims=a).body["id"],
        "b": client.start("api_gated", headers=key, claims=b).body["id"],
    }
    # Each tenant resolves the name to its own run; a 409 "exists in several workflows"
    # would tell tenant A that tenant B has a run called "shared".
    assert client.get("/v1/executions/shared", claims=a).body["id"] == ids["a"]
    assert client.get("/v1/executions/shared", claims=b).body["id"] == ids["b"]
    assert_problem(client.get(f"/v1/executions/{ids['b']}", claims=a), 404)
    doc = assert_problem(client.call("GET", "/v1/executions/shared"), 409)  # unscoped
    assert "several workflows" in doc["detail"]
    client.post(f"/v1/executions/{ids['b']}/cancel", claims=b)

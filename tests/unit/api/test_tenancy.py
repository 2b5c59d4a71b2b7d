"""Tenancy fails closed: who may see what, from claims the caller cannot write."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.conftest import Client
from tests.unit.api.test_routes import assert_problem


def cognito(tenant: str | None, *groups: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sub": "user", **extra}
    if tenant is not None:
        out["custom:tenant"] = tenant
    if groups:
        out["cognito:groups"] = ",".join(groups)
    return out


def every_route(client: Client, eid: str, **who: Any) -> dict[str, int]:
    return {
        "list": client.get("/v1/executions", **who).status,
        "workflows": client.get("/v1/workflows", **who).status,
        "get": client.get(f"/v1/executions/{eid}", **who).status,
        "nodes": client.get(f"/v1/executions/{eid}/nodes", **who).status,
        "output": client.get(f"/v1/executions/{eid}/nodes/first/output", **who).status,
        "cancel": client.post(f"/v1/executions/{eid}/cancel", **who).status,
        "redrive": client.post(f"/v1/executions/{eid}/redrive", **who).status,
        "rerun": client.post(f"/v1/executions/{eid}/rerun", query={"from": "first"}, **who).status,
        "start": client.start(**who).status,
    }


@pytest.mark.parametrize(
    "who",
    [
        {"claims": cognito(None, "admin")},
        {"claims": cognito("", "admin")},
        {"claims": cognito("   ", "admin")},
        {"claims": {"custom:tenant": ["acme", "globex"], "cognito:groups": "admin"}},
        {"authorizer": {"principalId": "u1", "tenant": "", "roles": "admin"}},
        {},  # no authorizer at all: never trusted in multi-tenant mode
    ],
    ids=[
        "no-tenant",
        "empty-tenant",
        "blank-tenant",
        "list-tenant",
        "lambda-authorizer-empty",
        "anonymous",
    ],
)
def test_multi_tenant_refuses_a_caller_without_tenant_on_every_route(
    multi_client: Client, who: dict[str, Any]
) -> None:
    mine = multi_client.start(claims=cognito("acme", "admin")).body
    multi_client.service.wait_idle()
    statuses = every_route(multi_client, mine["id"], **who)
    assert statuses == dict.fromkeys(statuses, 403)
    doc = assert_problem(multi_client.get("/v1/executions", **who), 403)
    assert "tenant" in doc["detail"]
    assert multi_client.get("/v1/health", **who).status == 200  # health stays open


def test_single_tenant_keeps_unscoped_claims_but_empty_is_not_a_tenant(client: Client) -> None:
    acme = client.start(claims=cognito("acme", "operator")).body
    client.service.wait_idle()
    # An empty tenant used to be a tenant named "" in some paths and none in others;
    # now it is none: in single-tenant mode that is the unscoped (one team) caller.
    listed = client.get("/v1/executions", claims=cognito(" ", "viewer")).body["items"]
    assert [i["id"] for i in listed] == [acme["id"]]
    started = client.start(claims=cognito(" ", "operator")).body
    assert started["tenant"] is None


@pytest.mark.parametrize(
    "writable",
    [
        {"custom:roles": "admin"},
        {"roles": ["admin"]},
        {"custom:roles": '["operator"]', "roles": "operator"},
    ],
    ids=["custom-roles", "roles", "both"],
)
def test_roles_come_only_from_groups(multi_client: Client, writable: dict[str, Any]) -> None:
    """Cognito users may write their custom attributes: a role there grants nothing."""
    viewer = cognito("acme", "viewer", **writable)
    doc = assert_problem(multi_client.start(claims=viewer), 403)
    assert "operator" in doc["detail"]
    nobody = cognito("acme", **writable)
    assert_problem(multi_client.get("/v1/executions", claims=nobody), 403)
    assert multi_client.start(claims=cognito("acme", "operator")).status == 201


def test_lambda_authorizer_context_carries_tenant_and_roles(multi_client: Client) -> None:
    oidc = {"authorizer": {"principalId": "u1", "tenant": "acme", "roles": "operator"}}
    started = multi_client.start(**oidc)
    assert started.status == 201 and started.body["tenant"] == "acme"
    other = {"authorizer": {"principalId": "u2", "tenant": "globex", "roles": "viewer"}}
    assert multi_client.get(f"/v1/executions/{started.body['id']}", **other).status == 404
    assert multi_client.get("/v1/executions", **other).body["items"] == []


def test_only_admin_lists_across_tenants(multi_client: Client) -> None:
    ids = {
        t: multi_client.start(claims=cognito(t, "operator")).body["id"] for t in ("acme", "globex")
    }
    multi_client.service.wait_idle()

    def listed(claims: dict[str, Any], tenant: str | None = None) -> list[str]:
        query = None if tenant is None else {"tenant": tenant}
        answer = multi_client.get("/v1/executions", claims=claims, query=query)
        assert answer.status == 200, answer.body
        return sorted(i["id"] for i in answer.body["items"])

    operator = cognito("acme", "operator")
    assert listed(operator) == [ids["acme"]]
    assert listed(operator, "acme") == [ids["acme"]]  # naming one's own tenant is fine
    for other in ("globex", "*"):
        doc = assert_problem(
            multi_client.get("/v1/executions", claims=operator, query={"tenant": other}),
            403,
            field="tenant",
        )
        assert "admin" in doc["detail"]
    admin = cognito("acme", "admin")
    assert listed(admin) == [ids["acme"]]  # scoped unless asked: no accidental leaks
    assert listed(admin, "globex") == [ids["globex"]]
    assert listed(admin, "*") == sorted(ids.values())
    # Reads by id stay scoped to the admin's own tenant (listing is the admin action).
    assert multi_client.get(f"/v1/executions/{ids['globex']}", claims=admin).status == 404

"""Who is calling: tenant and roles from the API Gateway authorizer's claims.

REST APIs with a Cognito authorizer put the token's claims in
``requestContext.authorizer.claims``; HTTP APIs with a JWT authorizer in
``requestContext.authorizer.jwt.claims``.  No claims at all (``stepdag serve``, IAM auth,
a Lambda called directly) means a trusted caller: every role, no tenant (unscoped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stepdag.api.errors import Forbidden

TENANT_CLAIMS = ("custom:tenant", "tenant")
ROLE_CLAIMS = ("roles", "cognito:groups", "custom:roles")


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


# What each role may do; admin implies operator implies viewer.
_GRANTS: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    Role.OPERATOR: frozenset({Role.OPERATOR, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Principal:
    tenant: str | None
    roles: frozenset[str]
    authenticated: bool

    def require(self, role: Role) -> None:
        if not self.authenticated:
            return  # no authorizer in front: the caller is trusted (local serve, IAM)
        if not self.roles & _GRANTS[role]:
            have = ", ".join(sorted(self.roles)) or "none"
            raise Forbidden(f"this operation needs the {role.value!r} role (caller has: {have})")


ANONYMOUS = Principal(tenant=None, roles=frozenset(Role), authenticated=False)


def principal(event: dict[str, Any]) -> Principal:
    ctx = event.get("requestContext") or {}
    authorizer = ctx.get("authorizer") if isinstance(ctx, dict) else None
    claims = _claims(authorizer)
    if claims is None:
        return ANONYMOUS
    tenant = next((str(claims[k]) for k in TENANT_CLAIMS if claims.get(k)), None)
    roles: set[str] = set()
    for key in ROLE_CLAIMS:
        roles |= _as_list(claims.get(key))
    return Principal(tenant=tenant, roles=frozenset(r.lower() for r in roles), authenticated=True)


def _claims(authorizer: Any) -> dict[str, Any] | None:
    if not isinstance(authorizer, dict):
        return None
    for claims in (authorizer.get("claims"), (authorizer.get("jwt") or {}).get("claims")):
        if isinstance(claims, dict) and claims:
            return claims
    return None


def _as_list(value: Any) -> set[str]:
    """Claims arrive as a list, a JSON list, or API Gateway's "[a b]" / "a,b" rendering."""
    if value is None:
        return set()
    if isinstance(value, list):
        return {str(v) for v in value if str(v)}
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            text = text.strip("[]")
        else:
            if isinstance(parsed, list):
                return {str(v) for v in parsed if str(v)}
    return {p for p in text.replace(",", " ").split() if p}

"""Who is calling: tenant and roles from what API Gateway's authorizer vouched for.

Only values the caller cannot write count.  API Gateway fills ``requestContext`` itself
(a client cannot send it), and within it:

* a Cognito user pool authorizer (REST: ``authorizer.claims``; HTTP APIs' JWT authorizer:
  ``authorizer.jwt.claims``): roles from ``cognito:groups`` only -- groups are assigned
  by pool administrators, never by the user -- and the tenant from ``custom:tenant``,
  which is safe **only** if no app client of the pool lets users write it (its
  ``WriteAttributes`` must exclude ``custom:tenant``; docs/deployment.md).  ``custom:roles``
  and a bare ``roles`` claim are ignored: Cognito lets users write custom attributes.
* the stack's OIDC Lambda authorizer (``stepdag.handlers.authorizer``): ``authorizer``
  holds ``principalId`` and the context it returned after verifying the token,
  ``tenant`` and ``roles`` (comma-separated).

No authorizer at all (``stepdag serve``, IAM auth, a Lambda called directly) means a
trusted caller: every role, no tenant.  In multi-tenant mode (:class:`Tenancy`) every
caller must carry a tenant: one without is refused (403), never unscoped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from stepdag.api.errors import Forbidden

TENANT_CLAIM: Final = "custom:tenant"
GROUPS_CLAIM: Final = "cognito:groups"
ALL_TENANTS: Final = "*"
"""``GET /v1/executions?tenant=*``: every tenant's runs (admin only)."""


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Tenancy(StrEnum):
    """``single``: callers without a tenant are unscoped (one team, IAM auth).
    ``multi``: a caller without a tenant is refused on every route."""

    SINGLE = "single"
    MULTI = "multi"


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

    def has(self, role: Role) -> bool:
        return not self.authenticated or bool(self.roles & _GRANTS[role])

    def require(self, role: Role, tenancy: Tenancy = Tenancy.SINGLE) -> None:
        if tenancy is Tenancy.MULTI and self.tenant is None:
            raise Forbidden(
                "this API is multi-tenant: the caller's token carries no tenant "
                f"({TENANT_CLAIM} claim, or the OIDC authorizer's tenant claim)"
            )
        if not self.has(role):
            have = ", ".join(sorted(self.roles)) or "none"
            raise Forbidden(f"this operation needs the {role.value!r} role (caller has: {have})")

    def listing_tenant(self, requested: str | None) -> str | None:
        """The tenant a listing is scoped to (None: every tenant).  Without ``requested``
        the caller's own; another tenant, or every tenant (``*``), needs ``admin``."""
        if requested is None or requested == self.tenant:
            return self.tenant
        if not self.has(Role.ADMIN):
            raise Forbidden(
                "listing another tenant's executions needs the 'admin' role", field="tenant"
            )
        return None if requested == ALL_TENANTS else requested


ANONYMOUS = Principal(tenant=None, roles=frozenset(Role), authenticated=False)


def principal(event: dict[str, Any]) -> Principal:
    ctx = event.get("requestContext") or {}
    authorizer = ctx.get("authorizer") if isinstance(ctx, dict) else None
    if not isinstance(authorizer, dict):
        return ANONYMOUS
    claims = _claims(authorizer)
    if claims is not None:
        return _principal(claims.get(TENANT_CLAIM), claims.get(GROUPS_CLAIM))
    if authorizer.get("principalId"):  # a Lambda authorizer's context (handlers/authorizer)
        return _principal(authorizer.get("tenant"), authorizer.get("roles"))
    return ANONYMOUS


def _principal(tenant: Any, roles: Any) -> Principal:
    # A tenant is a string (or a number claim); an empty one, a list or an object is none.
    plain = isinstance(tenant, str | int) and not isinstance(tenant, bool)
    text = str(tenant).strip() if plain else ""
    return Principal(
        tenant=text or None,  # an empty tenant is no tenant, never a tenant named ""
        roles=frozenset(r.lower() for r in _as_list(roles)),
        authenticated=True,
    )


def _claims(authorizer: dict[str, Any]) -> dict[str, Any] | None:
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

"""How the REST API authenticates callers, and what keeps tenancy closed.

* :func:`api_auth` reads the context flags: IAM (default), a Cognito user pool
  (``stepdag:apiUserPoolArn``) or any OIDC issuer (``stepdag:apiOidcIssuer``,
  ``…Audience``, ``…JwksUrl``; claims ``…TenantClaim``/``…RolesClaim``), and the tenancy
  mode the API function gets (``stepdag:apiTenancy``: ``multi`` by default behind a token
  authorizer, ``single`` for IAM).
* :class:`OidcAuthorizer`: a TOKEN Lambda authorizer (``stepdag.handlers.authorizer``).
* :class:`TenantAttributeGuard`: an aspect that fails synthesis for any Cognito app
  client in the app whose users may write ``custom:tenant`` -- the tenant claim is only
  as trustworthy as that setting, and Cognito's default (no ``WriteAttributes``) lets
  users write every attribute, custom ones included.
"""

from __future__ import annotations

from dataclasses import dataclass

import jsii
from aws_cdk import Annotations, Duration, IAspect, RemovalPolicy, Token
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct, Node

from infra import constants as c
from infra.constructs.functions import function_role, stepdag_function
from infra.constructs.storage import StepdagStorage
from infra.nag import acknowledge
from stepdag import constants as contract
from stepdag.api.auth import TENANT_CLAIM, Tenancy


@dataclass(frozen=True)
class Oidc:
    issuer: str
    audience: str  # comma-separated
    jwks_url: str
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"


@dataclass(frozen=True)
class ApiAuth:
    user_pool_arn: str | None = None
    oidc: Oidc | None = None
    tenancy: Tenancy = Tenancy.SINGLE
    tenant_rate: tuple[float, int] | None = None  # (requests per second, burst)

    @property
    def token_auth(self) -> bool:
        """A token authorizer (Cognito or OIDC) rather than IAM."""
        return bool(self.user_pool_arn or self.oidc)


def _text(node: Node, key: str) -> str:
    value = node.try_get_context(key)
    return "" if value is None else str(value).strip()


def api_auth(node: Node) -> ApiAuth:
    pool = _text(node, c.CTX_API_USER_POOL_ARN) or None
    if pool is not None and (not pool.startswith("arn:") or ":userpool/" not in pool):
        raise ValueError(f"{c.CTX_API_USER_POOL_ARN}: not a Cognito user pool ARN: {pool!r}")
    oidc = _oidc(node)
    if pool and oidc:
        raise ValueError(
            f"{c.CTX_API_USER_POOL_ARN} and {c.CTX_API_OIDC_ISSUER}: choose one authorizer"
        )
    token_auth = bool(pool or oidc)
    mode = _text(node, c.CTX_API_TENANCY).lower() or ("multi" if token_auth else "single")
    if mode not in {t.value for t in Tenancy}:
        raise ValueError(f"{c.CTX_API_TENANCY}: single or multi, not {mode!r}")
    if mode == Tenancy.MULTI and not token_auth:
        raise ValueError(
            f"{c.CTX_API_TENANCY}=multi needs a token authorizer ({c.CTX_API_USER_POOL_ARN} "
            f"or {c.CTX_API_OIDC_ISSUER}): IAM callers carry no tenant, so all would be refused"
        )
    tenancy = Tenancy(mode)
    return ApiAuth(
        user_pool_arn=pool, oidc=oidc, tenancy=tenancy, tenant_rate=_tenant_rate(node, tenancy)
    )


def _tenant_rate(node: Node, tenancy: Tenancy) -> tuple[float, int] | None:
    """Each tenant's token bucket: on by default in multi-tenant mode, off with IAM (the
    stage throttle is the limit there); ``stepdag:apiTenantRatePerSecond=0`` turns it off."""
    rate_text, burst_text = _text(node, c.CTX_API_TENANT_RATE), _text(node, c.CTX_API_TENANT_BURST)
    if not rate_text and tenancy is not Tenancy.MULTI:
        return None
    try:
        rate = float(rate_text or c.DEFAULT_TENANT_RATE_PER_S)
        burst = int(burst_text or c.DEFAULT_TENANT_BURST)
    except ValueError:
        raise ValueError(
            f"{c.CTX_API_TENANT_RATE} (a number) and {c.CTX_API_TENANT_BURST} (an integer): "
            f"not {rate_text!r}, {burst_text!r}"
        ) from None
    if rate == 0:
        return None
    if rate < 0 or burst < 1:
        raise ValueError(f"{c.CTX_API_TENANT_RATE} > 0 (0: off) and {c.CTX_API_TENANT_BURST} >= 1")
    return rate, burst


def _oidc(node: Node) -> Oidc | None:
    issuer = _text(node, c.CTX_API_OIDC_ISSUER)
    audience = _text(node, c.CTX_API_OIDC_AUDIENCE)
    jwks = _text(node, c.CTX_API_OIDC_JWKS_URL)
    if not (issuer or audience or jwks):
        return None
    missing = [
        k
        for k, v in (
            (c.CTX_API_OIDC_ISSUER, issuer),
            (c.CTX_API_OIDC_AUDIENCE, audience),
            (c.CTX_API_OIDC_JWKS_URL, jwks),
        )
        if not v
    ]
    if missing:
        raise ValueError(f"the OIDC authorizer also needs {', '.join(missing)}")
    if not jwks.startswith("https://"):
        raise ValueError(f"{c.CTX_API_OIDC_JWKS_URL}: an https URL, not {jwks!r}")
    return Oidc(
        issuer=issuer,
        audience=audience,
        jwks_url=jwks,
        tenant_claim=_text(node, c.CTX_API_OIDC_TENANT_CLAIM) or "tenant",
        roles_claim=_text(node, c.CTX_API_OIDC_ROLES_CLAIM) or "roles",
    )


class OidcAuthorizer(Construct):
    """A TOKEN authorizer verifying the issuer's RS256 tokens; no access to any data."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        oidc: Oidc,
        code: lambda_.Code,
        storage: StepdagStorage,
        log_level: str,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group, self.role = function_role(
            self,
            logs_id="FunctionLogs",
            role_id="FunctionRole",
            description="stepdag API OIDC authorizer (verifies tokens; no data access)",
            removal_policy=removal,
        )
        self.function = stepdag_function(
            self,
            "Function",
            handler=c.AUTHORIZER_HANDLER,
            code=code,
            memory_mb=c.AUTHORIZER_MEMORY_MB,
            timeout_s=c.AUTHORIZER_TIMEOUT_S,
            role=self.role,
            log_group=log_group,
            storage=storage,
            service_name=c.AUTHORIZER_SERVICE_NAME,
            log_level=log_level,
            environment={
                contract.ENV_OIDC_ISSUER: oidc.issuer,
                contract.ENV_OIDC_AUDIENCE: oidc.audience,
                contract.ENV_OIDC_JWKS_URL: oidc.jwks_url,
                contract.ENV_OIDC_TENANT_CLAIM: oidc.tenant_claim,
                contract.ENV_OIDC_ROLES_CLAIM: oidc.roles_claim,
            },
            description="stepdag REST API: OIDC token authorizer",
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no "
            "resource-level permissions; '*' is the only valid resource.",
        )
        # API Gateway caches the answer (tenant and roles included) per token.
        self.authorizer = apigw.TokenAuthorizer(
            self,
            "Authorizer",
            handler=self.function,
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.seconds(c.AUTHORIZER_CACHE_TTL_S),
        )


@jsii.implements(IAspect)
class TenantAttributeGuard:
    """Fails synthesis for a Cognito app client whose users may write ``custom:tenant``."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cognito.CfnUserPoolClient):
            return
        writable = node.write_attributes
        if writable is not None and Token.is_unresolved(writable):
            Annotations.of(node).add_error(
                f"cannot check that users may not write {TENANT_CLAIM}: WriteAttributes is "
                "not known at synthesis; list the writable attributes literally"
            )
        elif writable is None or TENANT_CLAIM in writable:
            Annotations.of(node).add_error(
                f"this app client lets users write {TENANT_CLAIM} (Cognito's default: every "
                "attribute is writable), so any user could join any tenant: set "
                "write_attributes to the attributes users may edit, without it "
                "(docs/deployment.md#tenancy-roles-and-the-cognito-app-client)"
            )

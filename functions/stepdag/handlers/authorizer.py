"""The OIDC authorizer Lambda: ``stepdag.handlers.authorizer.handler``, an API Gateway
TOKEN authorizer for tokens of any OIDC issuer (besides the Cognito authorizer).

It verifies the ``Authorization`` bearer token (``stepdag.api.oidc``: RS256 against the
issuer's JWKS, issuer, audience, expiry) and answers an Allow policy whose context the
API reads (``stepdag.api.auth``): ``tenant`` and ``roles`` (comma-separated), taken from
the configured claims.  Those claims must be ones the issuer sets and users cannot edit
(docs/deployment.md).  Any refusal is ``Unauthorized`` (API Gateway's 401); the reason
is logged, the token never.  Settings, validated at import (cold start):

    STEPDAG_OIDC_ISSUER        required: the exact ``iss``
    STEPDAG_OIDC_AUDIENCE      required: accepted ``aud`` values, comma-separated
    STEPDAG_OIDC_JWKS_URL      required: https URL of the issuer's JWKS
    STEPDAG_OIDC_TENANT_CLAIM  default ``tenant``
    STEPDAG_OIDC_ROLES_CLAIM   default ``roles``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from stepdag import constants as contract
from stepdag.api.oidc import (
    JwksCache,
    KeyLookup,
    OidcConfig,
    TokenRejected,
    audiences,
    claim_list,
    verify,
)
from stepdag.handlers.settings import SettingsError

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway maps to 401


def load_oidc_config(environ: Mapping[str, str] | None = None) -> OidcConfig:
    env = os.environ if environ is None else environ

    def get(name: str, default: str = "") -> str:
        return env.get(name, "").strip() or default

    problems = [
        f"{name} is required but not set"
        for name in (
            contract.ENV_OIDC_ISSUER,
            contract.ENV_OIDC_AUDIENCE,
            contract.ENV_OIDC_JWKS_URL,
        )
        if not get(name)
    ]
    url = get(contract.ENV_OIDC_JWKS_URL)
    if url and not url.startswith("https://"):
        problems.append(f"{contract.ENV_OIDC_JWKS_URL}={url!r}: an https URL")
    if problems:
        raise SettingsError(
            "invalid OIDC authorizer configuration (environment variables):\n  - "
            + "\n  - ".join(problems)
        )
    return OidcConfig(
        issuer=get(contract.ENV_OIDC_ISSUER),
        audiences=audiences(get(contract.ENV_OIDC_AUDIENCE)),
        jwks_url=url,
        tenant_claim=get(contract.ENV_OIDC_TENANT_CLAIM, "tenant"),
        roles_claim=get(contract.ENV_OIDC_ROLES_CLAIM, "roles"),
    )


def authorize(
    event: Mapping[str, Any], config: OidcConfig, keys: KeyLookup, *, now: float | None = None
) -> dict[str, Any]:
    """The authorizer's answer for a TOKEN event; raises TokenRejected."""
    raw = str(event.get("authorizationToken") or "")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("no 'Authorization: Bearer <token>' header")
    claims = verify(token.strip(), config, keys, now=now)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("no subject (sub)")
    tenant = claims.get(config.tenant_claim)
    return {
        "principalId": subject,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _stage_arn(str(event.get("methodArn") or "")),
                }
            ],
        },
        # Context values must be strings, numbers or booleans: no lists.
        "context": {
            "tenant": tenant.strip() if isinstance(tenant, str) else "",
            "roles": ",".join(claim_list(claims.get(config.roles_claim))),
        },
    }


def _stage_arn(method_arn: str) -> str:
    """Every method of the stage: API Gateway caches the answer per token (TTL) and applies
    it to the token's later requests, whatever route they call."""
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path...
    base, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0]
    if not base.startswith("arn:") or not stage:
        raise TokenRejected(f"not an API Gateway method ARN: {method_arn!r}")
    return f"{base}/{stage}/*"


config = load_oidc_config()
logger = Logger(service=os.environ.get(contract.ENV_POWERTOOLS_SERVICE_NAME, "stepdag-authorizer"))
keys = JwksCache(config.jwks_url)


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return authorize(event, config, keys)
    except TokenRejected as exc:
        logger.info("token refused", extra={"reason": str(exc)})
        # API Gateway answers 401 for exactly this message; anything else is a 500.
        raise Exception(UNAUTHORIZED) from None

"""The OIDC authorizer: RS256 tokens verified against JWKS, issuer, audience and lifetime,
with keys generated here (``cryptography`` signs; the code under test only verifies)."""

from __future__ import annotations

import base64
import json
import os
from functools import cache
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from stepdag.api.oidc import JwksCache, OidcConfig, TokenRejected, jwks_keys, verify
from stepdag.handlers.settings import SettingsError

ISSUER = "https://idp.example.com/"
NOW = 1_800_000_000
CONFIG = OidcConfig(
    issuer=ISSUER,
    audiences=frozenset({"stepdag-api"}),
    jwks_url="https://idp.example.com/.well-known/jwks.json",
    tenant_claim="https://stepdag/tenant",
    roles_claim="groups",
)
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/v1/executions"


@cache
def private_key(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwk(name: str, kid: str | None = None, bits: int = 2048) -> dict[str, Any]:
    numbers = private_key(name, bits).public_key().public_numbers()

    def raw(n: int) -> str:
        return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    return {
        "kty": "RSA",
        "kid": kid or name,
        "use": "sig",
        "n": raw(numbers.n),
        "e": raw(numbers.e),
    }


def token(
    claims: dict[str, Any] | None = None,
    *,
    key: str = "k1",
    kid: str = "k1",
    alg: str = "RS256",
    bits: int = 2048,
) -> str:
    body = {
        "iss": ISSUER,
        "aud": "stepdag-api",
        "sub": "user-1",
        "exp": NOW + 300,
        "https://stepdag/tenant": "acme",
        "groups": ["operator", "viewer"],
        **(claims or {}),
    }
    head = b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    signed = f"{head}.{b64(json.dumps(body).encode())}"
    sig = private_key(key, bits).sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{b64(sig)}"


KEYS = jwks_keys({"keys": [jwk("k1"), jwk("k2")]})


def lookup(kid: str) -> Any:
    if kid not in KEYS:
        raise TokenRejected(f"unknown key id {kid!r}")
    return KEYS[kid]


def check(tok: str) -> dict[str, Any]:
    return verify(tok, CONFIG, lookup, now=NOW)


def test_a_valid_token_gives_its_claims() -> None:
    assert check(token())["sub"] == "user-1"
    assert check(token({"aud": ["other", "stepdag-api"]}))["sub"] == "user-1"


def _tamper_payload(tok: str) -> str:
    head, _, rest = tok.partition(".")
    _, _, sig = rest.partition(".")
    body = json.dumps({"iss": ISSUER, "aud": "stepdag-api", "sub": "admin", "exp": NOW + 300})
    return f"{head}.{b64(body.encode())}.{sig}"


@pytest.mark.parametrize(
    ("tok", "reason"),
    [
        (token(key="k2", kid="k1"), "bad signature"),  # signed by another key
        (_tamper_payload(token()), "bad signature"),
        (token()[:-4] + "AAAA", "bad signature"),
        (token({"iss": "https://evil.example.com/"}), "issuer"),
        (token({"aud": "someone-else"}), "audience"),
        (token({"aud": []}), "audience"),
        (token({"exp": NOW - 61}), "expired"),
        (token({"exp": None}), "no expiry"),
        (token({"nbf": NOW + 120}), "not valid yet"),
        (token(kid="k9"), "unknown key id"),
        (token(alg="HS256"), "algorithm"),
        (token(alg="none"), "algorithm"),
        ("a.b", "three"),
        ("not-base64!.x.y", "base64url"),
        ("", "no token"),
    ],
    ids=[
        "other-key",
        "tampered",
        "bad-sig-bytes",
        "issuer",
        "audience",
        "no-audience",
        "expired",
        "no-exp",
        "nbf",
        "unknown-kid",
        "hs256",
        "none",
        "two-parts",
        "garbage",
        "empty",
    ],
)
def test_refusals(tok: str, reason: str) -> None:
    with pytest.raises(TokenRejected, match=reason):
        check(tok)


def test_an_expired_token_within_the_leeway_passes() -> None:
    assert check(token({"exp": NOW - 30}))["sub"] == "user-1"


def test_keys_under_2048_bits_are_not_trusted() -> None:
    weak = jwks_keys({"keys": [jwk("weak", bits=1024)]})
    with pytest.raises(TokenRejected, match="bad signature"):
        verify(token(key="weak", kid="weak", bits=1024), CONFIG, weak.__getitem__, now=NOW)


def test_jwks_keys_skip_what_cannot_sign_rs256() -> None:
    enc = {**jwk("k1", "enc"), "use": "enc"}
    ec = {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}
    assert set(jwks_keys({"keys": [enc, ec, {"kty": "RSA", "kid": "broken"}, jwk("k1")]})) == {"k1"}


def test_jwks_cache_refetches_for_a_new_kid_at_most_once_a_minute() -> None:
    documents = [{"keys": [jwk("k1")]}, {"keys": [jwk("k1"), jwk("k2")]}]
    fetched: list[str] = []
    clock = {"t": 0.0}

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return documents[min(len(fetched), len(documents)) - 1]

    cache_ = JwksCache(CONFIG.jwks_url, fetch=fetch, clock=lambda: clock["t"])
    assert verify(token(), CONFIG, cache_, now=NOW)
    with pytest.raises(TokenRejected, match="unknown key id"):
        verify(token(key="k2", kid="k2"), CONFIG, cache_, now=NOW)  # fetched less than 60 s ago
    assert len(fetched) == 1
    clock["t"] = 61
    assert verify(token(key="k2", kid="k2"), CONFIG, cache_, now=NOW)  # rotated in
    assert len(fetched) == 2
    with pytest.raises(ValueError, match="https"):
        JwksCache("http://idp.example.com/jwks")


# ------------------------------------------------------------------ the Lambda authorizer

ENV = {
    "STEPDAG_OIDC_ISSUER": ISSUER,
    "STEPDAG_OIDC_AUDIENCE": "stepdag-api, console",
    "STEPDAG_OIDC_JWKS_URL": CONFIG.jwks_url,
    "STEPDAG_OIDC_TENANT_CLAIM": "https://stepdag/tenant",
    "STEPDAG_OIDC_ROLES_CLAIM": "groups",
}


def _authorizer_module() -> Any:
    import importlib
    import sys

    sys.modules.pop("stepdag.handlers.authorizer", None)
    try:
        with mock.patch.dict(os.environ, ENV):
            return importlib.import_module("stepdag.handlers.authorizer")
    finally:
        sys.modules.pop("stepdag.handlers.authorizer", None)


def test_the_authorizer_answers_an_allow_policy_with_tenant_and_roles() -> None:
    module = _authorizer_module()
    assert module.config.audiences == {"stepdag-api", "console"}
    event = {"type": "TOKEN", "authorizationToken": f"Bearer {token()}", "methodArn": METHOD_ARN}
    answer = module.authorize(event, module.config, lookup, now=NOW)
    assert answer["principalId"] == "user-1"
    assert answer["context"] == {"tenant": "acme", "roles": "operator,viewer"}
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*",
    }
    no_tenant = module.authorize(
        {**event, "authorizationToken": f"Bearer {token({'https://stepdag/tenant': None})}"},
        module.config,
        lookup,
        now=NOW,
    )
    assert no_tenant["context"]["tenant"] == ""  # the API refuses it in multi-tenant mode


@pytest.mark.parametrize(
    "header",
    [token(), f"Basic {token()}", "Bearer ", f"Bearer {token({'iss': 'x'})}"],
    ids=["no-scheme", "basic", "empty", "bad-token"],
)
def test_the_handler_answers_unauthorized(header: str) -> None:
    module = _authorizer_module()
    module.keys = lookup
    event = {"type": "TOKEN", "authorizationToken": header, "methodArn": METHOD_ARN}
    with (
        mock.patch("time.time", return_value=NOW),
        pytest.raises(Exception, match=r"^Unauthorized$"),
    ):
        module.handler(event, None)


def test_the_authorizer_settings_name_every_problem() -> None:
    with pytest.raises(SettingsError) as err:
        _authorizer_module().load_oidc_config({"STEPDAG_OIDC_JWKS_URL": "http://idp/jwks"})
    text = str(err.value)
    assert "STEPDAG_OIDC_ISSUER is required" in text
    assert "STEPDAG_OIDC_AUDIENCE is required" in text
    assert "an https URL" in text

"""Verifying an OIDC/JWT bearer token: RS256 against the issuer's JWKS, issuer, audience,
expiry -- what the stack's Lambda authorizer (``stepdag.handlers.authorizer``) runs.

Standard library only, so the API's code asset needs no JWT or crypto wheel.  RS256 is
RSASSA-PKCS1-v1_5 with SHA-256: verification is one modular exponentiation and a
comparison with the *whole* expected encoding (RFC 8017 section 8.2.2, the "encode and
compare" method), never a parse of the decrypted block, which is what made e=3
signature forgeries possible in parsers.  Only RS256 is accepted: the header cannot
choose ``none`` or an HMAC algorithm keyed with the public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

ALGORITHM: Final = "RS256"
MIN_RSA_BITS: Final = 2048
# DER of DigestInfo{sha256, NULL} up to the digest (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO: Final = bytes.fromhex("3031300d060960864801650304020105000420")
MAX_TOKEN_CHARS: Final = 8192


class TokenRejected(Exception):
    """The token is not one we accept; the message says why (logged, never returned)."""


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int


KeyLookup = Callable[[str], RsaKey]
"""kid -> the issuer's key; raises TokenRejected for an unknown kid."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audiences: frozenset[str]
    jwks_url: str
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    leeway_s: int = 60  # clock skew tolerated on exp/nbf


def verify(
    token: str, config: OidcConfig, keys: KeyLookup, *, now: float | None = None
) -> dict[str, Any]:
    """The token's claims if its signature, issuer, audience and lifetime check out."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise TokenRejected("no token, or one too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("not a JWS compact token (three dot-separated parts)")
    header = _json_part(parts[0], "header")
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the header names no key (kid)")
    signature = _b64(parts[2], "signature")
    if not _rs256_valid(keys(kid), f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
        raise TokenRejected("bad signature")
    claims = _json_part(parts[1], "payload")
    _check_claims(claims, config, time.time() if now is None else now)
    return claims


def _check_claims(claims: dict[str, Any], config: OidcConfig, now: float) -> None:
    if claims.get("iss") != config.issuer:
        raise TokenRejected(f"issuer {claims.get('iss')!r} is not {config.issuer!r}")
    aud = claims.get("aud")
    audiences = {aud} if isinstance(aud, str) else set(aud) if isinstance(aud, list) else set()
    if not audiences & config.audiences:
        raise TokenRejected(f"audience {aud!r} is not one of {sorted(config.audiences)}")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenRejected("no expiry (exp)")
    if now > exp + config.leeway_s:
        raise TokenRejected("expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and now < nbf - config.leeway_s:
        raise TokenRejected("not valid yet (nbf)")


def _rs256_valid(key: RsaKey, signed: bytes, signature: bytes) -> bool:
    k = (key.n.bit_length() + 7) // 8
    if key.n.bit_length() < MIN_RSA_BITS or len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    decoded = pow(s, key.e, key.n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(signed).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(decoded, expected)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenRejected(f"the {what} is not base64url") from exc


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64(text, what))
    except (ValueError, RecursionError) as exc:
        raise TokenRejected(f"the {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TokenRejected(f"the {what} is not a JSON object")
    return value


def jwks_keys(document: Mapping[str, Any]) -> dict[str, RsaKey]:
    """The RSA signing keys of a JWKS document, by kid."""
    out: dict[str, RsaKey] = {}
    for jwk in document.get("keys") or []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            n = int.from_bytes(_b64(str(jwk["n"]), "modulus"), "big")
            e = int.from_bytes(_b64(str(jwk["e"]), "exponent"), "big")
        except (KeyError, TokenRejected):
            continue
        if isinstance(jwk.get("kid"), str):
            out[jwk["kid"]] = RsaKey(n, e)
    return out


class JwksCache:
    """The issuer's keys, fetched on first use and again (at most every ``min_refresh_s``)
    when a token names a kid we do not have: issuers rotate keys by publishing new ones."""

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], Mapping[str, Any]] | None = None,
        min_refresh_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url.startswith("https://"):
            raise ValueError(f"the JWKS URL must be https: {url!r}")
        self.url = url
        self._fetch = fetch or _fetch_json
        self._min_refresh_s = min_refresh_s
        self._clock = clock
        self._keys: dict[str, RsaKey] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, kid: str) -> RsaKey:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._min_refresh_s:
                self._fetched_at = now
                self._keys = jwks_keys(self._fetch(self.url))
        key = self._keys.get(kid)
        if key is None:
            raise TokenRejected(f"unknown key id {kid!r}")
        return key


def _fetch_json(url: str) -> Mapping[str, Any]:
    # https only: JwksCache refuses any other scheme before calling this
    with urllib.request.urlopen(url, timeout=3) as response:  # nosec B310
        document = json.loads(response.read(1_000_000))
    if not isinstance(document, dict):
        raise TokenRejected(f"{url} did not answer a JWKS object")
    return document


def claim_list(value: Any) -> list[str]:
    """A roles claim as a list: a JSON array, or a comma/space-separated string."""
    if isinstance(value, list):
        return sorted({str(v) for v in value if str(v).strip()})
    if isinstance(value, str):
        return sorted({p for p in value.replace(",", " ").split() if p})
    return []


def audiences(value: str | Collection[str]) -> frozenset[str]:
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(a.strip() for a in items if a.strip())

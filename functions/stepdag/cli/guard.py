"""The rules ``stepdag serve`` applies to a request before the API sees it.

API Gateway does this on AWS (it answers only its own host names, and the API there is
behind IAM or Cognito auth); a server on loopback with no auth must do it itself, or any
web page the user opens can drive it:

* **Host allow-list** (DNS rebinding: ``evil.example`` re-resolved to 127.0.0.1 makes
  the browser treat this server as that site, so the page could read outputs).  Allowed
  by default: ``localhost``, ``127.0.0.1`` and ``::1`` on any port (only this machine
  reaches them, and a tunnel's local port may differ) and the bound address with its
  port; ``--allow-host NAME[:PORT]`` adds more.  A foreign, missing (HTTP/1.1) or doubled
  ``Host`` is refused.
* **Origin check** for state-changing methods (POST, PUT, PATCH, DELETE): a cross-site
  form or ``fetch`` with a "simple" content type needs no CORS preflight, so only the
  ``Origin`` header tells it apart.  Same-origin (``http://`` + the request's Host) or an
  ``--allow-origin`` origin passes; no ``Origin`` at all passes (curl, the CLI, scripts:
  browsers always send it on these methods).
* **JSON-only bodies** for those methods: a body needs ``Content-Type: application/json``
  (415 otherwise), which a cross-site form cannot send.
* **A body cap** (:data:`MAX_BODY_BYTES`, 1 MiB: above the API's execution-input limit,
  so the API still answers oversized *inputs* itself, with their size and limit); a
  body over it is refused before it is read.  Bodies need ``Content-Length``: a chunked
  body would otherwise be left on the connection and read as the next request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1 << 20
LOOPBACK = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
JSON_MEDIA_TYPE = "application/json"
# Recognised in --host (which address the server listens on), never bound here.
_WILDCARDS = ("", "0.0.0.0", "::")  # nosec B104


class Refused(Exception):
    """A request the server answers itself, with a problem document."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` (or ``--allow-host``) ``name[:port]`` / ``[v6][:port]`` -> (name, port).

    Names are lower-cased without a trailing dot; ValueError if it is not a host."""
    text = value.strip().lower()
    parts = urlsplit("//" + text)
    try:
        name, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        raise ValueError(f"not a host[:port]: {value!r}") from None
    if not name or parts.path or parts.query or parts.fragment or "@" in text:
        raise ValueError(f"not a host[:port]: {value!r}")
    return name.rstrip("."), port


def _shown(name: str, port: int | None) -> str:
    host = f"[{name}]" if ":" in name else name
    return host if port is None else f"{host}:{port}"


def _origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an ``Origin``, or None for ``null`` and garbage."""
    parts = urlsplit(value.strip().lower())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.rstrip("."), port or default


def media_type(content_type: str) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json`` (case-insensitive)."""
    return content_type.split(";", maxsplit=1)[0].strip().lower()


def canonical_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The request headers as the resolver gets them: a JSON ``Content-Type`` in lower
    case, since Powertools matches ``application/json`` case-sensitively (a 500)."""
    headers = dict(items)
    for key, value in headers.items():
        if key.lower() == "content-type" and media_type(value) == JSON_MEDIA_TYPE:
            _, sep, params = value.partition(";")
            headers[key] = JSON_MEDIA_TYPE + sep + params
    return headers


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


@dataclass(frozen=True)
class Policy:
    """The request rules of one server (see the module docstring)."""

    hosts: frozenset[tuple[str, int | None]]
    """Allowed (name, port) pairs; port None: any port."""
    origins: frozenset[tuple[str, str, int]] = field(default_factory=frozenset)
    max_body: int = MAX_BODY_BYTES

    @classmethod
    def local(
        cls,
        host: str,
        port: int,
        *,
        allow_hosts: Iterable[str] = (),
        allow_origins: Iterable[str] = (),
        max_body: int = MAX_BODY_BYTES,
    ) -> Policy:
        """Loopback names, the bound ``host:port`` and the extra hosts and origins.

        ValueError naming the bad entry (the CLI shows it as a bad option)."""
        hosts: set[tuple[str, int | None]] = {(name, None) for name in LOOPBACK}
        if host not in _WILDCARDS:
            name, _ = split_host(host if ":" not in host else f"[{host}]")
            hosts.add((name, None) if _is_loopback(name) else (name, port))
        hosts.update(split_host(h) for h in allow_hosts)
        origins = set()
        for value in allow_origins:
            parsed = _origin(value)
            if parsed is None:
                raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
            origins.add(parsed)
        return cls(frozenset(hosts), frozenset(origins), max_body)

    def admit(self, method: str, headers: Message, version: str) -> int:
        """The request body's length, once every rule passes; :class:`Refused` if not."""
        host = self._host(headers, version)
        length = self._length(headers)
        if method in STATE_CHANGING:
            self._same_origin(headers, host)
            if length:
                self._json(headers)
        return length

    def _host(self, headers: Message, version: str) -> tuple[str, int] | None:
        values = headers.get_all("Host") or []
        if len(values) > 1:
            raise Refused(400, "bad_host", "more than one Host header")
        if not values:
            if version == "HTTP/1.0":
                return None  # HTTP/1.0 needs no Host (and no browser sends 1.0)
            raise Refused(400, "bad_host", "an HTTP/1.1 request needs a Host header")
        try:
            name, port = split_host(values[0])
        except ValueError as exc:
            raise Refused(400, "bad_host", f"Host: {exc}") from None
        if (name, None) not in self.hosts and (name, port or 80) not in self.hosts:
            allowed = ", ".join(sorted(_shown(n, p) for n, p in self.hosts))
            raise Refused(
                403,
                "host_not_allowed",
                f"Host {_shown(name, port)!r} is not allowed (this server answers {allowed}); "
                f"start stepdag serve with --allow-host {_shown(name, port)} to accept it",
            )
        return name, port or 80

    def _length(self, headers: Message) -> int:
        if headers.get("Transfer-Encoding") is not None:
            raise Refused(411, "length_required", "a request body needs Content-Length")
        values = headers.get_all("Content-Length") or []
        if not values:
            return 0
        text = values[0].strip()
        if len(values) > 1 or not text.isdigit():
            raise Refused(400, "bad_content_length", f"Content-Length {', '.join(values)!r}")
        length = int(text)
        if length > self.max_body:
            raise Refused(
                413,
                "body_too_large",
                f"the request body is {length} bytes; this server accepts {self.max_body}",
            )
        return length

    def _same_origin(self, headers: Message, host: tuple[str, int] | None) -> None:
        value = headers.get("Origin")
        if value is None:
            return  # not a browser: curl, the CLI, a script
        origin = _origin(value)
        if origin is not None and (
            origin in self.origins or (host is not None and origin == ("http", *host))
        ):
            return
        raise Refused(
            403,
            "origin_not_allowed",
            f"Origin {value!r} may not change state here (same origin only); "
            "start stepdag serve with --allow-origin to accept it",
        )

    def _json(self, headers: Message) -> None:
        kind = headers.get("Content-Type")
        if kind is None or media_type(kind) != JSON_MEDIA_TYPE:
            raise Refused(
                415,
                "unsupported_media_type",
                f"Content-Type {kind!r}: request bodies must be {JSON_MEDIA_TYPE}",
            )


__all__ = [
    "LOOPBACK",
    "MAX_BODY_BYTES",
    "METHODS",
    "Policy",
    "Refused",
    "canonical_headers",
    "media_type",
    "split_host",
]

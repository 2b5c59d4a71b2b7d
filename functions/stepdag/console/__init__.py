"""The web console: plain HTML + JS + CSS, no build step, shipped as package data.

``stepdag serve`` serves these files at ``/`` next to the REST API; ``stepdag console
export DIR --api URL`` writes them to a folder to host anywhere (S3, any static server).
The page reads ``config.json`` beside ``index.html`` to find the API, so the same files
work in both places.  Standard library only: the console is static files, not a layer
of the runtime (nothing here imports the rest of stepdag).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

CONFIG = "config.json"

# The files the page is made of (served by name; anything else is not a console file).
ASSETS = ("index.html", "style.css", "util.js", "dag.js", "app.js")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
}


def asset(name: str) -> bytes:
    """The bytes of one console file; KeyError for a name that is not one."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__name__).joinpath(name).read_bytes()


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def config(api: str = "", *, events: bool = False, auth: str | None = None) -> bytes:
    """``config.json``: the API base URL ('' = the page's own origin), whether the server
    streams server-sent events (only ``stepdag serve`` does: Lambda cannot stream), and
    the auth scheme: ``"token"`` makes the page ask for a token (a Cognito ID token)
    and send it as the ``Authorization`` header."""
    body: dict[str, object] = {"api": api.rstrip("/"), "events": events}
    if auth:
        body["auth"] = auth
    return (json.dumps(body, indent=2) + "\n").encode()


def export(
    directory: Path, api: str = "", *, events: bool = False, auth: str | None = None
) -> list[Path]:
    """Write the console's files and its ``config.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ASSETS:
        target = directory / name
        target.write_bytes(asset(name))
        written.append(target)
    target = directory / CONFIG
    target.write_bytes(config(api, events=events, auth=auth))
    written.append(target)
    return written


__all__ = ["ASSETS", "CONFIG", "asset", "config", "content_type", "export"]

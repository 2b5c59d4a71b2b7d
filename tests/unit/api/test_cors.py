"""CORS: a console on an allowed origin may call the API; any other origin gets nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepdag.api.app import build_app
from stepdag.api.service import LocalExecutionService
from stepdag.constants import CORS_HEADERS
from stepdag.handlers.api_settings import load_api_settings
from stepdag.handlers.settings import SettingsError
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.api import workflows
from tests.unit.api.conftest import event

CONSOLE = "https://console.example.com"
DEV = "http://localhost:5173"


@pytest.fixture
def resolve(tmp_path: Path) -> Any:
    with SqliteStore(tmp_path / "cors.db") as store:
        app = build_app(LocalExecutionService(store, workflows.ALL), cors_origins=[CONSOLE, DEV])

        def call(method: str, path: str, origin: str | None) -> dict[str, Any]:
            headers = {} if origin is None else {"Origin": origin}
            if method == "OPTIONS":
                headers["Access-Control-Request-Method"] = "POST"
            raw: dict[str, Any] = app.resolve(event(method, path, headers=headers), None)
            merged = {**(raw.get("multiValueHeaders") or {}), **(raw.get("headers") or {})}
            raw["h"] = {k: v[0] if isinstance(v, list) else v for k, v in merged.items()}
            return raw

        yield call


def test_allowed_origins_get_the_headers_on_answers_and_errors(resolve: Any) -> None:
    for origin in (CONSOLE, DEV):
        ok = resolve("GET", "/v1/workflows", origin)
        assert ok["statusCode"] == 200
        assert ok["h"]["Access-Control-Allow-Origin"] == origin
        missing = resolve("GET", "/v1/executions/nope", origin)  # a problem document
        assert missing["statusCode"] == 404
        assert missing["h"]["Access-Control-Allow-Origin"] == origin


def test_preflight_names_the_methods_and_headers(resolve: Any) -> None:
    pre = resolve("OPTIONS", "/v1/workflows/api_demo/executions", CONSOLE)
    assert pre["statusCode"] == 204
    assert pre["h"]["Access-Control-Allow-Origin"] == CONSOLE
    allowed = {h.strip().lower() for h in pre["h"]["Access-Control-Allow-Headers"].split(",")}
    assert {h.lower() for h in CORS_HEADERS} <= allowed
    assert "POST" in pre["h"]["Access-Control-Allow-Methods"]


def test_other_origins_and_no_origin_get_no_cors_headers(resolve: Any) -> None:
    for origin in ("https://evil.example.com", "https://console.example.com.evil.net", None):
        answer = resolve("GET", "/v1/workflows", origin)
        assert answer["statusCode"] == 200
        assert not any(k.lower().startswith("access-control-") for k in answer["h"]), origin


def test_without_origins_the_api_sends_no_cors_headers(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "plain.db") as store:
        app = build_app(LocalExecutionService(store, workflows.ALL))
        raw = app.resolve(event("GET", "/v1/workflows", headers={"Origin": CONSOLE}), None)
    headers = {**(raw.get("multiValueHeaders") or {}), **(raw.get("headers") or {})}
    assert not any(k.lower().startswith("access-control-") for k in headers)


def _env(origins: str) -> dict[str, str]:
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:etl:live"
    return {
        "STEPDAG_TABLE_NAME": "stepdag-table",
        "STEPDAG_STATE_MACHINES": f'{{"etl": "{arn}"}}',
        "STEPDAG_CORS_ORIGINS": origins,
    }


def test_settings_read_origins_and_name_the_bad_ones() -> None:
    assert load_api_settings(_env(f" {CONSOLE}, {DEV} ")).cors_origins == (CONSOLE, DEV)
    with pytest.raises(SettingsError) as info:
        load_api_settings(_env("*, https://console.example.com/app"))
    text = str(info.value)
    assert "STEPDAG_CORS_ORIGINS" in text and "'*'" in text and "/app" in text

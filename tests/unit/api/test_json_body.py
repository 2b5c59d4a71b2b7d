"""The API's body parser (the Lambda's path as well as serve's): a number Python refuses to
convert is a 400 naming the body, not a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepdag.api.app import build_app, json_body
from stepdag.api.service import LocalExecutionService
from stepdag.core.inputs import NotJson
from stepdag.runtime.sqlite import SqliteStore
from tests.unit.api import workflows
from tests.unit.api.conftest import event


def test_a_five_thousand_digit_integer_is_an_invalid_request(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "api.db")
    app = build_app(LocalExecutionService(store, workflows.ALL))
    request = event(
        "POST", "/v1/workflows/api_demo/executions", headers={"Content-Type": "application/json"}
    )
    request["body"] = '{"input": {"n": ' + "7" * 5000 + "}}"
    answer = app.resolve(request, None)
    status, data = answer["statusCode"], answer["body"]
    headers = {**(answer.get("multiValueHeaders") or {}), **(answer.get("headers") or {})}
    problem = json.loads(data)
    assert status == 400 and "application/problem+json" in str(headers["Content-Type"])
    assert problem["code"] == "invalid_request" and problem["field"] == "body"
    assert "5000 digits" in problem["detail"] and "set_int_max_str_digits" not in problem["detail"]
    store.close()


def test_json_body_refuses_malformed_and_non_strict_json_in_one_line() -> None:
    # One parser for every entry (core.inputs.loads): the position of a syntax error, and
    # NaN refused, both as NotJson (a 400 problem document, code not_json).
    assert json_body('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    with pytest.raises(NotJson, match="not valid JSON: Expecting value at line 1 column 7"):
        json_body('{"a": ')
    with pytest.raises(NotJson, match="NaN"):
        json_body('{"a": NaN}')

"""Tampered, forged or garbage next_token values are a 400 problem document, never a 500."""

from __future__ import annotations

import pytest

from stepdag.runtime.records import make_page_token
from tests.unit.api.conftest import Client
from tests.unit.api.test_routes import assert_problem

OLD_SOURCE_KEY = b"stepdag/pagination/v1"  # was in the source: anyone could sign with it


@pytest.mark.parametrize(
    "token",
    [
        make_page_token([10**30, "x"], [None, None, None], OLD_SOURCE_KEY),  # was a 500
        make_page_token([1, "x"], [None, None, None], OLD_SOURCE_KEY),
        make_page_token({"index": "GSI1", "key": {}}, [None, None, None], OLD_SOURCE_KEY),
        "garbage",
        "A" * 2048,
        "%%%",
    ],
    ids=["forged-large-int", "forged", "forged-dynamodb", "garbage", "long", "not-base64"],
)
def test_bad_tokens_are_400(client: Client, token: str) -> None:
    for _ in range(3):
        client.start()
    client.service.wait_idle()
    good = client.get("/v1/executions", query={"limit": "1"}).body["next_token"]
    assert good and client.get("/v1/executions", query={"next_token": good}).status == 200
    answer = client.get("/v1/executions", query={"limit": "1", "next_token": token})
    doc = assert_problem(answer, 400, field="next_token")
    assert doc["code"] == "invalid_pagination_token"
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    assert_problem(client.get("/v1/executions", query={"next_token": tampered}), 400)

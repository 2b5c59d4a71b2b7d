"""``stepdag serve`` fuzzed by schemathesis against its own OpenAPI document.

The real server (ThreadingHTTPServer -> API Gateway event -> the Lambda resolver) runs
in a thread on a free loopback port; schemathesis generates requests for every operation
(a few derandomized examples each, so the run is reproducible and bounded) and checks
every answer: no 5xx, and status code, content type and body as documented.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stepdag.api.service import LocalExecutionService
from stepdag.runtime.sqlite import SqliteStore
from tests.support.api_server import serving_server
from tests.unit.api import workflows

EXAMPLES_PER_OPERATION = 25
BUDGET_SECONDS = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workflows.GATE.set()  # nothing the fuzzer starts may block
    store = SqliteStore(Path(tmp_path_factory.mktemp("serve")) / "api.db")
    service = LocalExecutionService(store, workflows.ALL)
    with serving_server(service) as (url, _server):
        yield url
    service.wait_idle()
    store.close()


def test_serve_conforms_to_its_openapi_document(base_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/v1/openapi.json")
    requests = 0
    failures: list[str] = []
    server_errors = 0
    started = time.monotonic()
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == 13
    # Valid requests and invalid ones (wrong types, out-of-range values, bad bodies).
    runs = [(op, mode) for op in operations for mode in GenerationMode]

    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: object) -> None:
            nonlocal requests, server_errors
            response = case.call(base_url=base_url, timeout=10)  # type: ignore[attr-defined]
            requests += 1
            if response.status_code >= 500:
                server_errors += 1
            try:
                case.validate_response(response, checks=CHECKS)  # type: ignore[attr-defined]
            except Exception as exc:  # collect all, report together
                failures.append(f"{case.method} {case.formatted_path}: {exc}")  # type: ignore[attr-defined]

        try:
            run()
        except Unsatisfiable:
            # No negative case exists for an operation without inputs (GET /v1/health).
            assert mode is GenerationMode.NEGATIVE
        assert time.monotonic() - started < BUDGET_SECONDS, "schemathesis run over budget"

    elapsed = time.monotonic() - started
    print(
        f"schemathesis: {requests} requests, {len(operations)} operations (positive and "
        f"negative) in {elapsed:.1f}s; "
        f"5xx: {server_errors}; violations: {len(failures)}"
    )
    assert server_errors == 0
    assert not failures, "\n\n".join(failures[:10])

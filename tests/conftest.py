"""Suite-wide collection rules.

``make test`` runs pytest on two workers (pytest-xdist, ``--dist loadgroup``).  Tests that
share one expensive server per session are kept on one worker, so each server starts
once rather than once per worker: LocalStack (~12 s, ~630 MB), DynamoDB Local (a JVM) and
headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_GROUPS = {
    "integration/localstack": "localstack",
    "integration/test_dynamodb_local.py": "dynamodb-local",
    "e2e/test_console_browser.py": "chromium",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        where = item.path.resolve().relative_to(_HERE).as_posix()
        for prefix, group in _GROUPS.items():
            if where.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))

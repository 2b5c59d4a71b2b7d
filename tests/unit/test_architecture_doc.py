"""docs/architecture.md stays true: it names every module of the package and of infra/,
and every module path it names exists (a moved or deleted module fails here)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "functions" / "stepdag"
# A backticked path ending in .py: `runtime/engine.py`, `infra/stack.py`, `client.py`.
NAMED = re.compile(r"`([A-Za-z0-9_/]+\.py)`")


def modules() -> list[str]:
    found = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    ]
    found += [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "infra").rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    ]
    return sorted(found)


def named() -> set[str]:
    return set(NAMED.findall(DOC.read_text()))


def test_every_module_is_named() -> None:
    missing = [m for m in modules() if m not in named()]
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_every_named_module_exists() -> None:
    roots = (PACKAGE, REPO, REPO / "functions")  # `runtime/x.py`, `infra/x.py`, `stepdag/x.py`
    stale = sorted(n for n in named() if not any((root / n).is_file() for root in roots))
    assert not stale, f"docs/architecture.md names modules that do not exist: {stale}"


def test_every_package_has_a_section() -> None:
    text = DOC.read_text()
    packages = sorted(
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != "console"
    )
    assert packages, "no packages found"
    for package in packages:
        assert f"`{package}/`" in text, f"docs/architecture.md has no `{package}/` entry"

"""Cache keys mean "same code + inputs", end to end: every run is a new ``stepdag run``
process (a user editing their project between runs), and the node record says whether
the cached node hit.

Changing what the cached function reads -- a module constant, a helper in its module,
a helper or constant in another module of its package -- misses; editing what it does
not read hits; the key is the same in two processes with different hash seeds; a
``Cache(version=...)`` bump misses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepdag.runtime.records import NodeKey
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]

FLOW = """\
from stepdag import Cache, Workflow

from shop import rates
from shop.rates import tax

DISCOUNT = 0.5
KINDS = {"retail", "online", "wholesale", "staff", "partner"}

wf = Workflow("shop")


def _round(x: float) -> float:
    return round(x, 2)


@wf.node(cache=Cache(version="1"))
def price(params: dict[str, float]) -> float:
    base = params["amount"] * DISCOUNT * rates.FACTOR
    if "retail" in KINDS and params.get("kind", "retail") in {"retail", "online", "staff"}:
        base += tax(params["amount"])
    return _round(base)
"""
RATES = """\
FACTOR = 2


def tax(x: float) -> float:
    return x * 0.1
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("")
    (shop / "flow.py").write_text(FLOW)
    (shop / "rates.py").write_text(RATES)
    (shop / "unrelated.py").write_text("SETTING = 1\n")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def _run(project: Path, name: str, seed: str = "0") -> tuple[bool, str, float]:
    """``stepdag run`` in a new process; (cache hit?, key, output) of node ``price``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "functions"),
        "PYTHONHASHSEED": seed,
        "STEPDAG_HOME": str(project / ".stepdag"),
        "STEPDAG_NO_LIVE": "1",
    }
    env.pop("STEPDAG_REMOTE", None)
    args = ["run", "shop/flow.py:wf", "--name", name, "--input", '{"amount": 10}']
    res = subprocess.run(
        [sys.executable, "-m", "stepdag.cli.main", *args],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    store = SqliteStore(project / ".stepdag" / "stepdag.db")
    try:
        rec = store.get_execution(name, workflow="shop")
        node = store.get_node(NodeKey(rec.execution_id, "price"))
    finally:
        store.close()
    assert node is not None and node.cache_key is not None
    return bool(node.cache_hit), node.cache_key, node.output


def test_cache_key_follows_the_code_the_function_reads(project: Path) -> None:
    flow, rates = project / "shop" / "flow.py", project / "shop" / "rates.py"

    hit, key, out = _run(project, "first", seed="1")
    assert (hit, out) == (False, 11.0)

    # Same code, another process and hash seed (the set constants iterate differently).
    hit, again, out = _run(project, "same-code", seed="2")
    assert (hit, again, out) == (True, key, 11.0)

    _edit(flow, "DISCOUNT = 0.5", "DISCOUNT = 0.25")  # a module constant it reads
    hit, key, out = _run(project, "constant")
    assert (hit, out) == (False, 6.0)

    _edit(flow, "round(x, 2)", "round(x + 0.004, 2)")  # a helper function it calls
    hit, key, out = _run(project, "helper")
    assert (hit, out) == (False, 6.0) and key != again

    _edit(rates, "x * 0.1", "x * 0.2")  # a helper of another module of the package
    hit, key2, out = _run(project, "package-helper")
    assert (hit, out) == (False, 7.0) and key2 != key

    _edit(rates, "FACTOR = 2", "FACTOR = 4")  # module.attr in another module
    hit, key3, out = _run(project, "module-attr")
    assert (hit, out) == (False, 12.0) and key3 != key2

    _edit(flow, '{"retail", "online", "staff"}', '{"retail", "online"}')  # a set constant
    hit, key4, out = _run(project, "set-constant")
    assert (hit, out) == (False, 12.0) and key4 != key3

    # What it does not read: another module, another constant, lines moved and comments.
    (project / "shop" / "unrelated.py").write_text("SETTING = 2\n")
    _edit(rates, "def tax", "UNUSED = 3\n\n\ndef tax")
    _edit(flow, "wf = Workflow", "# the shop\nOTHER = 42\n\nwf = Workflow")
    hit, key5, out = _run(project, "unrelated")
    assert (hit, key5, out) == (True, key4, 12.0)

    _edit(flow, 'Cache(version="1")', 'Cache(version="2")')
    hit, key6, _ = _run(project, "version")
    assert hit is False and key6 != key5

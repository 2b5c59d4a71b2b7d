"""``code_fingerprint``: the code half of a cache key covers the function, the module-level
names it reads (recursively through its package's helpers), closures and annotations;
it is deterministic across processes and survives values with no stable encoding."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepdag.core.fingerprint import code_fingerprint

REPO = Path(__file__).resolve().parents[3]
_names = itertools.count()


def _fn(source: str, name: str = "node", package: str | None = None) -> Callable[..., Any]:
    """``name`` from ``source`` executed as a fresh module (of ``package``, if given).

    Each call is a new module with the same name pattern, so two calls with equal
    sources differ only in the module name; tests compare within one name.
    """
    module_name = package or f"fpmod{next(_names)}"
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    exec(compile(textwrap.dedent(source), f"<{module_name}>", "exec"), module.__dict__)
    fn: Callable[..., Any] = getattr(module, name)
    return fn


def _same_name(a: str, b: str, name: str = "node") -> tuple[str, str]:
    """The fingerprints of ``name`` in two versions of one module (same module name)."""
    package = f"fpmod{next(_names)}"
    first = code_fingerprint(_fn(a, name, package))
    return first, code_fingerprint(_fn(b, name, package))


BASE = """
RATE = 2

def helper(x):
    return x + 1

def node(x):
    return helper(x) * RATE
"""


def test_same_source_same_fingerprint() -> None:
    first, second = _same_name(BASE, BASE)
    assert first == second and len(first) == 64


def test_a_module_constant_it_reads_changes_it() -> None:
    first, second = _same_name(BASE, BASE.replace("RATE = 2", "RATE = 3"))
    assert first != second


def test_a_helper_it_calls_changes_it() -> None:
    first, second = _same_name(BASE, BASE.replace("x + 1", "x + 2"))
    assert first != second


def test_a_helper_of_a_helper_changes_it() -> None:
    deep = BASE.replace("return x + 1", "return inner(x)") + "\ndef inner(x):\n    return x\n"
    first, second = _same_name(deep, deep.replace("return x\n", "return -x\n"))
    assert first != second


def test_what_it_does_not_read_leaves_it() -> None:
    other = BASE + "\nOTHER = 1\n\ndef unused():\n    return 1\n"
    first, second = _same_name(other, "# moved\n\n\n" + other.replace("OTHER = 1", "OTHER = 2"))
    assert first == second


def test_closure_values_count() -> None:
    source = """
    def make(k):
        def node(x):
            return x * k
        return node
    """
    make = _fn(source, "make")
    assert code_fingerprint(make(2)) == code_fingerprint(make(2))
    assert code_fingerprint(make(2)) != code_fingerprint(make(3))


def test_defaults_count() -> None:
    first, second = _same_name(
        "def node(x, k=1):\n    return x * k\n", "def node(x, k=2):\n    return x * k\n"
    )
    assert first != second


def test_module_attribute_chains_are_followed() -> None:
    package = f"fpmod{next(_names)}"
    helpers = types.ModuleType(f"{package}.helpers")
    sys.modules[helpers.__name__] = helpers
    source = f"import {package}.helpers as helpers\n\ndef node(x):\n    return helpers.scale(x)\n"

    def version(body: str) -> str:
        exec("def scale(x):\n    return " + body + "\n", helpers.__dict__)
        return code_fingerprint(_fn(source, "node", package))

    assert version("x * 2") == version("x * 2")
    assert version("x * 2") != version("x * 3")


def test_library_functions_count_by_name_only() -> None:
    first, second = _same_name(
        "import json\n\ndef node(x):\n    return json.dumps(x)\n",
        "import json\n\nSOMETHING = 1\n\ndef node(x):\n    return json.dumps(x)\n",
    )
    assert first == second


def test_a_user_class_it_uses_counts_by_its_code() -> None:
    source = """
    class Pricer:
        factor = 2

        def apply(self, x):
            return x * self.factor

    def node(x):
        return Pricer().apply(x)
    """
    first, second = _same_name(source, source.replace("factor = 2", "factor = 4"))
    third, fourth = _same_name(source, source.replace("x * self", "x + self"))
    assert first != second and third != fourth


def test_an_output_model_is_part_of_the_code() -> None:
    source = """
    from pydantic import BaseModel

    class Out(BaseModel):
        total: int

    def node(x: int) -> Out:
        return Out(total=x)
    """
    first, second = _same_name(source, source.replace("total: int", "total: float"))
    assert first != second


MODEL = """
from pydantic import BaseModel, field_validator

class Out(BaseModel):
    total: int = 1

    @field_validator("total")
    @classmethod
    def positive(cls, v: int) -> int:
        return abs(v)

def node(x: int) -> Out:
    return Out(total=x)
"""


@pytest.mark.parametrize(
    ("old", "new"), [("total: int = 1", "total: int = 2"), ("abs(v)", "-abs(v)")]
)
def test_an_output_model_default_or_validator_counts(old: str, new: str) -> None:
    first, same = _same_name(MODEL, MODEL)  # a new class: another id() in pydantic's records
    assert first == same
    first, second = _same_name(MODEL, MODEL.replace(old, new))
    assert first != second


def test_recursion_and_cyclic_data_terminate() -> None:
    source = """
    LOOP = []
    LOOP.append(LOOP)
    TABLE = {"self": None}
    TABLE["self"] = TABLE

    def even(n):
        return n == 0 or odd(n - 1)

    def odd(n):
        return n != 0 and even(n - 1)

    def node(x):
        return even(x), LOOP, TABLE, node
    """
    first, second = _same_name(source, source)
    assert first == second


def test_unencodable_values_fall_back_to_their_type() -> None:
    source = """
    import threading

    class Loud:
        def __repr__(self):
            raise RuntimeError("no repr")

    LOCK = threading.Lock()
    LOUD = Loud()

    def node(x):
        with LOCK:
            return LOUD, x
    """
    first, second = _same_name(source, source)  # new lock, new object: other addresses
    assert first == second


def test_memoised_per_function() -> None:
    fn = _fn(BASE)
    assert code_fingerprint(fn) is code_fingerprint(fn)


def test_a_library_root_function_still_counts_its_code() -> None:
    assert code_fingerprint(os.path.join) != code_fingerprint(os.path.split)


DETERMINISM = """
import enum
import threading
from dataclasses import dataclass

from pydantic import BaseModel, field_validator

KINDS = {"retail", "online", "wholesale", "staff", "partner", "outlet"}
TABLE = {"b": frozenset({"x", "y", "z", "w"}), "a": {3, 1, 2}}
LOCK = threading.Lock()

class Color(enum.Enum):
    RED = "red"

@dataclass
class Settings:
    names: frozenset[str]

SETTINGS = Settings(frozenset({"p", "q", "r", "s", "t"}))


class Out(BaseModel):
    total: int = 1

    @field_validator("total")
    @classmethod
    def positive(cls, v: int) -> int:
        return v

def node(kind: str) -> bool:
    with LOCK:
        return kind in {"retail", "online", "staff", "outlet"} and kind in KINDS and bool(
            TABLE and SETTINGS and Color.RED and Out(total=1)
        )
"""


def test_same_code_in_two_processes_same_fingerprint(tmp_path: Path) -> None:
    """Sets iterate in hash-seed order and objects live at other addresses in another
    process: neither reaches the key."""
    (tmp_path / "fpdeterminism.py").write_text(DETERMINISM)
    script = (
        "import fpdeterminism; from stepdag.core.fingerprint import code_fingerprint; "
        "print(code_fingerprint(fpdeterminism.node))"
    )
    keys = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "functions"), str(tmp_path)])
        res = subprocess.run(
            [sys.executable, "-c", script],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        keys.add(res.stdout.strip())
    assert len(keys) == 1, keys


def test_values_of_different_types_differ() -> None:
    """``1``, ``1.0``, ``True`` and ``"1"`` are equal or alike in Python, not in a key."""
    values: list[Any] = [1, 1.0, True, "1", b"1", (1,), [1], {1}, {1: 1}, None, float("nan")]
    package = f"fpmod{next(_names)}"
    keys = set()
    for value in values:
        fn = _fn("def node():\n    return VALUE\n", "node", package)
        fn.__globals__["VALUE"] = value
        keys.add(code_fingerprint(fn))
    assert len(keys) == len(values)

"""Loading and running the ASL conformance fixture corpus (``fixtures/*.json``).

Fixture format (one file per case)::

    {
      "description": "what the case checks",
      "definition": {... ASL, JSONPath query language ...},
      "input": <execution input>,
      "expected": {"status": ..., "output": ..., "error": ..., "cause": ...},
      "substitutions": {"Name": "value"},  # optional, CDK-style ${Name} replacement
      "ignore": ["cause"],                 # optional contract fields not compared
      "notes": "...",                      # optional
      "moto_divergent": "reason",          # optional: expected is AWS's documented
      "moto_actual": {...}                 #   behaviour, moto_actual what moto returns
    }

``expected`` is what moto returns unless ``moto_divergent`` is set (see
docs/asl-conformance.md).  Fake functions come from ``tests.support.lambdas``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.lambdas import FakeLambdas
from tests.support.moto_sfn import MotoExecutionTimeout, MotoSfn, substitute

FIXTURE_DIR = Path(__file__).parent / "fixtures"
# Spec fixtures: cases moto cannot answer (JSONata is disabled in moto 5.2.x) or answers
# wrongly, whose ``expected`` comes from AWS's documentation, the JSONata reference and
# reasoning about the spec (never from another emulator's snapshots).  Each names its
# ``source``; they run only against the local engine.  One subfolder per area.
SPEC_FIXTURE_DIR = Path(__file__).parent / "spec"
CONTRACT_FIELDS = ("status", "output", "error", "cause")
# Generous: only the TimeoutSeconds fixtures take real time (about a second).
MOTO_TIMEOUT = 30.0


@dataclass
class Fixture:
    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def definition(self) -> Any:
        definition = self.data["definition"]
        subs: Mapping[str, str] = self.data.get("substitutions") or {}
        return substitute(definition, subs) if subs else definition

    @property
    def input(self) -> Any:
        return self.data.get("input")

    @property
    def objects(self) -> dict[str, Any]:
        """S3 objects (``"bucket/key": body``) served to a Distributed Map's ItemReader."""
        return dict(self.data.get("objects") or {})

    @property
    def expected(self) -> dict[str, Any]:
        return dict(self.data["expected"])

    @property
    def ignore(self) -> tuple[str, ...]:
        return tuple(self.data.get("ignore", ()))

    @property
    def moto_divergent(self) -> str | None:
        return self.data.get("moto_divergent")

    @property
    def moto_actual(self) -> dict[str, Any] | None:
        return self.data.get("moto_actual")

    def comparable(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """The contract fields this fixture compares (``ignore`` removed)."""
        return {k: result.get(k) for k in CONTRACT_FIELDS if k not in self.ignore}


@dataclass
class RunOutcome:
    result: dict[str, Any]
    lambdas: FakeLambdas = field(repr=False)


def load_fixtures(*, require_expected: bool = True) -> list[Fixture]:
    """The moto-recorded corpus (``fixtures/*.json``)."""
    required = {"description", "definition"} | ({"expected"} if require_expected else set())
    return _load(sorted(FIXTURE_DIR.glob("*.json")), required)


def load_spec_fixtures() -> list[Fixture]:
    """The spec corpus (``spec/<area>/*.json``): expected from AWS's docs, with a ``source``."""
    paths = sorted(SPEC_FIXTURE_DIR.glob("*/*.json"))
    return _load(paths, {"description", "definition", "expected", "source"})


def _load(paths: list[Path], required: set[str]) -> list[Fixture]:
    fixtures = []
    for path in paths:
        data = json.loads(path.read_text())
        missing = required - data.keys()
        if missing:
            raise ValueError(f"{path.name}: missing keys {sorted(missing)}")
        fixtures.append(Fixture(path, data))
    return fixtures


def iter_fixture_params() -> Iterator[tuple[str, Fixture]]:
    for fx in load_fixtures():
        yield fx.name, fx


def run_fixture_in_moto(sfn: MotoSfn, fixture: Fixture) -> dict[str, Any]:
    """Run one fixture in an already started moto; harness crashes become a pseudo-status.

    A crash (e.g. moto failing to serialise its own output) is reported as
    ``status: "HARNESS_ERROR"`` so divergent fixtures can pin it down precisely.
    """
    lambdas = FakeLambdas()  # fresh flaky counters for every execution
    sfn.install_lambda(lambdas.functions)
    try:
        return dict(
            sfn.run(fixture.definition, fixture.input, name=fixture.name, timeout=MOTO_TIMEOUT)
        )
    except MotoExecutionTimeout:
        raise
    except Exception as exc:
        return {
            "status": "HARNESS_ERROR",
            "output": None,
            "error": type(exc).__name__,
            "cause": str(exc),
        }

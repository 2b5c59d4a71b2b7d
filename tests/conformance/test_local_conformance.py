"""The local ASL interpreter (``stepdag.asl``) reproduces every fixture's contract.

Skipped only while the ``stepdag.asl`` package does not exist yet (no ``__init__.py``);
once it exists, any import error or mismatch is a failure.  Runs on a virtual clock, so
Wait/Retry/TimeoutSeconds fixtures take no real time.

Identity convention shared with the moto harness (see docs/asl-conformance.md): state
machine name = fixture file stem, execution name ``conformance``, account 123456789012,
region us-east-1, role ``arn:aws:iam::123456789012:role/stepdag-conformance``.  Those are
passed to ``StateMachine``/``execute`` for whichever of these keywords they accept.
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

import pytest

from tests.conformance.corpus import CONTRACT_FIELDS, Fixture, load_fixtures, load_spec_fixtures
from tests.support.lambdas import ACCOUNT_ID, REGION, FakeLambdas
from tests.support.local import local_task_handler
from tests.support.moto_sfn import ROLE_ARN

FIXTURES = load_fixtures()
SPEC_FIXTURES = load_spec_fixtures()


def _engine_exists() -> bool:
    try:
        spec = importlib.util.find_spec("stepdag.asl")
    except ModuleNotFoundError:
        return False
    # A directory without __init__.py is a namespace package (origin None): not yet real.
    return spec is not None and spec.origin is not None


pytestmark = pytest.mark.skipif(
    not _engine_exists(), reason="stepdag.asl package not created yet (no __init__.py)"
)


def _identity(fixture: Fixture) -> dict[str, Any]:
    return {
        "state_machine_name": fixture.name,
        "role_arn": ROLE_ARN,
        "region": REGION,
        "account_id": ACCOUNT_ID,
    }


def _accepted(fn: Any, candidates: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return candidates
    return {k: v for k, v in candidates.items() if k in params}


def run_locally(fixture: Fixture) -> dict[str, Any]:
    from stepdag import asl

    clock_cls = getattr(asl, "VirtualClock", None)
    if clock_cls is None:
        from stepdag.asl.clock import VirtualClock as clock_cls
    identity = _identity(fixture)
    machine = asl.StateMachine(fixture.definition, **_accepted(asl.StateMachine, identity))
    # A Distributed Map's S3 side (ItemReader/ResultWriter), when the engine has the ports.
    ports: dict[str, Any] = {}
    objects_cls = getattr(asl, "MemoryObjects", None)
    if objects_cls is not None:
        objects = objects_cls(fixture.objects)
        ports = {"item_reader": objects.read, "result_writer": objects.write}
    result = machine.execute(
        fixture.input,
        task_handler=local_task_handler(FakeLambdas().functions),
        name="conformance",
        clock=clock_cls(),
        **_accepted(machine.execute, {**identity, **ports}),
    )
    return dict(result.to_contract())


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_local_matches_fixture(fixture: Fixture) -> None:
    assert fixture.comparable(run_locally(fixture)) == fixture.comparable(fixture.expected)


@pytest.mark.parametrize(
    "fixture", SPEC_FIXTURES, ids=[f"{f.path.parent.name}/{f.name}" for f in SPEC_FIXTURES]
)
def test_local_matches_spec_fixture(fixture: Fixture) -> None:
    assert set(fixture.expected) == set(CONTRACT_FIELDS), fixture.name
    assert fixture.comparable(run_locally(fixture)) == fixture.comparable(fixture.expected)

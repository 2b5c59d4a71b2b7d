"""moto still behaves as the fixture corpus says (our oracle has not moved under us).

Every fixture runs in one shared moto (fresh fake-function counters per fixture).  For
``moto_divergent`` fixtures ``expected`` is AWS behaviour, so we assert moto *still*
diverges and still answers ``moto_actual``; a moto upgrade that fixes a divergence fails
here so the fixture can be re-recorded (``tests/conformance/record.py --write``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.corpus import (
    CONTRACT_FIELDS,
    Fixture,
    load_fixtures,
    run_fixture_in_moto,
)
from tests.support.lambdas import (
    LAMBDA_INVOKE_RESOURCE,
    FakeLambdas,
    LambdaError,
    function_name,
    lambda_arn,
)
from tests.support.moto_sfn import (
    MotoExecutionTimeout,
    MotoSfn,
    moto_sfn,
    run_in_moto,
    substitute,
    wait_for_execution,
)

pytestmark = pytest.mark.moto
FIXTURES = load_fixtures()


@pytest.fixture(scope="module")
def sfn() -> Iterator[MotoSfn]:
    with moto_sfn() as handle:
        yield handle


def test_corpus_is_well_formed() -> None:
    assert len(FIXTURES) >= 70
    for fx in FIXTURES:
        assert set(fx.data["expected"]) == set(CONTRACT_FIELDS), fx.name
        assert set(fx.ignore) <= set(CONTRACT_FIELDS), fx.name
        assert fx.data["definition"].get("QueryLanguage", "JSONPath") == "JSONPath", fx.name
        if fx.moto_divergent:
            assert fx.moto_actual is not None, f"{fx.name}: run record.py --write"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_moto_matches_fixture(sfn: MotoSfn, fixture: Fixture) -> None:
    result = run_fixture_in_moto(sfn, fixture)
    if fixture.moto_divergent:
        assert fixture.comparable(result) != fixture.comparable(fixture.expected), (
            f"moto now matches AWS for {fixture.name}; drop moto_divergent "
            f"({fixture.moto_divergent})"
        )
        assert result == fixture.moto_actual, "moto's divergent answer changed; re-record"
        return
    assert fixture.comparable(result) == fixture.comparable(fixture.expected)


# --- harness behaviour that fixtures cannot express -----------------------------------


def test_retry_delays_are_recorded_not_slept(sfn: MotoSfn) -> None:
    fx = next(f for f in FIXTURES if f.name == "retry_backoff_max_delay")
    del sfn.retry_delays[:]
    started = time.monotonic()
    run_fixture_in_moto(sfn, fx)
    assert time.monotonic() - started < 5
    # IntervalSeconds 3, BackoffRate 5, MaxDelaySeconds 10 -> 3, min(15, 10), min(75, 10)
    assert sfn.retry_delays == [3, 10, 10]


def test_wait_is_recorded_not_slept(sfn: MotoSfn) -> None:
    del sfn.wait_delays[:]
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    assert sfn.run(definition, {"a": 1}, name="wait_hour")["output"] == {"a": 1}
    assert sfn.wait_delays == [3600]


def test_wait_for_task_token_round_trip(sfn: MotoSfn) -> None:
    tokens: list[str] = []

    def callback(payload: Any) -> Any:
        tokens.append(payload["token"])
        return None

    sfn.install_lambda({"callback": callback})
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE_RESOURCE + ".waitForTaskToken",
                "Parameters": {"FunctionName": "callback", "Payload": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(definition, "token_round_trip")

    def start_and_get_token(name: str) -> str:
        execution = sfn.start(arn, {}, name)
        deadline = time.monotonic() + 5
        while not tokens and time.monotonic() < deadline:
            time.sleep(0.005)
        return execution

    ok = start_and_get_token("ok")
    sfn.client.send_task_success(taskToken=tokens.pop(), output=json.dumps({"done": True}))
    assert sfn.wait(ok, 5) == {
        "status": "SUCCEEDED",
        "output": {"done": True},
        "error": None,
        "cause": None,
    }

    bad = start_and_get_token("bad")
    sfn.client.send_task_failure(taskToken=tokens.pop(), error="Rejected", cause="by human")
    # moto's SendTaskFailure handler drops `cause` (AWS keeps it): pinned divergence.
    assert sfn.wait(bad, 5) == {
        "status": "FAILED",
        "output": None,
        "error": "Rejected",
        "cause": None,
    }


def test_unfinished_execution_times_out_and_is_stopped(sfn: MotoSfn) -> None:
    tokens: list[str] = []
    sfn.install_lambda({"silent": lambda payload: tokens.append(payload["t"])})
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE_RESOURCE + ".waitForTaskToken",
                "Parameters": {"FunctionName": "silent", "Payload": {"t.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(definition, "never_answers")
    execution = sfn.start(arn, {}, "hang")
    with pytest.raises(MotoExecutionTimeout):
        wait_for_execution(sfn.client, execution, timeout=0.2)
    # The harness called stop_execution, but moto does not interrupt a task waiting for
    # a callback: the status stays RUNNING (AWS would report ABORTED).  Answer the token
    # so the worker thread finishes instead of leaking past the mock.
    assert sfn.client.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.client.send_task_success(taskToken=tokens[0], output="{}")


def test_run_in_moto_one_shot_with_callable_registry() -> None:
    def dispatch(name: str, payload: Any) -> Any:
        if name == "explode":
            raise LambdaError("Custom.Error", "went wrong")
        return {"fn": name, "payload": payload}

    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "${AArn}", "ResultPath": "$.a", "Next": "B"},
            "B": {"Type": "Task", "Resource": lambda_arn("explode"), "End": True},
        },
    }
    result = run_in_moto(
        substitute(definition, {"AArn": lambda_arn("anything")}), {"x": 1}, lambdas=dispatch
    )
    assert result == {
        "status": "FAILED",
        "output": None,
        "error": "Custom.Error",
        "cause": '{"errorMessage":"went wrong","errorType":"Custom.Error"}',
    }


def test_flaky_counters_are_per_instance() -> None:
    first, second = FakeLambdas(), FakeLambdas()
    payload = {"key": "k", "succeed_on": 2}
    with pytest.raises(LambdaError):
        first["flaky"](payload)
    assert first["flaky"](payload) == {"key": "k", "attempts": 2}
    with pytest.raises(LambdaError):
        second["flaky"](payload)
    first.reset()
    assert first.attempts("k") == 0


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("echo", "echo"),
        ("echo:live", "echo"),
        ("123456789012:function:echo", "echo"),
        (lambda_arn("echo"), "echo"),
        (lambda_arn("echo") + ":3", "echo"),
        ("arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho", "echo"),
    ],
)
def test_function_name(ref: str, name: str) -> None:
    assert function_name(ref) == name


def test_substitute_keeps_type() -> None:
    assert substitute('{"R": "${X}-suffix"}', {"X": "a"}) == '{"R": "a-suffix"}'
    assert substitute({"R": "${X}", "Keep": "${Y}"}, {"X": "a"}) == {"R": "a", "Keep": "${Y}"}

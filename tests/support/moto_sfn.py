"""Run ASL definitions in moto's Step Functions interpreter (our conformance oracle).

moto 5.2 ships LocalStack's ASL interpreter and executes state machines in a background
thread when ``mock_aws`` is configured with ``execute_state_machine``.  Lambda tasks (both
``Resource: <function ARN>`` and ``arn:aws:states:::lambda:invoke``) are executed by calling
``lambda.Invoke`` through a boto3 client that moto builds from ``boto3.DEFAULT_SESSION``;
we answer those calls in-process with a ``before-call.lambda.Invoke`` hook, so no Lambda
backend (and no Docker) is needed.

Speed: moto really ``time.sleep``s between retries and really waits in ``Wait`` states.
By default both are replaced by no-ops that record the requested delay (see
:class:`MotoSfn.retry_delays` / :class:`MotoSfn.wait_delays`), so retry/backoff fixtures
run in milliseconds.  ``TimeoutSeconds``/``HeartbeatSeconds`` still use real time.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple, TypedDict
from unittest import mock

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from tests.support.lambdas import (
    ACCOUNT_ID,
    REGION,
    LambdaRegistry,
    UnknownFunctionError,
    error_payload,
    function_name,
    resolve,
)

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/stepdag-conformance"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# moto's execution thread usually finishes in a few ms; poll tightly but yield the GIL.
POLL_INTERVAL = 0.002
_NAME_SANITIZER = re.compile(r"[^A-Za-z0-9_-]")


class ExecutionContract(TypedDict):
    """The engine-neutral result shape shared with ``stepdag.asl`` ``to_contract()``."""

    status: str
    output: Any
    error: str | None
    cause: str | None


class MotoExecutionTimeout(TimeoutError):
    """The execution did not reach a terminal status in time (moto was stopped)."""


def substitute(definition: dict[str, Any] | str, substitutions: Mapping[str, str]) -> Any:
    """Replace ``${Name}`` placeholders like CDK ``definitionSubstitutions`` do.

    Plain text replacement in the JSON text, so a placeholder may sit inside a longer
    string.  Returns the same type it was given (dict in, dict out; str in, str out).
    """
    text = definition if isinstance(definition, str) else json.dumps(definition)
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    return text if isinstance(definition, str) else json.loads(text)


def state_machine_name(raw: str) -> str:
    """A valid state machine / execution name derived from an arbitrary label."""
    return _NAME_SANITIZER.sub("-", raw)[:80] or "sm"


def _invoke_response(payload: Any, *, function_error: bool) -> tuple[AWSResponse, dict[str, Any]]:
    body = json.dumps(payload).encode("utf-8")
    parsed: dict[str, Any] = {
        "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": str(uuid.uuid4())},
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "Payload": StreamingBody(io.BytesIO(body), len(body)),
    }
    if function_error:
        # What Lambda reports for an exception escaping the handler.
        parsed["FunctionError"] = "Unhandled"
    return AWSResponse("https://lambda.local/invocations", 200, {}, None), parsed


class LambdaRouter:
    """``before-call.lambda.Invoke`` hook dispatching to Python callables.

    Thread-safe to (re)install: moto invokes from its execution and Map/Parallel threads.
    """

    def __init__(self, lambdas: LambdaRegistry | None = None) -> None:
        self._lock = threading.Lock()
        self._lambdas: LambdaRegistry = lambdas if lambdas is not None else {}
        self.invocations: list[tuple[str, Any]] = []

    def install(self, lambdas: LambdaRegistry) -> None:
        with self._lock:
            self._lambdas = lambdas

    def __call__(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # url_path: /2015-03-31/functions/<url-encoded name or ARN>/invocations
        path = params["url_path"]
        ref = path.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
        name = function_name(ref)
        raw = params.get("body") or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # Lambda hands an absent payload to the handler as an empty object.
        payload = json.loads(raw) if raw.strip() else {}
        with self._lock:
            lambdas = self._lambdas
            self.invocations.append((name, payload))
        try:
            fn = resolve(lambdas, name)
        except UnknownFunctionError as exc:
            raise ClientError(
                {
                    "Error": {"Code": "ResourceNotFoundException", "Message": str(exc)},
                    "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": "not-found"},
                },
                "Invoke",
            ) from None
        try:
            result = fn(payload)
        except Exception as exc:  # the fake function failed: report a function error
            return _invoke_response(error_payload(exc), function_error=True)
        return _invoke_response(result, function_error=False)


class _NoSleep:
    """Stand-in for the ``time`` module inside moto's retrier: records, never sleeps."""

    def __init__(self, record: list[float]) -> None:
        self._record = record

    def sleep(self, seconds: float) -> None:
        self._record.append(seconds)


def wait_for_execution(
    client: Any, execution_arn: str, *, timeout: float = 60, interval: float = POLL_INTERVAL
) -> dict[str, Any]:
    """Poll ``describe_execution`` until terminal; on timeout stop it and raise."""
    deadline = time.monotonic() + timeout
    while True:
        desc: dict[str, Any] = client.describe_execution(executionArn=execution_arn)
        if desc["status"] in TERMINAL_STATUSES:
            return desc
        if time.monotonic() > deadline:
            # Stop the worker so it does not keep running after the mock is torn down.
            client.stop_execution(executionArn=execution_arn)
            events = client.get_execution_history(executionArn=execution_arn)["events"]
            tail = [e["type"] for e in events[-8:]]
            raise MotoExecutionTimeout(
                f"{execution_arn} still {desc['status']} after {timeout}s; last events: {tail}"
            )
        time.sleep(interval)


def failure_from_history(client: Any, execution_arn: str) -> tuple[str | None, str | None]:
    """error/cause of the terminal failure event (fallback when describe lacks them)."""
    events = client.get_execution_history(executionArn=execution_arn, reverseOrder=True)["events"]
    for event in events:
        for key in (
            "executionFailedEventDetails",
            "executionAbortedEventDetails",
            "executionTimedOutEventDetails",
        ):
            if key in event:
                details = event[key]
                return details.get("error"), details.get("cause")
    return None, None


def _raw_output(execution_arn: str) -> Any:
    """The execution's output value straight from moto's backend.

    moto's describe_execution response returns a string output *unencoded* (``B`` instead
    of ``"B"``) and drops a null output, so the API text cannot be parsed reliably.  Strict
    ``json`` round-trip: a non-JSON value leaking from moto (e.g. a datetime) raises here.
    """
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    region = execution_arn.split(":")[3]
    execution = stepfunctions_parser_backends[ACCOUNT_ID][region].describe_execution(execution_arn)
    return json.loads(json.dumps(execution.output))


def to_contract(client: Any, desc: Mapping[str, Any]) -> ExecutionContract:
    status = desc["status"]
    output = _raw_output(desc["executionArn"]) if status == "SUCCEEDED" else None
    error, cause = desc.get("error"), desc.get("cause")
    if status != "SUCCEEDED" and error is None and cause is None:
        error, cause = failure_from_history(client, desc["executionArn"])
    return {"status": status, "output": output, "error": error, "cause": cause}


class MotoSfn(NamedTuple):
    """Handle yielded by :func:`moto_sfn`; unpacks as ``(client, install_lambda)``."""

    client: Any
    install_lambda: Callable[[LambdaRegistry], None]
    router: LambdaRouter
    retry_delays: list[float]
    wait_delays: list[float]

    def create_state_machine(
        self, definition: dict[str, Any] | str, name: str = "conformance"
    ) -> str:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        arn: str = self.client.create_state_machine(
            name=state_machine_name(name), definition=text, roleArn=ROLE_ARN
        )["stateMachineArn"]
        return arn

    def start(self, state_machine_arn: str, input: Any, name: str = "conformance") -> str:
        # Always name executions: moto builds the ARN from the name and uses "None" otherwise.
        arn: str = self.client.start_execution(
            stateMachineArn=state_machine_arn,
            name=state_machine_name(name),
            input=json.dumps(input),
        )["executionArn"]
        return arn

    def wait(self, execution_arn: str, timeout: float = 60) -> ExecutionContract:
        return to_contract(
            self.client, wait_for_execution(self.client, execution_arn, timeout=timeout)
        )

    def run(
        self,
        definition: dict[str, Any] | str,
        input: Any,
        *,
        name: str = "conformance",
        execution_name: str = "conformance",
        timeout: float = 60,
    ) -> ExecutionContract:
        """Create a fresh state machine, execute it once and return the contract."""
        # The machine name shows up in $$.Execution.Id / $$.StateMachine, so keep it
        # deterministic: the given name, suffixed only if this mock already has it.
        base = state_machine_name(name)[:70]
        existing = {
            sm["name"]
            for page in self.client.get_paginator("list_state_machines").paginate()
            for sm in page["stateMachines"]
        }
        sm_name, n = base, 1
        while sm_name in existing:
            n += 1
            sm_name = f"{base}-{n}"
        sm_arn = self.create_state_machine(definition, sm_name)
        return self.wait(self.start(sm_arn, input, execution_name), timeout)


@contextmanager
def moto_sfn(
    lambdas: LambdaRegistry | None = None,
    *,
    region: str = REGION,
    fast_retries: bool = True,
    fast_waits: bool = True,
) -> Iterator[MotoSfn]:
    """Start moto with ASL execution enabled and fake Lambdas wired in.

    ``install_lambda`` swaps the function registry (e.g. fresh counters per execution).
    Do not call ``boto3.setup_default_session()`` inside the block: moto's interpreter
    builds its Lambda client from the default session that carries our hook.
    """
    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
        wait_function,
    )

    retry_delays: list[float] = []
    wait_delays: list[float] = []
    router = LambdaRouter(lambdas)
    with ExitStack() as stack:
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        # mock_aws patches boto3.DEFAULT_SESSION to None; create one now so the hook is on
        # the very session moto's interpreter will use for lambda.Invoke.
        boto3.setup_default_session(region_name=region)
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.lambda.Invoke", router)
        if fast_retries:
            stack.enter_context(mock.patch.object(retrier_decl, "time", _NoSleep(retry_delays)))
        if fast_waits:

            def _instant_wait(self: Any, env: Any, wait_seconds: int) -> None:
                wait_delays.append(wait_seconds)

            stack.enter_context(
                mock.patch.object(wait_function.WaitFunction, "_wait_interval", _instant_wait)
            )
        client = boto3.client("stepfunctions", region_name=region)
        yield MotoSfn(client, router.install, router, retry_delays, wait_delays)


def run_in_moto(
    definition: dict[str, Any] | str,
    input: Any,
    *,
    lambdas: LambdaRegistry,
    name: str = "conformance",
    timeout: float = 60,
) -> ExecutionContract:
    """One-shot: execute ``definition`` on ``input`` in a fresh moto and return the contract."""
    with moto_sfn(lambdas) as sfn:
        return sfn.run(definition, input, name=name, timeout=timeout)

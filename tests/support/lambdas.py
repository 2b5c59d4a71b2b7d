"""Deterministic fake Lambda functions shared by moto and the local ASL interpreter.

The same callables are plugged into moto (through ``tests.support.moto_sfn``) and into
``stepdag.asl`` (through ``tests.support.local.local_task_handler``), so a fixture's
expected result only depends on the ASL semantics being tested, never on which engine
ran the functions.  Every callable takes the decoded JSON payload and returns a JSON-able
value or raises.  The only state is the explicit attempt counter used by ``flaky``, which
lives in a :class:`FakeLambdas` instance so each execution can start from zero.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
LAMBDA_ARN_TEMPLATE = "arn:aws:lambda:{region}:{account}:function:{name}"
ARN = LAMBDA_ARN_TEMPLATE.replace("{region}", REGION).replace("{account}", ACCOUNT_ID)
"""``ARN.format(name="echo")`` -> ``arn:aws:lambda:us-east-1:123456789012:function:echo``."""

# The optimized-integration resource; AWS wraps the function result in an envelope.
LAMBDA_INVOKE_RESOURCE = "arn:aws:states:::lambda:invoke"

LambdaFn = Callable[[Any], Any]
LambdaRegistry = Mapping[str, LambdaFn] | Callable[[str, Any], Any]


def lambda_arn(name: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """Full function ARN for ``name`` (what fixtures put in ``Resource``)."""
    return LAMBDA_ARN_TEMPLATE.format(region=region, account=account, name=name)


class LambdaError(Exception):
    """A function error with an explicit ``errorType`` (``error``) and ``errorMessage``.

    Any other exception is reported with its class name as ``errorType``, like the AWS
    Python runtime does.
    """

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(cause)
        self.error = error
        self.cause = cause


class UnknownFunctionError(LookupError):
    """Raised when a Task references a function name the registry does not know."""


def function_name(ref: str) -> str:
    """Extract the bare function name from a name, partial ARN or full ARN.

    Accepts ``echo``, ``echo:live``, ``123456789012:function:echo`` and
    ``arn:aws:lambda:us-east-1:123456789012:function:echo[:qualifier]`` (URL-encoded too,
    because botocore puts the name into the request path).
    """
    ref = unquote(ref)
    parts = ref.split(":")
    if "function" in parts:
        idx = parts.index("function")
        if idx + 1 < len(parts):
            return parts[idx + 1]
    return parts[0]


def resolve(lambdas: LambdaRegistry, ref: str) -> LambdaFn:
    """Return a one-argument callable for the function referenced by ``ref``."""
    name = function_name(ref)
    if isinstance(lambdas, Mapping):
        try:
            return lambdas[name]
        except KeyError:
            raise UnknownFunctionError(f"Function not found: {lambda_arn(name)}") from None
    dispatcher = lambdas

    def call(payload: Any) -> Any:
        return dispatcher(name, payload)

    return call


def error_type_of(exc: BaseException) -> str:
    if isinstance(exc, LambdaError):
        return exc.error
    return type(exc).__name__


def error_message_of(exc: BaseException) -> str:
    if isinstance(exc, LambdaError):
        return exc.cause
    return str(exc)


def error_payload(exc: BaseException) -> dict[str, str]:
    """The function-error payload, in the key order of the AWS Python runtime.

    AWS also adds ``requestId`` and ``stackTrace``; they are left out because they are
    nondeterministic and would leak into the Step Functions ``cause``.
    """
    return {"errorMessage": error_message_of(exc), "errorType": error_type_of(exc)}


def error_cause(exc: BaseException) -> str:
    """The ``cause`` Step Functions reports for a function error.

    moto (like AWS) uses the function's error payload serialised as JSON; moto uses compact
    separators, so the local adapter must produce the identical string.
    """
    return json.dumps(error_payload(exc), separators=(",", ":"))


class FakeLambdas:
    """A fresh set of the standard fake functions with their own attempt counters.

    Create one per execution (or call :meth:`reset`) so ``flaky`` counts restart at zero.
    Thread-safe: moto runs Map iterations and Parallel branches in threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        self.calls: list[tuple[str, Any]] = []
        self.functions: dict[str, LambdaFn] = {
            "echo": self._wrap("echo", echo),
            "add": self._wrap("add", add),
            "double": self._wrap("double", double),
            "fail": self._wrap("fail", fail),
            "boom": self._wrap("boom", boom),
            "flaky": self._wrap("flaky", self.flaky),
            "big": self._wrap("big", big),
            "sleep": self._wrap("sleep", sleep),
            "none": self._wrap("none", none),
        }

    def _wrap(self, name: str, fn: LambdaFn) -> LambdaFn:
        def call(payload: Any) -> Any:
            with self._lock:
                self.calls.append((name, payload))
            return fn(payload)

        call.__name__ = name
        return call

    def reset(self) -> None:
        with self._lock:
            self._attempts.clear()
            self.calls.clear()

    def attempts(self, key: str) -> int:
        with self._lock:
            return self._attempts.get(key, 0)

    def flaky(self, payload: Any) -> Any:
        """Fail with ``payload.error`` until attempt ``payload.succeed_on`` for ``payload.key``.

        ``succeed_on`` is 1-based: ``succeed_on: 3`` fails twice then succeeds; a value of 0
        or a missing value never succeeds.
        """
        key = str(payload.get("key", "default"))
        with self._lock:
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
        succeed_on = int(payload.get("succeed_on", 0))
        if succeed_on and attempt >= succeed_on:
            return {"key": key, "attempts": attempt}
        raise LambdaError(str(payload.get("error", "FlakyError")), f"attempt {attempt} of {key}")

    def __getitem__(self, name: str) -> LambdaFn:
        return self.functions[name]


def echo(payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


def add(payload: Any) -> Any:
    """``a + b``."""
    return payload["a"] + payload["b"]


def double(payload: Any) -> Any:
    """``2 * payload`` for a number, or ``2 * payload.value``."""
    if isinstance(payload, dict):
        return payload["value"] * 2
    return payload * 2


def fail(payload: Any) -> Any:
    """Always raise ``LambdaError(payload.error, payload.cause)``."""
    raise LambdaError(str(payload.get("error", "CustomError")), str(payload.get("cause", "")))


def boom(payload: Any) -> Any:
    """Raise a plain Python exception: errorType is the class name, like the AWS runtime."""
    raise ValueError(f"boom: {payload.get('message', 'bad input')}")


def big(payload: Any) -> Any:
    """Return a string of ``payload.size`` ASCII bytes (for States.DataLimitExceeded)."""
    return "x" * int(payload["size"])


# The local interpreter runs on a virtual clock: its adapter installs the task's own
# sleep here (per thread) so ``sleep`` advances virtual time instead of real time.
_sleeper = threading.local()


def set_thread_sleeper(fn: Callable[[float], None] | None) -> None:
    """Route ``sleep`` in the current thread through ``fn`` (None: real ``time.sleep``)."""
    _sleeper.fn = fn


def sleep(payload: Any) -> Any:
    """Sleep ``payload.seconds`` (real seconds under moto; only for TimeoutSeconds checks)."""
    seconds = float(payload.get("seconds", 0))
    fn = getattr(_sleeper, "fn", None) or time.sleep
    fn(seconds)
    return {"slept": payload.get("seconds", 0)}


def none(payload: Any) -> Any:
    """Return ``None`` (JSON null) to check null task results."""
    return None


def standard_lambdas() -> dict[str, LambdaFn]:
    """A fresh mapping of the standard functions (fresh ``flaky`` counters)."""
    return FakeLambdas().functions

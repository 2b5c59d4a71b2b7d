"""Adapter plugging the fake Lambda functions into the local ASL interpreter.

``local_task_handler(lambdas)`` returns a ``stepdag.asl`` task handler that behaves like
the moto harness (``tests.support.moto_sfn``) for the two Lambda resource forms, so a
fixture's expected contract is the same for both engines:

* ``arn:aws:lambda:<region>:<account>:function:<name>`` -> the function result itself;
* ``arn:aws:states:::lambda:invoke`` (Parameters ``FunctionName``/``Payload``) -> the
  envelope ``{"ExecutedVersion": "$LATEST", "Payload": <result>, "StatusCode": 200}``,
  which is what moto returns (AWS additionally has SdkHttpMetadata/SdkResponseMetadata);
* ``arn:aws:states:::lambda:invoke.waitForTaskToken`` -> the function is called, its
  result ignored (the interpreter waits for the token).

Function errors become ``TaskFailure(errorType, <error payload JSON>)`` exactly as moto
reports them.  ``stepdag.asl`` is imported lazily so this module imports without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.support.lambdas import (
    LAMBDA_INVOKE_RESOURCE,
    LambdaRegistry,
    UnknownFunctionError,
    error_cause,
    error_type_of,
    function_name,
    lambda_arn,
    resolve,
    set_thread_sleeper,
)

WAIT_FOR_TOKEN_SUFFIX = ".waitForTaskToken"
LocalTaskHandler = Callable[[str, Any, Any], Any]


def _json_roundtrip(value: Any) -> Any:
    # Lambda payloads and results cross a JSON boundary in moto too.
    return json.loads(json.dumps(value))


def _invoke_payload(parameters: Any) -> Any:
    """moto's ``to_payload_type``: absent -> {}, a JSON string is sent as that JSON."""
    if not isinstance(parameters, dict) or "Payload" not in parameters:
        return {}
    payload = parameters["Payload"]
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            return payload
    return payload


def local_task_handler(lambdas: LambdaRegistry) -> LocalTaskHandler:
    """A ``task_handler(resource, parameters, ctx)`` dispatching to fake functions."""
    from stepdag.asl import TaskFailure

    def call(name: str, payload: Any, ctx: Any, *, optimized: bool) -> Any:
        try:
            fn = resolve(lambdas, name)
        except UnknownFunctionError as exc:
            if optimized:  # moto's lambda:invoke service integration wording
                raise TaskFailure(
                    "Lambda.ResourceNotFoundException",
                    f"{exc} (Service: AWSLambda; Status Code: 404; Error Code: "
                    "ResourceNotFoundException; Request ID: not-found; Proxy: null)",
                ) from None
            raise TaskFailure("Exception", str(exc)) from None
        set_thread_sleeper(getattr(ctx, "sleep", None))
        try:
            return _json_roundtrip(fn(_json_roundtrip(payload)))
        except TaskFailure:
            raise
        except Exception as exc:
            raise TaskFailure(error_type_of(exc), error_cause(exc)) from None
        finally:
            set_thread_sleeper(None)

    def handler(resource: str, parameters: Any, ctx: Any) -> Any:
        if resource.startswith(LAMBDA_INVOKE_RESOURCE):
            name = function_name(str(parameters["FunctionName"]))
            result = call(name, _invoke_payload(parameters), ctx, optimized=True)
            if resource.endswith(WAIT_FOR_TOKEN_SUFFIX):
                return None
            return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:"):
            return call(function_name(resource), parameters, ctx, optimized=False)
        raise TaskFailure(
            "States.TaskFailed", f"tests.support.local: unsupported resource {resource!r}"
        )

    return handler


__all__ = ["LocalTaskHandler", "lambda_arn", "local_task_handler"]

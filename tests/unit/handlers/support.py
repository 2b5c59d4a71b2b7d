"""Shared by the handler's unit and functional tests: its environment, a fake Lambda
context, and readers for what Powertools prints (EMF documents)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from unittest import mock

HANDLER_ENV = {
    "STEPDAG_TABLE_NAME": "stepdag-unit",
    "POWERTOOLS_METRICS_NAMESPACE": "stepdag-test",
    "POWERTOOLS_SERVICE_NAME": "stepdag-node-runner-test",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:obs:run-1"


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from the Lambda context object."""

    function_name: str = "stepdag-node-runner"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stepdag-node-runner"
    aws_request_id: str = "req-0001"


def import_handler() -> ModuleType:
    """The handler module, imported once per session with a valid environment (its
    settings are read at import, as at a Lambda cold start)."""
    first = "stepdag.handlers.node_runner" not in sys.modules
    with mock.patch.dict(os.environ, HANDLER_ENV):
        module = importlib.import_module("stepdag.handlers.node_runner")
    if first:
        # Powertools binds its log handler to the sys.stdout of import time, which under
        # pytest is one test's capture stream, closed after that test.  Tests swap in
        # their own stream (setStream); between them, logs go to the real stdout.
        module.logger.registered_handler.setStream(sys.__stdout__)
    return module


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """The EMF JSON documents Powertools printed (one per flushed invocation)."""
    docs = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_values(doc: dict[str, Any]) -> dict[str, Any]:
    """Metric name -> value; Powertools writes each value as a list (EMF allows arrays)."""
    names = [m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    out = {}
    for name in names:
        value = doc[name]
        out[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return out

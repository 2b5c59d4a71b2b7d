"""The API Lambda's cold path loads no interpreter: the lifecycle's rules and the pure
helpers it needs live in ``runtime.executions`` and ``core``, the local engine behind its
own launcher.  (import-linter checks the static graph; this checks what a fresh
interpreter actually loads, on the first request's path too.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:{}:live"
WORKFLOWS = ("documents", "etl", "features")
API_ENV = {
    "STEPDAG_TABLE_NAME": "stepdag-unit",
    "STEPDAG_STATE_MACHINES": json.dumps({wf: ARN.format(wf) for wf in WORKFLOWS}),
    "STEPDAG_PAGINATION_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def _loaded(code: str) -> list[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STEPDAG_", "POWERTOOLS_"))}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**base, **API_ENV},
        cwd=REPO,  # the Lambda task root: statemachines/ is discovered from here
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def test_the_step_functions_service_loads_no_interpreter_module() -> None:
    loaded = _loaded(
        """
        import json, sys
        import stepdag.api.aws
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("stepdag."))))
        """
    )
    assert "stepdag.runtime.executions" in loaded  # the rules are there ...
    assert [m for m in loaded if m.startswith("stepdag.asl")] == []  # ... the interpreter not
    assert "stepdag.runtime.engine" not in loaded and "stepdag.runtime.logs" not in loaded


def test_the_api_handlers_first_request_loads_no_interpreter_module() -> None:
    loaded = _loaded(
        """
        import json, sys
        import stepdag.handlers.api as h
        h.app.key_reader = lambda arn: b"k" * 32  # no Secrets Manager in a unit test
        h.app.resolver()  # what the first request builds: routes, store, service, workflows
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("stepdag."))))
        """
    )
    assert "stepdag.api.aws" in loaded
    assert [m for m in loaded if m.startswith(("stepdag.asl", "stepdag.runtime.engine"))] == []


def test_the_step_functions_launcher_imports_no_aws_library() -> None:
    # Its client is injected or built on first use (runtime.aws.LazyClient).
    loaded = _loaded(
        """
        import json, sys
        import stepdag.runtime.stepfunctions
        print(json.dumps(sorted(m for m in ("boto3", "botocore") if m in sys.modules)))
        """
    )
    assert loaded == []

"""The node-runner Lambda handler: settings, logs, EMF metrics, errors, lazy tracing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stepdag.core.errors import StepdagInvalidInput, WorkflowLoadError
from stepdag.handlers.app import load_workflows
from stepdag.handlers.observability import LazyTracer, request_keys, tracing_possible
from stepdag.handlers.settings import (
    DEFAULT_OFFLOAD_THRESHOLD,
    Settings,
    SettingsError,
    load_settings,
)
from tests.unit.handlers.conftest import Harness
from tests.unit.handlers.support import (
    EXECUTION,
    HANDLER_ENV,
    FakeLambdaContext,
    emf_documents,
    metric_values,
)
from tests.unit.handlers.workflows import QuotaExceeded

REPO = Path(__file__).resolve().parents[3]
# The handler silences this at import, but pytest restores warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# ---------------------------------------------------------------------------- settings


def test_settings_defaults() -> None:
    s = load_settings({"STEPDAG_TABLE_NAME": "stepdag-state"})
    assert s == Settings(table_name="stepdag-state")
    assert s.bucket is None
    assert s.offload_threshold == DEFAULT_OFFLOAD_THRESHOLD
    assert s.workflows == ()
    assert s.workflows_dir == "statemachines"
    assert s.metrics_namespace == "stepdag"
    assert s.service_name == "stepdag"
    assert s.log_level == "INFO"
    assert s.workflow_refs() == []


def test_settings_parse_every_variable() -> None:
    s = load_settings(
        {
            "STEPDAG_TABLE_NAME": "t.able_1",
            "STEPDAG_BUCKET_NAME": "stepdag-payloads-123",
            "STEPDAG_OFFLOAD_THRESHOLD_BYTES": "1000",
            "STEPDAG_WORKFLOWS": "statemachines.etl:wf, statemachines/features.py:wf,pkg.mod",
            "STEPDAG_WORKFLOWS_DIR": "flows",
            "POWERTOOLS_METRICS_NAMESPACE": "Team/stepdag prod",
            "POWERTOOLS_SERVICE_NAME": "runner",
            "POWERTOOLS_LOG_LEVEL": "debug",
            "UNRELATED": "ignored",
        }
    )
    assert s.bucket == "stepdag-payloads-123"
    assert s.offload_threshold == 1000
    assert s.workflows == ("statemachines.etl:wf", "statemachines/features.py:wf", "pkg.mod")
    assert s.workflows_dir == "flows"
    assert s.metrics_namespace == "Team/stepdag prod"
    assert s.log_level == "DEBUG"


def test_cdk_stack_variable_names_are_accepted() -> None:
    # infra/constants.py: STEPDAG_BUCKET_NAME, STEPDAG_WORKFLOW_MODULES (JSON), LOG_LEVEL.
    s = load_settings(
        {
            "STEPDAG_TABLE_NAME": "tbl",
            "STEPDAG_BUCKET_NAME": "payloads",
            "STEPDAG_WORKFLOW_MODULES": '{"etl": "statemachines.etl:wf", "f": "pkg.f:wf"}',
            "LOG_LEVEL": "warning",
        }
    )
    assert s.bucket == "payloads"
    assert s.workflow_refs() == [("etl", "statemachines.etl:wf"), ("f", "pkg.f:wf")]
    assert s.log_level == "WARNING"
    # Powertools' precedence: POWERTOOLS_LOG_LEVEL over LOG_LEVEL.
    both = {"STEPDAG_TABLE_NAME": "tbl", "LOG_LEVEL": "DEBUG", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    assert load_settings(both).log_level == "ERROR"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        # One bucket variable: the retired name is refused, never silently ignored.
        (
            {"STEPDAG_BUCKET": "one", "STEPDAG_BUCKET_NAME": "one"},
            "STEPDAG_BUCKET is no longer read: set STEPDAG_BUCKET_NAME instead",
        ),
        (
            {"STEPDAG_BUCKET": "one"},
            "STEPDAG_BUCKET is no longer read: set STEPDAG_BUCKET_NAME instead",
        ),
        (
            {"STEPDAG_WORKFLOWS": "a.b:wf", "STEPDAG_WORKFLOW_MODULES": '{"x": "a.b:wf"}'},
            "STEPDAG_WORKFLOWS and STEPDAG_WORKFLOW_MODULES are both set",
        ),
        ({"STEPDAG_WORKFLOW_MODULES": "etl=statemachines.etl:wf"}, "a JSON object"),
        ({"STEPDAG_WORKFLOW_MODULES": '["statemachines.etl:wf"]'}, "a JSON object mapping"),
        ({"STEPDAG_WORKFLOW_MODULES": '{"etl": "not a ref"}'}, "not valid: 'not a ref'"),
        ({"STEPDAG_BUCKET_NAME": "Bad_Bucket"}, "STEPDAG_BUCKET_NAME='Bad_Bucket': must be"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL='chatty'"),
    ],
)
def test_conflicting_or_malformed_stack_variables(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STEPDAG_TABLE_NAME": "tbl", **env})
    assert fragment in str(info.value)


def test_empty_variables_count_as_unset() -> None:
    s = load_settings(
        {"STEPDAG_TABLE_NAME": "tbl", "STEPDAG_BUCKET_NAME": "", "STEPDAG_WORKFLOWS": " "}
    )
    assert s.bucket is None
    assert s.workflows == ()


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("STEPDAG_TABLE_NAME", "no spaces allowed", "DynamoDB table name"),
        ("STEPDAG_TABLE_NAME", "ab", "DynamoDB table name"),
        ("STEPDAG_BUCKET_NAME", "Upper_Case", "S3 bucket name"),
        ("STEPDAG_OFFLOAD_THRESHOLD_BYTES", "64k", "valid integer"),
        ("STEPDAG_OFFLOAD_THRESHOLD_BYTES", "-1", "greater than or equal to 0"),
        ("STEPDAG_OFFLOAD_THRESHOLD_BYTES", "400000", "less than or equal to 150000"),
        ("STEPDAG_WORKFLOWS", "statemachines.etl:wf,,x:y", "workflow references"),
        ("STEPDAG_WORKFLOWS", "etl wf", "'etl wf'"),
        ("POWERTOOLS_METRICS_NAMESPACE", "AWS/Lambda", "CloudWatch namespace"),
        ("POWERTOOLS_METRICS_NAMESPACE", "émoji", "CloudWatch namespace"),
        ("POWERTOOLS_LOG_LEVEL", "verbose", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
    ],
)
def test_bad_variable_is_named_in_the_error(var: str, value: str, fragment: str) -> None:
    env = {"STEPDAG_TABLE_NAME": "stepdag-state", "STEPDAG_BUCKET_NAME": "payloads", var: value}
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith("invalid node-runner configuration")
    assert f"{var}={value!r}" in message
    assert fragment in message


def test_missing_table_and_other_errors_are_reported_together() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"STEPDAG_OFFLOAD_THRESHOLD_BYTES": "-5", "POWERTOOLS_LOG_LEVEL": "loud"})
    lines = str(info.value).splitlines()
    assert "  - STEPDAG_TABLE_NAME is required but not set" in lines
    assert any(line.startswith("  - STEPDAG_OFFLOAD_THRESHOLD_BYTES='-5'") for line in lines)
    assert any(line.startswith("  - POWERTOOLS_LOG_LEVEL='loud'") for line in lines)


def test_threshold_without_bucket_is_a_deployment_mistake() -> None:
    with pytest.raises(SettingsError, match=r"no bucket \(STEPDAG_BUCKET_NAME\) is"):
        load_settings({"STEPDAG_TABLE_NAME": "tbl", "STEPDAG_OFFLOAD_THRESHOLD_BYTES": "100"})
    env = {"STEPDAG_TABLE_NAME": "tbl", "STEPDAG_BUCKET_NAME": "b-1"}
    s = load_settings({**env, "STEPDAG_OFFLOAD_THRESHOLD_BYTES": "0"})
    assert s.offload_threshold == 0


def test_load_workflows_discovers_or_loads_references() -> None:
    base = {"STEPDAG_TABLE_NAME": "tbl"}
    found = load_workflows(
        load_settings({**base, "STEPDAG_WORKFLOWS_DIR": str(REPO / "statemachines")})
    )
    assert sorted(found) == ["documents", "etl", "features"]
    listed = load_workflows(
        load_settings({**base, "STEPDAG_WORKFLOWS": "tests.unit.handlers.workflows:wf"})
    )
    assert list(listed) == ["obs"]
    mapped = '{"obs": "tests.unit.handlers.workflows:wf"}'
    assert list(load_workflows(load_settings({**base, "STEPDAG_WORKFLOW_MODULES": mapped}))) == [
        "obs"
    ]


def test_load_workflows_rejects_a_name_mismatch_and_an_empty_directory(tmp_path: Path) -> None:
    wrong = '{"etl": "tests.unit.handlers.workflows:wf"}'
    base = {"STEPDAG_TABLE_NAME": "tbl"}
    with pytest.raises(WorkflowLoadError, match="defines workflow 'obs'"):
        load_workflows(load_settings({**base, "STEPDAG_WORKFLOW_MODULES": wrong}))
    with pytest.raises(WorkflowLoadError, match="no workflows found"):
        load_workflows(load_settings({**base, "STEPDAG_WORKFLOWS_DIR": str(tmp_path)}))


def _python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a cold start) with exactly ``env`` on top of
    this process's environment minus any stepdag/Powertools settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STEPDAG_", "POWERTOOLS_"))}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_environment_fails_the_import_that_is_the_cold_start() -> None:
    proc = _python(
        "import stepdag.handlers.node_runner",
        {
            **HANDLER_ENV,
            "STEPDAG_BUCKET_NAME": "payloads",
            "STEPDAG_OFFLOAD_THRESHOLD_BYTES": "lots",
        },
    )
    assert proc.returncode != 0
    assert "stepdag.handlers.settings.SettingsError: invalid node-runner configuration" in (
        proc.stderr
    )
    assert "STEPDAG_OFFLOAD_THRESHOLD_BYTES='lots'" in proc.stderr


def test_import_builds_nothing_expensive() -> None:
    # The cold-start contract: importing the handler module loads neither boto3, nor
    # the runner/store/user workflows, nor the X-Ray SDK; all of that waits for the first
    # invocation (and X-Ray for tracing to be on).
    proc = _python(
        """
        import sys
        import stepdag.handlers.node_runner as h
        heavy = ["boto3", "aws_xray_sdk", "stepdag.runtime.runner", "stepdag.runtime.store",
                 "stepdag.runtime.dynamodb", "statemachines", "moto"]
        print([m for m in heavy if m in sys.modules])
        print(h.app._runner)
        """,
        {**HANDLER_ENV, "LAMBDA_TASK_ROOT": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[]", "None"]


# ---------------------------------------------------------------------------- logs


def test_logs_carry_correlation_id_and_request_keys(harness: Harness) -> None:
    result = harness.invoke("source", params={"n": 3})
    assert result == {"node": "source", "status": "SUCCEEDED"}
    lines = harness.log_lines()
    (finished,) = [line for line in lines if line["message"] == "node finished"]
    assert finished["correlation_id"] == EXECUTION
    assert finished["service"] == HANDLER_ENV["POWERTOOLS_SERVICE_NAME"]
    assert finished["function_request_id"] == "req-0001"
    assert finished["cold_start"] in (True, False)
    assert (finished["workflow"], finished["node"], finished["phase"], finished["attempt"]) == (
        "obs",
        "source",
        "run",
        0,
    )
    assert "index" not in finished
    assert finished["status"] == "SUCCEEDED"
    assert finished["output_bytes"] == len("[0,1,2]")
    assert finished["duration_ms"] >= 0


def test_map_item_logs_its_index_and_keys_do_not_leak(harness: Harness) -> None:
    harness.invoke("source", params={"n": 3})
    harness.invoke("square", phase="plan")
    for index in (2, 0, 1):
        harness.invoke("square", phase="item", index=index)
    harness.invoke("square", phase="gather")
    finished = [line for line in harness.log_lines() if line["message"] == "node finished"]
    assert [(f["node"], f.get("phase"), f.get("index")) for f in finished] == [
        ("source", "run", None),
        ("square", "item", 2),
        ("square", "item", 0),
        ("square", "item", 1),
    ]
    assert harness.store.get_item_outputs(EXECUTION, "square") == [0, 1, 4]
    # clear_state: the item's index is gone from the next invocation's keys.
    harness.logs.truncate(0)
    harness.logs.seek(0)
    with pytest.raises(StepdagInvalidInput):
        harness.invoke("nope")
    (failed,) = harness.log_lines()
    assert failed["message"] == "node invocation failed"
    assert "index" not in failed
    assert failed["node"] == "nope"
    assert failed["error"] == "StepdagInvalidInput"


# ---------------------------------------------------------------------------- metrics


def _metrics_of(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return emf_documents(capsys.readouterr().out)


def test_success_emits_emf_with_workflow_and_node_dimensions(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    harness.invoke("source", params={"n": 4})
    (doc,) = _metrics_of(capsys)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == HANDLER_ENV["POWERTOOLS_METRICS_NAMESPACE"]
    # workflow and node, plus the service Powertools adds (the stack's alarms name it).
    assert sorted(directive["Dimensions"][0]) == ["node", "service", "workflow"]
    assert (doc["workflow"], doc["node"]) == ("obs", "source")
    assert doc["service"] == HANDLER_ENV["POWERTOOLS_SERVICE_NAME"]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        "NodeSucceeded": "Count",
        "NodeDuration": "Milliseconds",
        "OutputBytes": "Bytes",
    }
    values = metric_values(doc)
    assert values["NodeSucceeded"] == 1.0
    assert values["OutputBytes"] == float(len("[0,1,2,3]"))
    assert values["NodeDuration"] >= 0


def test_cache_miss_then_hit(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.invoke("source", params={"n": 3})
    harness.invoke("total")
    second = "arn:aws:states:us-east-1:123456789012:execution:obs:run-2"
    base = {"workflow": "obs", "phase": "run", "attempt": 0, "execution": second}
    harness.module.handler({**base, "node": "source", "params": {"n": 3}}, FakeLambdaContext())
    harness.module.handler({**base, "node": "total"}, FakeLambdaContext())
    docs = [d for d in _metrics_of(capsys) if d["node"] == "total"]
    assert [sorted(metric_values(d)) for d in docs] == [
        ["CacheMiss", "NodeDuration", "NodeSucceeded", "OutputBytes"],
        ["CacheHit", "NodeDuration", "NodeSucceeded", "OutputBytes"],
    ]


def test_skip_failure_and_retry_metrics(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.invoke("source", params={"n": 3})
    harness.invoke("total")
    capsys.readouterr()
    assert harness.invoke("big", phase="condition") == {"node": "big", "run": False}
    with pytest.raises(QuotaExceeded):
        harness.invoke("explode", attempt=1)
    skipped, failed = _metrics_of(capsys)
    assert metric_values(skipped) == {"NodeSkipped": 1.0}
    assert skipped["node"] == "big"
    assert sorted(metric_values(failed)) == ["NodeDuration", "NodeFailed", "NodeRetries"]
    assert failed["node"] == "explode"


def test_phases_without_an_outcome_emit_no_metrics(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.invoke("source", params={"n": 2})
    capsys.readouterr()
    assert harness.invoke("square", phase="plan") == {
        "node": "square",
        "status": "RUNNING",
        "items": [0, 1],
    }
    assert _metrics_of(capsys) == []


# ---------------------------------------------------------------------------- errors


def test_node_exception_propagates_with_its_class_name(harness: Harness) -> None:
    harness.invoke("source", params={"n": 3})
    harness.invoke("total")
    with pytest.raises(QuotaExceeded, match="quota of 3 exceeded") as info:
        harness.invoke("explode")
    assert type(info.value).__name__ == "QuotaExceeded"
    lines = harness.log_lines()
    (failed,) = [line for line in lines if line["message"] == "node invocation failed"]
    assert failed["level"] == "ERROR"
    assert failed["error"] == "QuotaExceeded"
    assert failed["correlation_id"] == EXECUTION
    assert "QuotaExceeded: quota of 3 exceeded" in failed["exception"]
    # A redelivery of the failed attempt replays the stored failure under the same name.
    with pytest.raises(Exception) as replay:
        harness.invoke("explode")
    assert type(replay.value).__name__ == "QuotaExceeded"


def test_malformed_payload_is_a_non_retryable_input_error(harness: Harness) -> None:
    from stepdag.core.compile import NON_RETRYABLE_ERRORS

    with pytest.raises(StepdagInvalidInput) as info:
        harness.module.handler({"workflow": "obs"}, FakeLambdaContext())
    assert type(info.value).__name__ in NON_RETRYABLE_ERRORS


# ---------------------------------------------------------------------------- tracing


def test_request_keys_tolerate_garbage() -> None:
    assert request_keys(["not", "a", "dict"]) == {}
    assert request_keys({"workflow": "w", "attempt": True, "index": None, "node": 3}) == {
        "workflow": "w",
        "node": 3,
    }


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),  # not in a Lambda runtime: no X-Ray daemon to talk to
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_possible_mirrors_powertools(env: dict[str, str], expected: bool) -> None:
    assert tracing_possible(env) is expected


class _FakeSubsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}
        self.closed_with: BaseException | None = None

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value


class _FakeProvider:
    def __init__(self) -> None:
        self.subsegments: list[_FakeSubsegment] = []

    @contextmanager
    def in_subsegment(self, name: str) -> Any:
        sub = _FakeSubsegment(name)
        self.subsegments.append(sub)
        try:
            yield sub
        except BaseException as exc:
            sub.closed_with = exc
            raise


class _FakeTracer:
    def __init__(self) -> None:
        self.provider = _FakeProvider()


def test_lazy_tracer_is_never_built_when_disabled() -> None:
    built: list[str] = []
    tracer = LazyTracer("svc", enabled=False, factory=built.append)
    with tracer.node({"workflow": "w", "node": "n"}) as span:
        span.annotate("status", "SUCCEEDED")
    assert tracer.tracer() is None
    assert built == []


def test_lazy_tracer_builds_once_and_opens_a_subsegment_per_node(
    harness: Harness,
) -> None:
    built: list[_FakeTracer] = []

    def factory(service: str) -> _FakeTracer:
        built.append(_FakeTracer())
        return built[-1]

    harness.module.app.tracer = LazyTracer("svc", enabled=True, factory=factory)
    harness.invoke("source", params={"n": 3})
    harness.invoke("total")
    with pytest.raises(QuotaExceeded):
        harness.invoke("explode")
    (tracer,) = built
    subs = tracer.provider.subsegments
    assert [s.name for s in subs] == ["## obs.source", "## obs.total", "## obs.explode"]
    assert subs[0].annotations == {
        "workflow": "obs",
        "node": "source",
        "phase": "run",
        "attempt": 0,
        "status": "SUCCEEDED",
    }
    assert isinstance(subs[2].closed_with, QuotaExceeded)
    assert "status" not in subs[2].annotations


def _handler_script(body: str) -> str:
    return textwrap.dedent(
        """
        import sys, json
        from pathlib import Path
        import stepdag.handlers.node_runner as h
        from stepdag.handlers.app import NodeRunnerApp
        from stepdag.runtime.sqlite import SqliteStore
        from tests.unit.handlers.workflows import wf
        from tests.unit.handlers.support import FakeLambdaContext, EXECUTION

        store = SqliteStore(Path(sys.argv[1]))
        h.app = NodeRunnerApp(h.settings, logger=h.logger, metrics=h.metrics,
                              store_factory=lambda s: store,
                              workflow_loader=lambda s: {"obs": wf.build()})
        event = {"workflow": "obs", "node": "source", "phase": "run",
                 "execution": EXECUTION, "attempt": 0, "params": {"n": 2}}
        """
    ) + textwrap.dedent(body)


def test_xray_sdk_is_not_imported_when_tracing_is_disabled(tmp_path: Path) -> None:
    script = _handler_script(
        """
        h.handler(event, FakeLambdaContext())
        print("xray-imported" if "aws_xray_sdk" in sys.modules else "xray-absent")
        """
    )
    env = {**HANDLER_ENV, "LAMBDA_TASK_ROOT": str(REPO), "POWERTOOLS_TRACE_DISABLED": "true"}
    proc = _python(script, env, str(tmp_path / "s.db"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "xray-absent"


TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"


def test_real_xray_subsegment_is_sent_after_a_lazy_first_use(tmp_path: Path) -> None:
    # A fake X-Ray daemon: the SDK streams each closed subsegment to it over UDP.
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    port = daemon.getsockname()[1]
    script = _handler_script(
        """
        before = "aws_xray_sdk" in sys.modules
        h.handler(event, FakeLambdaContext())
        print(json.dumps([before, "aws_xray_sdk" in sys.modules]))
        """
    )
    env = {
        **HANDLER_ENV,
        "LAMBDA_TASK_ROOT": str(REPO),
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
        # What the Lambda service sets for a sampled invocation.
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    try:
        proc = _python(script, env, str(tmp_path / "s.db"))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1]) == [False, True]
        documents = []
        daemon.settimeout(0.5)
        while True:
            try:
                packet = daemon.recv(65536).decode()
            except TimeoutError:
                break
            documents.append(json.loads(packet.split("\n", 1)[1]))
    finally:
        daemon.close()
    (node,) = [d for d in documents if d.get("name") == "## obs.source"]
    assert node["annotations"] == {
        "workflow": "obs",
        "node": "source",
        "phase": "run",
        "attempt": 0,
        "status": "SUCCEEDED",
    }
    assert node["trace_id"] == TRACE_ID


def test_load_workflows_refuses_two_modules_defining_one_workflow_name(tmp_path: Path) -> None:
    # The loader's one rule (core.loader.unique), as the CLI and serve apply it.
    source = (REPO / "statemachines" / "etl.py").read_text()
    (tmp_path / "etl.py").write_text(source)
    (tmp_path / "etl_copy.py").write_text(source)
    env = {"STEPDAG_TABLE_NAME": "tbl", "STEPDAG_WORKFLOWS_DIR": str(tmp_path)}
    with pytest.raises(WorkflowLoadError, match="workflow name 'etl' is defined twice"):
        load_workflows(load_settings(env))

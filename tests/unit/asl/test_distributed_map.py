"""Distributed Map: child executions with their own histories, Map Run events, ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepdag.asl import MemoryObjects, TaskContext
from tests.unit.asl._util import run, single, types


def _dmap(states: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    execution_type = fields.pop("execution_type", "STANDARD")
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
        "StartAt": next(iter(states)) if states else "P",
        "States": states or {"P": {"Type": "Pass", "End": True}},
    }
    return single({"Type": "Map", "ItemProcessor": processor, **fields}, name="Map")


def test_10000_items_succeed_with_a_constant_parent_history() -> None:
    # Inline, 10,000 iterations need 40,000+ events: past Standard's 25,000 cap. As child
    # executions, each iteration's events are in its own history, not the parent's.
    result = run(_dmap(), list(range(10_000)))
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == list(range(10_000))
    assert types(result) == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]


def test_child_events_are_streamed_to_on_child_event_not_kept() -> None:
    seen: dict[str, list[str]] = {}

    def on_child_event(arn: str, event: Any) -> None:
        seen.setdefault(arn, []).append(event.type)

    result = run(_dmap(), [1, 2], on_child_event=on_child_event)
    assert result.status == "SUCCEEDED"
    assert len(seen) == 2
    for arn, events in seen.items():
        assert ":execution:StateMachine/" in arn
        assert events == [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded",
        ]


def test_parent_history_size_does_not_depend_on_item_count() -> None:
    assert len(run(_dmap(), [1]).history) == len(run(_dmap(), list(range(3000))).history)


def test_child_sees_its_own_execution_in_the_context_object() -> None:
    states = {
        "P": {
            "Type": "Pass",
            "Parameters": {
                "id.$": "$$.Execution.Id",
                "input.$": "$$.Execution.Input",
                "machine.$": "$$.StateMachine.Name",
            },
            "End": True,
        }
    }
    result = run(_dmap(states, Label="Rows", ItemSelector={"v.$": "$$.Map.Item.Value"}), [7])
    assert result.status == "SUCCEEDED", result.cause
    (out,) = result.output
    assert out["input"] == {"v": 7}
    assert out["machine"] == "StateMachine/Rows"
    assert out["id"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:StateMachine/Rows:"
    )
    map_run = next(e for e in result.history if e.type == "MapRunStarted")
    assert map_run.details["mapRunArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:mapRun:StateMachine/Rows:"
    )


def test_children_do_not_see_parent_variables_or_share_them() -> None:
    definition = _dmap({"P": {"Type": "Pass", "Parameters": {"x.$": "$.x"}, "End": True}})
    assert run(definition, [{"x": 1}, {"x": 2}]).output == [{"x": 1}, {"x": 2}]


def test_a_failed_child_fails_the_map_run_with_the_threshold_error() -> None:
    result = run(_dmap({"F": {"Type": "Fail", "Error": "Bad", "Cause": "why"}}), [1, 2])
    assert (result.status, result.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    assert result.cause == "The specified tolerated failure threshold was exceeded"
    assert types(result)[-3:] == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]
    failed = next(e for e in result.history if e.type == "MapRunFailed")
    assert failed.details == {
        "error": "States.ExceedToleratedFailureThreshold",
        "cause": "The specified tolerated failure threshold was exceeded",
    }


def test_tolerated_failures_show_the_failed_child_execution_in_the_output() -> None:
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}],
            "Default": "Ok",
        },
        "Ok": {"Type": "Pass", "End": True},
        "F": {"Type": "Fail", "Error": "Bad", "Cause": "two"},
    }
    result = run(_dmap(states, ToleratedFailureCount=1), [1, 2, 3])
    assert result.status == "SUCCEEDED", result.cause
    first, failed, third = result.output
    assert (first, third) == (1, 3)
    assert failed["Status"] == "FAILED"
    assert (failed["Error"], failed["Cause"]) == ("Bad", "two")
    assert failed["Input"] == "2"
    assert failed["ExecutionArn"].endswith(failed["Name"])
    assert "Output" not in failed


def test_tolerated_failure_percentage_over_children() -> None:
    states = {"F": {"Type": "Fail", "Error": "Bad"}}
    assert run(_dmap(states, ToleratedFailurePercentage=100), [1, 2]).status == "SUCCEEDED"
    result = run(_dmap(states, ToleratedFailurePercentage=50), [1, 2, 3, 4])
    assert result.error == "States.ExceedToleratedFailureThreshold"


def test_item_batcher_makes_one_child_per_batch() -> None:
    states = {
        "P": {"Type": "Pass", "Parameters": {"n.$": "States.ArrayLength($.Items)"}, "End": True}
    }
    result = run(_dmap(states, ItemBatcher={"MaxItemsPerBatch": 4}), list(range(10)))
    assert result.output == [{"n": 4}, {"n": 4}, {"n": 2}]


def test_item_batcher_max_input_bytes_per_batch() -> None:
    # {"Items":["aaaa","bbbb"]} is 24 bytes; a 30-byte limit fits two 6-byte items.
    batcher = {"MaxInputBytesPerBatch": 30}
    result = run(_dmap(ItemBatcher=batcher), ["aaaa", "bbbb", "cccc", "dddd", "eeee"])
    batches = [b["Items"] for b in result.output]
    assert batches == [["aaaa", "bbbb"], ["cccc", "dddd"], ["eeee"]]
    assert all(len(json.dumps({"Items": b}, separators=(",", ":"))) <= 30 for b in batches)
    both = run(_dmap(ItemBatcher={**batcher, "MaxItemsPerBatch": 1}), ["a", "b"]).output
    assert [b["Items"] for b in both] == [["a"], ["b"]]


def test_item_selector_applies_to_each_item_before_batching() -> None:
    selector = {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}
    definition = _dmap(ItemBatcher={"MaxItemsPerBatch": 2}, ItemSelector=selector)
    assert run(definition, ["a", "b", "c"]).output == [
        {"Items": [{"v": "a", "i": 0}, {"v": "b", "i": 1}]},
        {"Items": [{"v": "c", "i": 2}]},
    ]


def test_express_children_time_out_after_five_minutes() -> None:
    states = {"W": {"Type": "Wait", "Seconds": 400, "End": True}}
    definition = _dmap(states, execution_type="EXPRESS", ToleratedFailureCount=1)
    result = run(definition, [1])
    assert result.status == "SUCCEEDED", result.cause
    (child,) = result.output
    assert (child["Status"], child["Error"]) == ("TIMED_OUT", "States.Timeout")
    assert ":express:StateMachine/" in child["ExecutionArn"]
    # A Standard child has no such limit.
    assert run(_dmap(states), [1]).output == [1]


def test_a_standard_child_fails_alone_at_its_own_history_cap() -> None:
    # A child looping forever reaches 25,000 events in its own history; the parent,
    # with a handful of events, fails only through the Map Run's threshold.
    states = {"L": {"Type": "Pass", "Next": "L2"}, "L2": {"Type": "Pass", "Next": "L"}}
    result = run(_dmap(states, ToleratedFailureCount=1), [1])
    assert result.status == "SUCCEEDED", result.cause
    (child,) = result.output
    assert child["Error"] == "States.Runtime"
    assert "maximum number of history events (25000)" in child["Cause"]
    assert len(result.history) == 8


def test_children_run_tasks_with_their_own_context() -> None:
    seen: list[str] = []

    def handler(resource: str, params: Any, ctx: TaskContext) -> Any:
        seen.append(ctx.context["Execution"]["Id"])
        return params * 10

    states = {"T": {"Type": "Task", "Resource": "arn:aws:lambda:f", "End": True}}
    result = run(_dmap(states), [1, 2, 3], handler)
    assert result.output == [10, 20, 30]
    assert len(set(seen)) == 3


def test_max_concurrency_bounds_running_children() -> None:
    states = {"W": {"Type": "Wait", "Seconds": 10, "End": True}}
    # 40 items, 20 at a time, 10 s each: two rounds of virtual time.
    clock_run = run(_dmap(states, MaxConcurrency=20), list(range(40)))
    started = clock_run.history[0].timestamp
    assert (clock_run.history[-1].timestamp - started).total_seconds() == 20
    unbounded = run(_dmap(states, MaxConcurrency=10_000), list(range(40)))
    assert (unbounded.history[-1].timestamp - unbounded.history[0].timestamp).total_seconds() == 10


def test_hundreds_of_blocked_children_run_at_once() -> None:
    # No MaxConcurrency: AWS runs up to 10,000 children at once, so 600 10-second
    # children take 10 s (the engine's former 256-thread cap made it 30 s).
    states = {"W": {"Type": "Wait", "Seconds": 10, "End": True}}
    result = run(_dmap(states), list(range(600)))
    assert (result.history[-1].timestamp - result.history[0].timestamp).total_seconds() == 10


def test_output_over_256_kib_without_a_result_writer_fails() -> None:
    states = {"P": {"Type": "Pass", "Result": "x" * 300, "End": True}}
    result = run(_dmap(states), list(range(1000)))
    assert result.error == "States.DataLimitExceeded"


def test_stopping_the_parent_aborts_the_children() -> None:
    from stepdag.asl import StateMachine, VirtualClock

    states = {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "End": True,
        }
    }
    handle = StateMachine(_dmap(states)).start(
        list(range(5)), task_handler=lambda r, p, c: None, clock=VirtualClock()
    )
    import time

    deadline = time.monotonic() + 10
    while not any(e.type == "MapRunStarted" for e in handle.history):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    handle.stop(error="User.Stop")
    assert handle.wait(timeout=10).status == "ABORTED"


# -- ItemReader ------------------------------------------------------------------------


def _reader(resource: str, config: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"Resource": f"arn:aws:states:::s3:{resource}", "Parameters": params}
    if config is not None:
        spec["ReaderConfig"] = config
    return spec


def _run_reader(reader: dict[str, Any], objects: MemoryObjects, states: Any = None) -> Any:
    return run(_dmap(states, ItemReader=reader), {}, item_reader=objects.read)


def test_reader_json_array() -> None:
    objects = MemoryObjects({"b/items.json": [{"a": 1}, {"a": 2}]})
    reader = _reader("getObject", {"InputType": "JSON"}, Bucket="b", Key="items.json")
    assert _run_reader(reader, objects).output == [{"a": 1}, {"a": 2}]


def test_reader_jsonl_with_max_items() -> None:
    objects = MemoryObjects({"b/x.jsonl": '{"a":1}\n{"a":2}\n\n{"a":3}\n'})
    reader = _reader("getObject", {"InputType": "JSONL", "MaxItems": 2}, Bucket="b", Key="x.jsonl")
    assert _run_reader(reader, objects).output == [{"a": 1}, {"a": 2}]


def test_reader_csv_first_row_headers_all_strings() -> None:
    objects = MemoryObjects({"b/x.csv": "id,name\n1,ann\n2,bob\n"})
    reader = _reader("getObject", {"InputType": "CSV"}, Bucket="b", Key="x.csv")
    assert _run_reader(reader, objects).output == [
        {"id": "1", "name": "ann"},
        {"id": "2", "name": "bob"},
    ]


def test_reader_csv_given_headers_and_delimiter() -> None:
    objects = MemoryObjects({"b/x.csv": b"1|ann\n2|bob\n"})
    config = {
        "InputType": "CSV",
        "CSVHeaderLocation": "GIVEN",
        "CSVHeaders": ["id", "name"],
        "CSVDelimiter": "PIPE",
    }
    reader = _reader("getObject", config, Bucket="b", Key="x.csv")
    assert _run_reader(reader, objects).output == [
        {"id": "1", "name": "ann"},
        {"id": "2", "name": "bob"},
    ]


def test_reader_list_objects_yields_object_summaries() -> None:
    objects = MemoryObjects({"b/in/a": "1", "b/in/b": "22", "b/other": "3"})
    reader = _reader("listObjectsV2", Bucket="b", Prefix="in/")
    states = {"P": {"Type": "Pass", "Parameters": {"k.$": "$.Key", "s.$": "$.Size"}, "End": True}}
    assert _run_reader(reader, objects, states).output == [
        {"k": "in/a", "s": 1},
        {"k": "in/b", "s": 2},
    ]


def test_reader_parameters_are_paths_over_the_state_input() -> None:
    objects = MemoryObjects({"b/k.json": [1, 2]})
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
    }
    result = run(
        _dmap(ItemReader=reader), {"bucket": "b", "key": "k.json"}, item_reader=objects.read
    )
    assert result.output == [1, 2]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"not": "an array"}, "must contain a JSON array"),
        ("[1,", "not valid JSON"),
        (None, "NoSuchKey"),
    ],
)
def test_reader_failures_are_item_reader_failed(body: Any, fragment: str) -> None:
    objects = MemoryObjects({} if body is None else {"b/k.json": body})
    reader = _reader("getObject", {"InputType": "JSON"}, Bucket="b", Key="k.json")
    result = _run_reader(reader, objects)
    assert result.error == "States.ItemReaderFailed"
    assert fragment in (result.cause or "")


def test_reader_failure_is_catchable() -> None:
    reader = _reader("getObject", {"InputType": "JSON"}, Bucket="b", Key="missing")
    definition = _dmap(
        ItemReader=reader,
        Catch=[{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}],
    )
    definition["States"]["Caught"] = {"Type": "Pass", "Result": "caught", "End": True}
    result = run(definition, {}, item_reader=MemoryObjects().read)
    assert result.output == "caught"


def test_reader_without_a_port_fails_clearly() -> None:
    reader = _reader("getObject", {"InputType": "JSON"}, Bucket="b", Key="k")
    result = run(_dmap(ItemReader=reader), {})
    assert result.error == "States.ItemReaderFailed"
    assert "item_reader=" in (result.cause or "")


# -- ResultWriter ----------------------------------------------------------------------

_WRITER = {
    "Resource": "arn:aws:states:::s3:putObject",
    "Parameters": {"Bucket": "out", "Prefix": "runs"},
}


def test_result_writer_returns_the_manifest_reference_and_writes_the_files() -> None:
    objects = MemoryObjects()
    states = {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": True}}
    result = run(_dmap(states, ResultWriter=_WRITER), [1, 2], result_writer=objects.write)
    assert result.status == "SUCCEEDED", result.cause
    details = result.output["ResultWriterDetails"]
    assert details["Bucket"] == "out"
    run_id = result.output["MapRunArn"].rsplit(":", 1)[1]
    assert details["Key"] == f"runs/{run_id}/manifest.json"
    manifest = objects.json(f"out/{details['Key']}")
    assert manifest["MapRunArn"] == result.output["MapRunArn"]
    assert manifest["DestinationBucket"] == "out"
    (entry,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert entry["Key"] == f"runs/{run_id}/SUCCEEDED_0.json"
    assert manifest["ResultFiles"]["FAILED"] == []
    succeeded = objects.json(f"out/{entry['Key']}")
    assert [json.loads(s["Output"]) for s in succeeded] == [{"v": 1}, {"v": 2}]
    assert {s["Status"] for s in succeeded} == {"SUCCEEDED"}


def test_result_writer_lets_results_past_the_payload_limit() -> None:
    objects = MemoryObjects()
    result = run(_dmap(ResultWriter=_WRITER), list(range(3000)), result_writer=objects.write)
    assert result.status == "SUCCEEDED", result.cause
    without = run(
        _dmap({"P": {"Type": "Pass", "Result": "x" * 100, "End": True}}), list(range(3000))
    )
    assert without.error == "States.DataLimitExceeded"


def test_result_writer_records_failed_children_in_their_file() -> None:
    objects = MemoryObjects()
    states = {"F": {"Type": "Fail", "Error": "Bad", "Cause": "c"}}
    definition = _dmap(states, ResultWriter=_WRITER, ToleratedFailurePercentage=100)
    result = run(definition, [1], result_writer=objects.write)
    manifest = objects.json(f"out/{result.output['ResultWriterDetails']['Key']}")
    (entry,) = manifest["ResultFiles"]["FAILED"]
    (failed,) = objects.json(f"out/{entry['Key']}")
    assert (failed["Error"], failed["Cause"], failed["Status"]) == ("Bad", "c", "FAILED")


def test_result_writer_failure_is_result_writer_failed() -> None:
    def broken(resource: str, parameters: dict[str, Any]) -> None:
        raise PermissionError("AccessDenied")

    result = run(_dmap(ResultWriter=_WRITER), [1], result_writer=broken)
    assert result.error == "States.ResultWriterFailed"
    assert "AccessDenied" in (result.cause or "")


def test_writer_config_alone_transforms_the_state_output() -> None:
    states = {
        "P": {
            "Type": "Pass",
            "Parameters": {"xs.$": "States.Array($, $)"},
            "OutputPath": "$.xs",
            "End": True,
        }
    }
    flatten = {"WriterConfig": {"Transformation": "FLATTEN", "OutputType": "JSON"}}
    assert run(_dmap(states, ResultWriter=flatten), [1, 2]).output == [1, 1, 2, 2]
    none = {"WriterConfig": {"Transformation": "NONE"}}
    (entry,) = run(_dmap(ResultWriter=none), [5]).output
    assert (entry["Output"], entry["Status"]) == ("5", "SUCCEEDED")


def test_result_writer_jsonl_output_type() -> None:
    objects = MemoryObjects()
    writer = {**_WRITER, "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}}
    result = run(_dmap(ResultWriter=writer), [1, 2], result_writer=objects.write)
    manifest = objects.json(f"out/{result.output['ResultWriterDetails']['Key']}")
    (entry,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert entry["Key"].endswith("SUCCEEDED_0.jsonl")
    assert objects.objects[f"out/{entry['Key']}"] == "1\n2\n"


# -- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"execution_type": None}, "The field 'ExecutionType' is required in DISTRIBUTED mode"),
        (
            {"ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {}}},
            "The field 'InputType' is required",
        ),
        (
            {
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "MANIFEST"},
                }
            },
            "MANIFEST is not supported by the local engine",
        ),
        (
            {"ItemReader": {"Resource": "arn:aws:states:::s3:get"}},
            "listObjectsV2 at /States/Map/ItemReader/Resource",
        ),
        ({"ResultWriter": {}}, "The field 'ResultWriter' must be a non-empty object"),
        ({"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}}, "go together"),
        (
            {"Label": "x" * 41},
            "INVALID_LABEL_NAME: Label must be a string of 1 to 40 characters at /States/Map/Label",
        ),
    ],
)
def test_distributed_fields_are_validated(change: dict[str, Any], fragment: str) -> None:
    from stepdag.asl import AslDefinitionError, StateMachine

    with pytest.raises(AslDefinitionError) as info:
        StateMachine(_dmap(**change))
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_jsonata_reader_and_writer_arguments_and_max_items() -> None:
    objects = MemoryObjects({"b/k.json": [1, 2, 3]})
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.n %}"},
                    "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "k.json"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "P",
                    "States": {
                        "P": {"Type": "Pass", "Output": "{% $states.input * 2 %}", "End": True}
                    },
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Arguments": {"Bucket": "out", "Prefix": "{% $states.input.bucket %}"},
                    "WriterConfig": {"Transformation": "COMPACT"},
                },
                "End": True,
            }
        },
    }
    result = run(
        definition, {"bucket": "b", "n": 2}, item_reader=objects.read, result_writer=objects.write
    )
    assert result.status == "SUCCEEDED", result.cause
    key = result.output["ResultWriterDetails"]["Key"]
    assert key.startswith("b/")
    manifest = objects.json(f"out/{key}")
    (entry,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert objects.json(f"out/{entry['Key']}") == [2, 4]

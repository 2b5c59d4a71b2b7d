"""Load-time checks of a Distributed Map's fields (ProcessorConfig, ItemReader, ResultWriter)."""

from __future__ import annotations

from typing import Any

from stepdag.asl import item_io

_EXECUTION_TYPES = ("STANDARD", "EXPRESS")
_TRANSFORMATIONS = ("NONE", "COMPACT", "FLATTEN")
_OUTPUT_TYPES = ("JSON", "JSONL")


def distributed_problems(spec: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(path, problem) pairs for the Map state ``spec`` at ``where``."""
    processor = spec.get("ItemProcessor") or spec.get("Iterator")
    config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
    distributed = isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED"
    problems: list[tuple[str, str]] = []
    if not distributed:
        for key in ("ItemReader", "ResultWriter", "Label"):
            if key in spec:
                problems.append((f"{where}/{key}", "is only allowed in a DISTRIBUTED Map"))
        return problems
    assert isinstance(config, dict)
    if config.get("ExecutionType") not in _EXECUTION_TYPES:
        problems.append(
            (
                f"{where}/ItemProcessor/ProcessorConfig/ExecutionType",
                "is required in DISTRIBUTED mode and must be STANDARD or EXPRESS",
            )
        )
    if "Label" in spec and not (isinstance(spec["Label"], str) and 0 < len(spec["Label"]) <= 40):
        problems.append((f"{where}/Label", "Label must be a string of 1 to 40 characters"))
    if "ItemReader" in spec:
        problems.extend(_reader(spec["ItemReader"], f"{where}/ItemReader"))
    if "ResultWriter" in spec:
        problems.extend(_writer(spec["ResultWriter"], f"{where}/ResultWriter"))
    return problems


def _reader(reader: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(reader, dict):
        return [(where, "must be an object")]
    problems: list[tuple[str, str]] = []
    resource = reader.get("Resource")
    if resource not in item_io.READER_RESOURCES:
        problems.append(
            (f"{where}/Resource", f"must be one of {', '.join(item_io.READER_RESOURCES)}")
        )
    config = reader.get("ReaderConfig", {})
    if not isinstance(config, dict):
        return [*problems, (f"{where}/ReaderConfig", "must be an object")]
    kind = config.get("InputType")
    if kind in item_io.UNSUPPORTED_INPUT_TYPES:
        problems.append(
            (f"{where}/ReaderConfig/InputType", f"{kind} is not supported by the local engine")
        )
    elif kind is not None and kind not in item_io.INPUT_TYPES:
        problems.append(
            (f"{where}/ReaderConfig/InputType", f"must be one of {', '.join(item_io.INPUT_TYPES)}")
        )
    elif resource == item_io.GET_OBJECT and kind is None:
        problems.append((f"{where}/ReaderConfig/InputType", "is required for s3:getObject"))
    if "CSVDelimiter" in config and config["CSVDelimiter"] not in item_io.CSV_DELIMITERS:
        problems.append(
            (
                f"{where}/ReaderConfig/CSVDelimiter",
                f"must be one of {', '.join(item_io.CSV_DELIMITERS)}",
            )
        )
    if config.get("CSVHeaderLocation", "FIRST_ROW") not in ("FIRST_ROW", "GIVEN"):
        problems.append((f"{where}/ReaderConfig/CSVHeaderLocation", "must be FIRST_ROW or GIVEN"))
    if config.get("CSVHeaderLocation") == "GIVEN" and not (
        isinstance(config.get("CSVHeaders"), list)
        and config["CSVHeaders"]
        and all(isinstance(h, str) for h in config["CSVHeaders"])
    ):
        problems.append(
            (f"{where}/ReaderConfig/CSVHeaders", "is required with GIVEN: a list of strings")
        )
    max_items = config.get("MaxItems")
    if (
        max_items is not None
        and not isinstance(max_items, str)
        and (
            isinstance(max_items, bool)
            or not isinstance(max_items, int)
            or not 0 <= max_items <= item_io.MAX_ITEMS_LIMIT
        )
    ):
        problems.append(
            (
                f"{where}/ReaderConfig/MaxItems",
                f"must be an integer from 0 to {item_io.MAX_ITEMS_LIMIT}",
            )
        )
    if "MaxItems" in config and "MaxItemsPath" in config:
        problems.append((f"{where}/ReaderConfig", "cannot have both 'MaxItems' and 'MaxItemsPath'"))
    return problems


def _writer(writer: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(writer, dict) or not writer:
        return [(where, "must be a non-empty object")]
    problems: list[tuple[str, str]] = []
    if "Resource" in writer and writer["Resource"] != item_io.PUT_OBJECT:
        problems.append((f"{where}/Resource", f"must be {item_io.PUT_OBJECT}"))
    has_args = "Parameters" in writer or "Arguments" in writer
    if ("Resource" in writer) != has_args:
        problems.append((where, "Resource and Parameters (Arguments) go together"))
    if "Resource" not in writer and "WriterConfig" not in writer:
        problems.append((where, "needs Resource and Parameters, WriterConfig, or all three"))
    config = writer.get("WriterConfig", {})
    if not isinstance(config, dict):
        return [*problems, (f"{where}/WriterConfig", "must be an object")]
    if config.get("Transformation", "NONE") not in _TRANSFORMATIONS:
        problems.append(
            (
                f"{where}/WriterConfig/Transformation",
                f"must be one of {', '.join(_TRANSFORMATIONS)}",
            )
        )
    if config.get("OutputType", "JSON") not in _OUTPUT_TYPES:
        problems.append((f"{where}/WriterConfig/OutputType", "must be JSON or JSONL"))
    return problems


__all__ = ["distributed_problems"]

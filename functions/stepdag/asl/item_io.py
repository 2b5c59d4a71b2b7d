"""Distributed Map's S3 side: ``ItemReader`` and ``ResultWriter`` through injected ports.

The interpreter never calls S3. An execution is given an ``item_reader`` (what
``s3:getObject`` / ``s3:listObjectsV2`` would answer) and a ``result_writer`` (what
``s3:putObject`` would store); this module turns the reader's answer into items as
Step Functions does (``ReaderConfig.InputType`` JSON, JSONL, CSV; ``MaxItems``) and
writes a Map Run's results as Step Functions lays them out (``<Prefix>/<map run
id>/manifest.json`` plus ``SUCCEEDED_0.json``/``FAILED_0.json``...).
:class:`MemoryObjects` is an in-memory bucket serving both ports (tests, local runs).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterable
from typing import Any, Final, Protocol

from stepdag.asl.errors import StatesError, to_json

ITEM_READER_FAILED: Final = "States.ItemReaderFailed"
RESULT_WRITER_FAILED: Final = "States.ResultWriterFailed"
GET_OBJECT: Final = "arn:aws:states:::s3:getObject"
LIST_OBJECTS: Final = "arn:aws:states:::s3:listObjectsV2"
PUT_OBJECT: Final = "arn:aws:states:::s3:putObject"
READER_RESOURCES: Final = (GET_OBJECT, LIST_OBJECTS)
INPUT_TYPES: Final = ("JSON", "JSONL", "CSV")
# AWS documents MANIFEST and PARQUET too; they are refused at load, not silently misread.
UNSUPPORTED_INPUT_TYPES: Final = ("MANIFEST", "PARQUET")
CSV_DELIMITERS: Final = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
# "MaxItems ... up to 100,000,000" (ReaderConfig).
MAX_ITEMS_LIMIT: Final = 100_000_000


class ItemReader(Protocol):
    """``s3:getObject`` → the object's body (``str`` or ``bytes``);
    ``s3:listObjectsV2`` → the object summaries (``{"Key", "Size", "Etag",
    "LastModified", "StorageClass"}``), each becoming one item unchanged."""

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any: ...


class ResultWriter(Protocol):
    """``s3:putObject`` with ``{"Bucket", "Key", "Body"}`` (Body is JSON text)."""

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any: ...


def read_items(
    reader: ItemReader | None,
    resource: str,
    parameters: Any,
    config: dict[str, Any],
    max_items: int | None,
) -> list[Any]:
    """The items an ItemReader yields; every failure is ``States.ItemReaderFailed``."""
    if reader is None:
        raise StatesError(
            ITEM_READER_FAILED,
            f"No item reader is configured for {resource} (pass item_reader= to execute/start)",
        )
    if not isinstance(parameters, dict):
        raise StatesError(ITEM_READER_FAILED, "The ItemReader's Parameters must be an object")
    try:
        answer = reader(resource, parameters)
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError(ITEM_READER_FAILED, f"{type(exc).__name__}: {exc}") from exc
    where = (
        f"s3://{parameters.get('Bucket', '')}/{parameters.get('Key', parameters.get('Prefix', ''))}"
    )
    if resource == LIST_OBJECTS:
        items = _take(answer, max_items, where)
    else:
        items = _parse(answer, config, max_items, where)
    return items


def _take(answer: Any, max_items: int | None, where: str) -> list[Any]:
    if isinstance(answer, str | bytes | dict) or not isinstance(answer, Iterable):
        raise StatesError(ITEM_READER_FAILED, f"Listing {where} did not return object summaries")
    out: list[Any] = []
    for summary in answer:
        if max_items is not None and len(out) >= max_items:
            break
        out.append(summary)
    return out


def _text(body: Any, where: str) -> str:
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StatesError(ITEM_READER_FAILED, f"{where} is not UTF-8 text: {exc}") from exc
    if isinstance(body, str):
        return body
    raise StatesError(ITEM_READER_FAILED, f"Reading {where} did not return the object's content")


def _parse(body: Any, config: dict[str, Any], max_items: int | None, where: str) -> list[Any]:
    text = _text(body, where)
    kind = config.get("InputType", "JSON")
    if kind == "JSON":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StatesError(ITEM_READER_FAILED, f"{where} is not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise StatesError(
                ITEM_READER_FAILED, f"{where} must contain a JSON array, got a {_kind(data)}"
            )
        return data if max_items is None else data[:max_items]
    if kind == "JSONL":
        out: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if max_items is not None and len(out) >= max_items:
                break
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise StatesError(
                    ITEM_READER_FAILED, f"{where} line {number} is not valid JSON: {exc}"
                ) from exc
        return out
    return _csv(text, config, max_items, where)


def _csv(text: str, config: dict[str, Any], max_items: int | None, where: str) -> list[Any]:
    delimiter = CSV_DELIMITERS[config.get("CSVDelimiter", "COMMA")]
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    if config.get("CSVHeaderLocation", "FIRST_ROW") == "GIVEN":
        headers = list(config.get("CSVHeaders") or [])
    else:
        first = next(rows, None)
        if first is None:
            return []
        headers = first
    out: list[Any] = []
    for number, row in enumerate(rows, start=2):
        if max_items is not None and len(out) >= max_items:
            break
        if not row:
            continue
        if len(row) > len(headers):
            raise StatesError(
                ITEM_READER_FAILED,
                f"{where} row {number} has {len(row)} fields but there are {len(headers)} headers",
            )
        # Every CSV value is a string, as on AWS; missing trailing fields are empty.
        out.append({h: (row[i] if i < len(row) else "") for i, h in enumerate(headers)})
    return out


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else type(value).__name__


def write_results(
    writer: ResultWriter | None,
    parameters: Any,
    *,
    map_run_arn: str,
    map_run_id: str,
    files: dict[str, list[Any]],
    output_type: str,
) -> dict[str, Any]:
    """Write each status's entries and the manifest; returns the Map's output."""
    if writer is None:
        raise StatesError(
            RESULT_WRITER_FAILED,
            "No result writer is configured for s3:putObject (pass result_writer= to execute)",
        )
    if not isinstance(parameters, dict) or not isinstance(parameters.get("Bucket"), str):
        raise StatesError(RESULT_WRITER_FAILED, "The ResultWriter's Parameters need a Bucket")
    bucket: str = parameters["Bucket"]
    prefix = str(parameters.get("Prefix", "")).strip("/")
    base = f"{prefix}/{map_run_id}" if prefix else map_run_id
    listed: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    suffix = "jsonl" if output_type == "JSONL" else "json"
    for status, entries in files.items():
        if not entries:
            continue
        key = f"{base}/{status}_0.{suffix}"
        if output_type == "JSONL":
            body = "".join(to_json(e) + "\n" for e in entries)
        else:
            body = to_json(entries)
        _put(writer, bucket, key, body)
        listed.setdefault(status, []).append({"Key": key, "Size": len(body.encode("utf-8"))})
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": listed}
    manifest_key = f"{base}/manifest.json"
    _put(writer, bucket, manifest_key, to_json(manifest))
    return {
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }


def _put(writer: ResultWriter, bucket: str, key: str, body: str) -> None:
    try:
        writer(PUT_OBJECT, {"Bucket": bucket, "Key": key, "Body": body})
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError(
            RESULT_WRITER_FAILED, f"Writing s3://{bucket}/{key}: {type(exc).__name__}: {exc}"
        ) from exc


class MemoryObjects:
    """An in-memory object store answering both ports: ``read`` and ``write``.

    ``MemoryObjects({"bucket/key": body})``; bodies are ``str``, ``bytes`` or any JSON
    value (stored as its JSON text). A missing key fails like S3's ``NoSuchKey``.
    """

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.objects: dict[str, str | bytes] = {}
        for path, body in (objects or {}).items():
            self.objects[path] = body if isinstance(body, str | bytes) else to_json(body)

    def read(self, resource: str, parameters: dict[str, Any]) -> Any:
        bucket = parameters.get("Bucket")
        with self._lock:
            if resource == LIST_OBJECTS:
                prefix = f"{bucket}/{parameters.get('Prefix', '')}"
                return [
                    _summary(path.split("/", 1)[1], body)
                    for path, body in sorted(self.objects.items())
                    if path.startswith(prefix)
                ]
            path = f"{bucket}/{parameters.get('Key')}"
            if path not in self.objects:
                raise KeyError(f"NoSuchKey: s3://{path} does not exist")
            return self.objects[path]

    def write(self, resource: str, parameters: dict[str, Any]) -> None:
        with self._lock:
            self.objects[f"{parameters['Bucket']}/{parameters['Key']}"] = parameters["Body"]

    def json(self, path: str) -> Any:
        """The stored object at ``bucket/key`` parsed as JSON."""
        return json.loads(self.objects[path])


def _summary(key: str, body: str | bytes) -> dict[str, Any]:
    size = len(body.encode("utf-8") if isinstance(body, str) else body)
    return {"Etag": '"0"', "Key": key, "LastModified": 0, "Size": size, "StorageClass": "STANDARD"}


__all__ = [
    "GET_OBJECT",
    "ITEM_READER_FAILED",
    "LIST_OBJECTS",
    "PUT_OBJECT",
    "RESULT_WRITER_FAILED",
    "ItemReader",
    "MemoryObjects",
    "ResultWriter",
    "read_items",
    "write_results",
]

"""What a start accepts -- its execution name and its input -- written once, pure.

Every entry point applies these rules before anything is recorded or started: the
execution lifecycle (``runtime/executions.py``, behind the CLI's local target, ``stepdag
serve``, the API Lambda and ``stepdag trigger``), the REST API's body parser, and the
CLI before it sends a request anywhere.

* **Names** follow Step Functions' ``StartExecution`` rule: 1-80 characters, none of them
  whitespace, ``< > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : /``, a control character
  (U+0000-001F, U+007F-009F), U+FFFE/U+FFFF, a surrogate or U+10FFFF.  A name that
  passes is also a clean URL path segment once percent-encoded (no ``/ ? # %``), so
  every run can be read back through the API.
* **Size**: at most :data:`MAX_INPUT_BYTES` (256 KiB, Step Functions' payload quota),
  measured as AWS does: the UTF-8 bytes of the JSON text -- compact, non-ASCII kept,
  as :func:`input_json` writes it and the Step Functions launcher sends it.
* **Depth**: at most :data:`MAX_INPUT_DEPTH` nested arrays/objects.  AWS documents no
  depth quota; the tightest parser on stepdag's paths is pydantic-core's (200 levels to
  parse, 255 to serialize), Python's ``json`` fails near its recursion limit (~1000,
  less inside a deep call stack), and stepdag wraps an input in documents of its own
  (the API's answers, a node's ``params``), so 64 leaves that room and is far beyond
  real documents.  Checked without recursion.
* **Strict JSON**: no ``NaN``/``Infinity`` (RFC 8259 has neither) in, none printed out
  (:func:`loads`, :func:`dumps`).
"""

from __future__ import annotations

import json
from typing import Any, Final, NoReturn

from pydantic import TypeAdapter, ValidationError

from stepdag.core.errors import BadRequest, InputValidationError
from stepdag.core.model import PARAMS, Dag
from stepdag.core.quotas import (
    EXECUTION_NAME_PATTERN,
    MAX_NAME_LENGTH,
    MAX_PAYLOAD_BYTES,
    name_problem,
)

MAX_INPUT_BYTES: Final = MAX_PAYLOAD_BYTES
MAX_INPUT_DEPTH: Final = 64


class InvalidExecutionName(BadRequest):
    code = "invalid_name"


class InputTooLarge(InputValidationError):
    """The input's JSON is over :data:`MAX_INPUT_BYTES`: HTTP 413, with both figures."""

    http_status = 413
    code = "input_too_large"

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class InputTooDeep(InputValidationError):
    code = "input_too_deep"

    def __init__(self, message: str, *, limit: int = MAX_INPUT_DEPTH) -> None:
        super().__init__(message)
        self.limit = limit


class NotJson(InputValidationError):
    """A value (or text) that is not strict JSON: NaN, Infinity, a set, an object."""

    code = "not_json"


def check_execution_name(name: str, *, field: str = "name") -> None:
    """Refuse a name Step Functions would refuse, saying which character and where."""
    problem = name_problem(f"execution {field}", name)
    if problem is not None:
        raise InvalidExecutionName(problem, field=field)


def _reject_constant(name: str) -> NoReturn:
    raise NotJson(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def loads(text: str | bytes, what: str) -> Any:
    """Parse strict JSON; every refusal is one line naming ``what``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except NotJson as exc:
        raise NotJson(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise InputTooDeep(f"{what} nests arrays/objects deeper than {MAX_INPUT_DEPTH}") from None


def dumps(value: Any, what: str, **options: Any) -> str:
    """``json.dumps`` that refuses NaN/Infinity (and anything else not JSON) in one line."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except (TypeError, ValueError) as exc:
        raise NotJson(f"{what} is not JSON ({exc})") from None


def input_json(value: Any) -> str:
    """The input's JSON text as it is measured and sent: compact, non-ASCII kept."""
    return dumps(value, "execution input", separators=(",", ":"), ensure_ascii=False)


def depth(value: Any) -> int:
    """How many arrays/objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if level > MAX_INPUT_DEPTH:
            break  # past the limit: how much deeper does not matter
        stack.extend((child, level) for child in children)
    return deepest


def check_input(value: Any, what: str = "execution input") -> int:
    """Refuse an input no entry point may take (too deep, not JSON, too large); return
    its size in bytes."""
    too_deep = f"{what} nests arrays/objects deeper than {MAX_INPUT_DEPTH} levels"
    try:
        text = input_json(value)  # first: C speed, so a huge input costs little to refuse
    except NotJson as exc:
        raise NotJson(str(exc).replace("execution input", what, 1)) from None
    except RecursionError:
        raise InputTooDeep(too_deep) from None
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_INPUT_BYTES:
        raise InputTooLarge(
            f"{what} is {size:,} bytes of JSON; the limit is {MAX_INPUT_BYTES:,} bytes "
            "(256 KiB, Step Functions' payload quota): pass a reference (an S3 key, a URL) "
            "instead of the data",
            size=size,
            limit=MAX_INPUT_BYTES,
        )
    if depth(value) > MAX_INPUT_DEPTH:  # at most 256 KiB of JSON to walk
        raise InputTooDeep(too_deep)
    return size


def validate_input(dag: Dag, input: Any) -> None:
    """Fail fast, before anything runs: the input must be storable JSON within the
    limits (:func:`check_input`) and fit every ``params`` type."""
    check_input(input, f"workflow {dag.workflow!r}: execution input")
    for node in dag.nodes.values():
        param = node.param(PARAMS)
        if param is None:
            continue
        try:
            TypeAdapter(param.annotation).validate_python(input)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or '(input)'}: {e['msg']}"
                for e in exc.errors()
            )
            raise InputValidationError(
                f"workflow {dag.workflow!r}: execution input rejected by node {node.name!r} "
                f"(parameter {PARAMS!r}): {details}"
            ) from None


__all__ = [
    "EXECUTION_NAME_PATTERN",
    "MAX_INPUT_BYTES",
    "MAX_INPUT_DEPTH",
    "MAX_NAME_LENGTH",
    "InputTooDeep",
    "InputTooLarge",
    "InvalidExecutionName",
    "NotJson",
    "check_execution_name",
    "check_input",
    "depth",
    "dumps",
    "input_json",
    "loads",
    "validate_input",
]

"""The JSONata query language: ``{% ... %}`` templates, ``$states``, Step Functions' functions.

Expressions are evaluated by ``jsonatapy`` (JSONata 2.x in Rust; see the library
decision in docs/local-engine.md), imported on first use so JSONPath-only machines and
the node-runner Lambda never load it. Step Functions' dialect on top of JSONata:

* ``$partition``, ``$range``, ``$hash``, ``$random`` (optional seed), ``$uuid``, ``$parse``;
* ``$eval`` is not available (calling it fails as calling a non-function does);
* ``$now()``/``$millis()`` read the execution's clock (so virtual time is honoured),
  ``$now(picture, timezone)`` formatting it as ``$fromMillis`` does;
* ``$encodeUrl``/``$encodeUrlComponent`` are JavaScript's ``encodeURI``/``encodeURIComponent``;
* an expression that returns nothing (undefined) fails the state with
  ``States.QueryEvaluationError`` naming the field, as does any evaluation error;
* non-finite numbers come out as the strings ``"Infinity"``/``"-Infinity"``/``"NaN"``.

A JSON ``null`` and "nothing" are told apart by evaluating ``{"v": (expr)}``: JSONata's
object constructor drops a key whose value is undefined and keeps a null one.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
import math
import random
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from stepdag.asl import java_random
from stepdag.asl.clock import Clock
from stepdag.asl.errors import StatesError
from stepdag.asl.jsonata_messages import js_message, js_syntax_message

QUERY_EVALUATION_ERROR: Final = "States.QueryEvaluationError"
_HASH_ALGORITHMS: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_HOST_PREFIX: Final = re.compile(r"^host function raised \w+: ")
_PARSE_PREFIX: Final = "Parse error: "
_CACHE_SIZE: Final = 4096
# AWS bounds an expression's evaluation; an endless (tail-)recursion must fail the state
# (D1012, a States.QueryEvaluationError) rather than hang the execution.
EVALUATION_TIMEOUT_MS: Final = 5000
_NAME: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STATES_PART: Final = re.compile(r"\$states\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_BARE_STATES: Final = re.compile(r"\$states(?!\s*\.\s*[A-Za-z_])")


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


class JsonataSyntaxError(ValueError):
    """A ``{% ... %}`` expression does not parse."""


@dataclass(frozen=True, slots=True)
class _Env:
    rng: random.Random
    clock: Clock


_env: contextvars.ContextVar[_Env | None] = contextvars.ContextVar("stepdag_jsonata_env")


class Expression:
    """One ``{% ... %}`` string, compiled once (thread-safe to evaluate)."""

    __slots__ = ("names", "states_parts", "text")

    def __init__(self, source: str) -> None:
        self.text = source[2:-2].strip()
        _compiled(self.text)  # syntax errors surface at load
        # Only the variables an expression names are handed to the library: each binding
        # is converted on every evaluation, and a Map's ItemSelector would otherwise
        # convert the whole Map input once per item. JSONata cannot look a variable up
        # by a computed name, so the text says which ones it can reach.
        self.names = frozenset(_NAME.findall(self.text))
        bare_states = _BARE_STATES.search(self.text) is not None
        self.states_parts = None if bare_states else frozenset(_STATES_PART.findall(self.text))

    def _bindings(self, bindings: dict[str, Any]) -> dict[str, Any]:
        out = {name: bindings[name] for name in self.names if name in bindings}
        states = out.get("states")
        if isinstance(states, dict) and self.states_parts is not None:
            out["states"] = {k: v for k, v in states.items() if k in self.states_parts}
        return out

    def evaluate(self, field: str, bindings: dict[str, Any]) -> Any:
        try:
            wrapped = _compiled(self.text).evaluate(
                None, self._bindings(bindings), timeout=EVALUATION_TIMEOUT_MS
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3 panics derive from BaseException
            message = _HOST_PREFIX.sub("", str(exc))
            if message.startswith(_PARSE_PREFIX):
                message = message[len(_PARSE_PREFIX) :]
            message = js_message(message, self.text)
            separator = ". " if re.match(r"[A-Z]\d{4}: ", message) else ": "
            raise StatesError(
                QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                f"threw an error during evaluation{separator}{message}",
            ) from exc
        if "v" not in wrapped:
            raise StatesError(
                QUERY_EVALUATION_ERROR,
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                "returned nothing (undefined).",
            )
        return _to_json_value(wrapped["v"])


_per_thread = threading.local()


def _compiled(text: str) -> Any:
    """The compiled expression for this thread (jsonatapy's objects are thread-bound)."""
    cache: dict[str, Any] | None = getattr(_per_thread, "cache", None)
    if cache is None:
        cache = _per_thread.cache = {}
    compiled = cache.get(text)
    if compiled is None:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        compiled = cache[text] = _compile(text)
    return compiled


def _compile(text: str) -> Any:
    try:
        import jsonatapy
    except ImportError as exc:  # a dependency of stepdag; missing only in a broken install
        raise ImportError(
            "JSONata states need the 'jsonatapy' package (pip install jsonatapy)"
        ) from exc

    try:
        compiled = jsonatapy.compile('{"v": (' + text + "\n)}")
    except ValueError as exc:
        # The parser's message for the expression as written, not for the wrapper.
        try:
            jsonatapy.compile(text)
            message = str(exc)
        except ValueError as bare:
            message = str(bare)
        raise JsonataSyntaxError(js_syntax_message(message)) from exc
    for name, fn in _FUNCTIONS.items():
        compiled.register(name, fn)
    for name, fn in _OVERRIDES.items():
        compiled.register_override(name, fn)
    return compiled


def _to_json_value(value: Any) -> Any:
    """Integral floats print as integers (as AWS does); non-finite numbers become strings."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, list):
        return [_to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json_value(v) for k, v in value.items()}
    return value


# -- templates ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Expr:
    field: str
    expression: Expression


@dataclass(frozen=True, slots=True)
class Obj:
    fields: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Arr:
    items: tuple[Node, ...]


Node: TypeAlias = Const | Expr | Obj | Arr


def compile_template(value: Any, field: str) -> Node:
    """Compile a JSON value whose strings may be ``{% %}`` expressions, at any depth.

    ``field`` is the AWS-style location used in causes: ``Output/a/b[0]``.
    Raises :class:`JsonataSyntaxError` for an expression that does not parse.
    """
    if is_expression(value):
        return Expr(field, Expression(value))
    if isinstance(value, dict):
        fields = tuple((k, compile_template(v, f"{field}/{k}")) for k, v in value.items())
        if all(isinstance(n, Const) for _, n in fields):
            return Const(value)
        return Obj(fields)
    if isinstance(value, list):
        items = tuple(compile_template(v, f"{field}[{i}]") for i, v in enumerate(value))
        if all(isinstance(n, Const) for n in items):
            return Const(value)
        return Arr(items)
    return Const(value)


def template_problems(value: Any, where: str, field: str) -> list[str]:
    """Validation problems of a template (each expression must parse)."""
    try:
        compile_template(value, field)
    except JsonataSyntaxError as exc:
        return [f"{where}: JSONata expression does not parse: {exc}"]
    return []


def evaluate(node: Node, bindings: dict[str, Any]) -> Any:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Expr):
        return node.expression.evaluate(node.field, bindings)
    if isinstance(node, Obj):
        return {name: evaluate(child, bindings) for name, child in node.fields}
    return [evaluate(child, bindings) for child in node.items]


def bindings(
    variables: dict[str, Any],
    *,
    input: Any,
    context: dict[str, Any],
    result: Any = None,
    error_output: Any = None,
    has_result: bool = False,
    has_error: bool = False,
) -> dict[str, Any]:
    """The variables of an evaluation: workflow variables plus the reserved ``$states``."""
    states: dict[str, Any] = {"input": input, "context": context}
    if has_result:
        states["result"] = result
    if has_error:
        states["errorOutput"] = error_output
    return {**variables, "states": states}


def evaluating(rng: random.Random, clock: Clock) -> contextvars.Token[_Env | None]:
    """Make ``$random``/``$uuid``/``$now`` draw from this execution (reset with the token)."""
    return _env.set(_Env(rng, clock))


def done_evaluating(token: contextvars.Token[_Env | None]) -> None:
    _env.reset(token)


# -- Step Functions' functions ---------------------------------------------------------------


def _fail(message: str) -> ValueError:
    return ValueError(message)


def _towards_zero(value: Any, fn: str, position: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(
            f'T0410: Argument {position} of function "{fn}" does not match function signature'
        )
    return int(value)


def _partition(array: Any = None, size: Any = None, *extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 3 of function "partition" does not match function signature')
    if not isinstance(array, list):
        raise _fail('T0410: Argument 1 of function "partition" does not match function signature')
    chunk = _towards_zero(size, "partition", 2)
    if chunk <= 0:
        raise _fail("D3137: Second argument must be greater than zero")
    return [array[i : i + chunk] for i in range(0, len(array), chunk)]


def _range(start: Any = None, end: Any = None, step: Any = None, *extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 4 of function "range" does not match function signature')
    first = _towards_zero(start, "range", 1)
    last = _towards_zero(end, "range", 2)
    by = _towards_zero(step, "range", 3)
    if by == 0:
        raise _fail("D3137: Third argument (step) must not be zero")
    count = max(0, (last - first) // by + 1)
    if count > 1000:
        raise _fail("D3137: The range would produce more than 1000 elements")
    return [first + i * by for i in range(count)]


def _hash(value: Any = None, algorithm: Any = None, *extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 3 of function "hash" does not match function signature')
    if not isinstance(value, str):
        raise _fail('T0410: Argument 1 of function "hash" does not match function signature')
    if not isinstance(algorithm, str):
        raise _fail('T0410: Argument 2 of function "hash" does not match function signature')
    name = _HASH_ALGORITHMS.get(algorithm)
    if name is None:
        raise _fail(
            f"D3137: Hash algorithm '{algorithm}' must be one of SHA-1, SHA-384, SHA-256, "
            "SHA-512, MD5"
        )
    return hashlib.new(name, value.encode("utf-8")).hexdigest()


def _random(seed: Any = None, *extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 2 of function "random" does not match function signature')
    if seed is not None:
        return java_random.next_double(_towards_zero(seed, "random", 1))
    env = _env.get(None)
    return (env.rng if env is not None else random).random()


def _uuid(*extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 1 of function "uuid" does not match function signature')
    env = _env.get(None)
    if env is None:
        return str(uuid.uuid4())
    return str(uuid.UUID(int=env.rng.getrandbits(128), version=4))


def _parse(text: Any = None, *extra: Any) -> Any:
    if extra:
        raise _fail('T0410: Argument 2 of function "parse" does not match function signature')
    if not isinstance(text, str):
        raise _fail('T0410: Argument 1 of function "parse" does not match function signature')
    try:
        return json.loads(text)
    except ValueError:
        raise _fail("D3137: Invalid JSON") from None


def _eval(*_: Any) -> Any:
    raise _fail("T1006: Attempted to invoke a non-function: $eval")


def _now_ms() -> int:
    env = _env.get(None)
    if env is None:
        return int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return int(env.clock.now() * 1000)


def _now(picture: Any = None, timezone: Any = None, *_: Any) -> Any:
    if picture is None and timezone is None:
        stamp = dt.datetime.fromtimestamp(_now_ms() / 1000, dt.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    # $now(picture, timezone) formats as $fromMillis does (the library's own formatter).
    import jsonatapy

    text = "$fromMillis($ms, $p)" if timezone is None else "$fromMillis($ms, $p, $tz)"
    return jsonatapy.compile(text).evaluate(None, {"ms": _now_ms(), "p": picture, "tz": timezone})


# jsonata-js's $encodeUrl/$encodeUrlComponent are JavaScript's encodeURI and
# encodeURIComponent: these characters stay as they are (jsonatapy escapes some of them
# and leaves spaces in URLs).
_URI_SAFE: Final = ";,/?:@&=+$-_.!~*'()#"
_URI_COMPONENT_SAFE: Final = "-_.!~*'()"


def _encoder(name: str, safe: str) -> Callable[..., Any]:
    def encode(text: Any = None, *extra: Any) -> Any:
        if text is None:
            return None
        if not isinstance(text, str) or extra:
            position = 1 if not isinstance(text, str) else 2
            raise _fail(
                f'T0410: Argument {position} of function "{name}" does not match function signature'
            )
        try:
            return urllib.parse.quote(text, safe=safe, encoding="utf-8", errors="strict")
        except UnicodeEncodeError:
            raise _fail(f"D3140: Malformed URL passed to ${name}(): {json.dumps(text)}") from None

    return encode


def _millis(*_: Any) -> Any:
    return _now_ms()


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "uuid": _uuid,
    "parse": _parse,
}
_OVERRIDES: Final[dict[str, Callable[..., Any]]] = {
    "random": _random,
    "eval": _eval,
    "now": _now,
    "millis": _millis,
    "encodeUrl": _encoder("encodeUrl", _URI_SAFE),
    "encodeUrlComponent": _encoder("encodeUrlComponent", _URI_COMPONENT_SAFE),
}


__all__ = [
    "QUERY_EVALUATION_ERROR",
    "Expression",
    "JsonataSyntaxError",
    "Node",
    "bindings",
    "compile_template",
    "evaluate",
    "is_expression",
    "template_problems",
]

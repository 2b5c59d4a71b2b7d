"""``States.*`` intrinsic functions: parsing (at load) and evaluation (at run time).

Grammar: ``States.Name(arg, ...)`` where an argument is a single-quoted string
(escapes ``\\'`` ``\\{`` ``\\}`` ``\\\\``), a number, ``true``/``false``/``null``, a
JSONPath (``$...`` or ``$$...``) or a nested intrinsic call. Any failure while
evaluating raises ``States.Runtime`` (see ``_fail``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from stepdag.asl import java_random
from stepdag.asl.errors import RUNTIME, StatesError, to_json
from stepdag.asl.paths import JsonPath, NoMatch, PathSyntaxError, compile_path

MAX_ARRAY_RANGE: Final = 1000
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
MAX_STRING_INPUT: Final = 10000


class IntrinsicSyntaxError(ValueError):
    """The intrinsic function expression is malformed."""


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    # For string literals: the text with escapes kept, so States.Format can tell an
    # escaped ``\{`` from a placeholder ``{}``.
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class PathArg:
    path: JsonPath


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Arg, ...]


Arg: TypeAlias = Literal | PathArg | Call


@dataclass(frozen=True, slots=True)
class Env:
    """What an intrinsic can read: the effective input and the context object."""

    data: Any
    context: Any
    rng: random.Random
    field: str = ""  # the template field being computed, for error messages


def looks_like_intrinsic(text: str) -> bool:
    return text.startswith("States.")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(
            f"Invalid intrinsic function '{self.text}': {msg} at offset {self.pos}"
        )

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def parse(self) -> Call:
        self.ws()
        call = self.parse_call()
        self.ws()
        if self.pos != len(self.text):
            raise self.error("unexpected trailing characters")
        return call

    def parse_call(self) -> Call:
        m = re.compile(r"States\.[A-Za-z0-9]+").match(self.text, self.pos)
        if not m:
            raise self.error("expected a States.* function name")
        name = m.group()
        self.pos = m.end()
        if name not in FUNCTIONS:
            raise self.error(f"unknown function {name}")
        self.ws()
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.error("expected '('")
        self.pos += 1
        args: list[Arg] = []
        self.ws()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                self.ws()
                args.append(self.parse_arg())
                self.ws()
                ch = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if ch == ")":
                    break
                if ch != ",":
                    self.pos -= 1
                    raise self.error("expected ',' or ')'")
        lo, hi = FUNCTIONS[name][1]
        if not lo <= len(args) <= hi:
            expected = str(lo) if lo == hi else f"{lo}..{hi if hi < 10**6 else 'n'}"
            raise self.error(f"{name} takes {expected} arguments, got {len(args)}")
        return Call(name, tuple(args))

    def parse_arg(self) -> Arg:
        ch = self.text[self.pos : self.pos + 1]
        if ch == "'":
            return self.parse_string()
        if ch == "$":
            return self.parse_path()
        if self.text.startswith("States.", self.pos):
            return self.parse_call()
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true\b|false\b|null\b").match(
            self.text, self.pos
        )
        if not m:
            raise self.error("invalid argument")
        self.pos = m.end()
        tok = m.group()
        if tok in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[tok])
        return Literal(float(tok) if m.group(1) or m.group(2) else int(tok))

    def parse_string(self) -> Literal:
        start = self.pos
        self.pos += 1
        buf: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                buf.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return Literal("".join(buf), self.text[start + 1 : self.pos - 1])
            buf.append(ch)
            self.pos += 1
        raise self.error("unterminated string literal")

    def parse_path(self) -> PathArg:
        start = self.pos
        depth = 0
        quote = ""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"" and depth > 0:
                quote = ch
            elif ch in "[(":
                depth += 1
            elif ch in "])":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            self.pos += 1
        source = self.text[start : self.pos].strip()
        try:
            return PathArg(compile_path(source))
        except PathSyntaxError as exc:
            raise self.error(str(exc)) from exc


def parse_intrinsic(text: str) -> Call:
    return _Parser(text).parse()


def _fail(cause: str) -> StatesError:
    # AWS documents the name States.IntrinsicFailure, but what Step Functions actually
    # raises for a failing intrinsic (LocalStack's AWS-recorded snapshots, hence moto)
    # is States.Runtime — uncatchable by States.ALL. We follow the observed behaviour.
    return StatesError(RUNTIME, cause)


def evaluate(call: Call, env: Env) -> Any:
    args = [_eval_arg(a, env) for a in call.args]
    fn = FUNCTIONS[call.name][0]
    if call.name == "States.Format":
        first = call.args[0]
        raw = first.raw if isinstance(first, Literal) else None
        return _format(args, raw)
    return fn(args, env)


def _eval_arg(arg: Arg, env: Env) -> Any:
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, PathArg):
        try:
            return arg.path.find(env.context if arg.path.context else env.data)
        except NoMatch as exc:
            data = env.context if arg.path.context else env.data
            raise StatesError(
                RUNTIME,
                f"The JSONPath '{arg.path.source}' specified for the field '{env.field}' "
                f"could not be found in the input '{to_json(data)}'",
            ) from exc
    return evaluate(arg, env)


# ---------------------------------------------------------------- the functions


def _to_format_str(value: Any) -> str:
    # Step Functions renders non-string values Java-style: {a=1, b=[x, y]}.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_to_format_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_to_format_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return _java_double(value)
    return json.dumps(value)


def _java_double(value: float) -> str:
    """Java's ``Double.toString``: plain between 10^-3 and 10^7 (``100.0``), otherwise
    ``1.0E21`` / ``1.234567895E8`` / ``1.0E-5``; the digits are the shortest that round-trip."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest_digits(abs(value))  # value = 0.d1d2... * 10**exponent
    if 1e-3 <= abs(value) < 1e7:
        if exponent <= 0:
            return f"{sign}0.{'0' * -exponent}{digits}"
        whole, fraction = digits[:exponent].ljust(exponent, "0"), digits[exponent:]
        return f"{sign}{whole}.{fraction or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent - 1}"


def _shortest_digits(value: float) -> tuple[str, int]:
    mantissa, _, exp = f"{value!r}".partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = len(whole.lstrip("0")) + int(exp or 0) if whole.strip("0") else int(exp or 0)
    if not whole.strip("0"):  # 0.000ddd: the leading zeros of the fraction shift it down
        exponent -= len(fraction) - len(fraction.lstrip("0"))
    return digits.rstrip("0") or "0", exponent


def _format(args: list[Any], raw: str | None) -> str:
    template = args[0]
    if not isinstance(template, str):
        raise _invalid("States.Format")
    values = args[1:]
    out: list[str] = []
    used = 0
    text = raw if raw is not None else template
    i = 0
    while i < len(text):
        ch = text[i]
        if raw is not None and ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if text.startswith("{}", i):
            if used >= len(values):
                raise _invalid("States.Format")
            out.append(_to_format_str(values[used]))
            used += 1
            i += 2
            continue
        if ch in "{}":
            # An unescaped brace that is not part of "{}" ("Hello {", "}", "{{}}") is a
            # malformed template on AWS, not literal text.
            raise _invalid("States.Format")
        out.append(ch)
        i += 1
    if used != len(values):
        raise _invalid("States.Format")
    return "".join(out)


def _string_to_json(args: list[Any], env: Env) -> Any:
    (s,) = args
    if not isinstance(s, str):
        raise _invalid("States.StringToJson")
    if s.strip() == "":
        return None
    try:
        return json.loads(s)
    except json.JSONDecodeError as exc:
        raise _invalid("States.StringToJson") from exc


def _json_to_string(args: list[Any], env: Env) -> Any:
    return _java_json(args[0])


def _java_json(value: Any) -> str:
    """Compact JSON as Step Functions' (Jackson's) writer prints it: doubles as Java's
    ``Double.toString`` (``1.0E21``), everything else as ``to_json``."""
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(k)}:{_java_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_java_json(v) for v in value) + "]"
    return to_json(value)


def _array(args: list[Any], env: Env) -> Any:
    return list(args)


def _need_array(name: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise _invalid(name)
    return v


def _invalid(name: str) -> StatesError:
    # What Step Functions reports for any argument an intrinsic rejects (wrong type,
    # out of range); the state prefix ("An error occurred while executing ...") is
    # added by the state.
    return _fail(f"Invalid arguments in {name}")


def _number(name: str, v: Any) -> float | int:
    """A JSON number argument; strings that look like numbers are not numbers."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _invalid(name)
    return v


def _truncated(name: str, v: Any) -> int:
    # AWS documents "round it off to the nearest integer", but Step Functions really
    # truncates for ArrayRange/ArrayPartition/MathRandom (a Java int cast):
    # ArrayPartition(a, 2.6) chunks by 2, ArrayRange(1.6, 1.4, 1) is [1].
    value = _number(name, v)
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(name)
    return int(value)


def _rounded(name: str, v: Any) -> int:
    # MathAdd rounds (1.6 + 2.7 == 5): Java's Math.round, halves towards +infinity.
    value = _number(name, v)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(name)
        return math.floor(value + 0.5)
    return value


def _array_partition(args: list[Any], env: Env) -> Any:
    arr = _need_array("States.ArrayPartition", args[0])
    size = _truncated("States.ArrayPartition", args[1])
    if size <= 0:
        raise _invalid("States.ArrayPartition")
    return [arr[i : i + size] for i in range(0, len(arr), size)]


def _array_contains(args: list[Any], env: Env) -> Any:
    arr = _need_array("States.ArrayContains", args[0])
    # Observed on AWS: values are compared by their text, so true matches "true", 42
    # matches "42", and {"a":1,"b":2} does not match {"b":2,"a":1}.
    target = _as_text(args[1])
    return any(_as_text(item) == target for item in arr)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else to_json(value)


def _json_equal(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON does not.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _array_range(args: list[Any], env: Env) -> Any:
    start, end, step = (_truncated("States.ArrayRange", v) for v in args)
    if step == 0:
        raise _invalid("States.ArrayRange")
    # Both directions count: ArrayRange(5, 1, -2) is [5, 3, 1]; the end is inclusive.
    stop = end + (1 if step > 0 else -1)
    items = range(start, stop, step)
    if len(items) > MAX_ARRAY_RANGE:
        raise _invalid("States.ArrayRange")
    return list(items)


def _array_get_item(args: list[Any], env: Env) -> Any:
    arr = _need_array("States.ArrayGetItem", args[0])
    # Observed on AWS: a fractional index is truncated (1.2 -> 1), and any index into
    # an empty array yields null, while an index past the end of a non-empty one fails.
    idx = _truncated("States.ArrayGetItem", args[1])
    if not arr:
        return None
    if not 0 <= idx < len(arr):
        raise _invalid("States.ArrayGetItem")
    return arr[idx]


def _array_length(args: list[Any], env: Env) -> Any:
    return len(_need_array("States.ArrayLength", args[0]))


def _array_unique(args: list[Any], env: Env) -> Any:
    arr = _need_array("States.ArrayUnique", args[0])
    out: list[Any] = []
    for item in arr:
        if not any(_json_equal(item, seen) for seen in out):
            out.append(item)
    return out


def _need_str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise _invalid(name)
    if len(v) > MAX_STRING_INPUT:
        raise _invalid(name)
    return v


def _base64_encode(args: list[Any], env: Env) -> Any:
    s = _need_str("States.Base64Encode", args[0])
    return base64.b64encode(s.encode("utf-8")).decode("ascii")


_NOT_BASE64: Final = re.compile(r"[^A-Za-z0-9+/=]")


def _base64_decode(args: list[Any], env: Env) -> Any:
    # AWS decodes with a MIME decoder ("MIME Base64 decoding scheme"), and was observed
    # to accept surrounding spaces, characters outside the alphabet and missing padding:
    # such characters are skipped, '=' ends the data, and bytes that are not UTF-8
    # become U+FFFD. Only a dangling single character (no whole byte) fails.
    s = _need_str("States.Base64Decode", args[0])
    data = _NOT_BASE64.sub("", s).split("=", 1)[0]
    if len(data) % 4 == 1:
        raise _invalid("States.Base64Decode")
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("States.Base64Decode") from exc
    return raw.decode("utf-8", errors="replace")


_HASHES: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def _hash(args: list[Any], env: Env) -> Any:
    data, algorithm = args
    # Observed on AWS: a number or an object is hashed as its JSON text, not rejected.
    text = _need_str("States.Hash", data if isinstance(data, str) else to_json(data))
    if not isinstance(algorithm, str) or algorithm not in _HASHES:
        raise _invalid("States.Hash")
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8")).hexdigest()


def _json_merge(args: list[Any], env: Env) -> Any:
    a, b, deep = args
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise _invalid("States.JsonMerge")
    if not isinstance(deep, bool):
        raise _invalid("States.JsonMerge")
    if deep:
        # Step Functions only supports shallow merges and rejects deep mode.
        raise _invalid("States.JsonMerge")
    merged = dict(a)
    merged.update(b)
    return merged


def _math_random(args: list[Any], env: Env) -> Any:
    start = _truncated("States.MathRandom", args[0])
    end = _truncated("States.MathRandom", args[1])
    # AWS: "between the specified start number (inclusive) and end number (exclusive)";
    # an empty interval (start >= end) is rejected.
    if start >= end:
        raise _invalid("States.MathRandom")
    if len(args) == 3:
        seed = _truncated("States.MathRandom", args[2])
        if end - start > INT32_MAX:  # Random.nextInt takes a positive int bound
            raise _invalid("States.MathRandom")
        return start + java_random.next_int(seed, end - start)
    return env.rng.randrange(start, end)


def _math_add(args: list[Any], env: Env) -> Any:
    # AWS: "integer values in the range of -2147483648 and 2147483647"; a sum outside
    # that range fails too (Java int arithmetic would otherwise wrap).
    a, b = (_rounded("States.MathAdd", v) for v in args)
    total = a + b
    if not all(INT32_MIN <= v <= INT32_MAX for v in (a, b, total)):
        raise _invalid("States.MathAdd")
    return total


def _string_split(args: list[Any], env: Env) -> Any:
    s, delims = args
    if not isinstance(s, str) or not isinstance(delims, str):
        raise _invalid("States.StringSplit")
    if delims == "":
        return [s] if s else []
    pattern = "|".join(re.escape(c) for c in delims)
    return [part for part in re.split(pattern, s) if part]


def _uuid(args: list[Any], env: Env) -> Any:
    return str(uuid.UUID(int=env.rng.getrandbits(128), version=4))


_INF: Final = 10**9

FUNCTIONS: Final[dict[str, tuple[Callable[[list[Any], Env], Any], tuple[int, int]]]] = {
    "States.Format": (lambda a, e: _format(a, None), (1, _INF)),
    "States.StringToJson": (_string_to_json, (1, 1)),
    "States.JsonToString": (_json_to_string, (1, 1)),
    "States.Array": (_array, (0, _INF)),
    "States.ArrayPartition": (_array_partition, (2, 2)),
    "States.ArrayContains": (_array_contains, (2, 2)),
    "States.ArrayRange": (_array_range, (3, 3)),
    "States.ArrayGetItem": (_array_get_item, (2, 2)),
    "States.ArrayLength": (_array_length, (1, 1)),
    "States.ArrayUnique": (_array_unique, (1, 1)),
    "States.Base64Encode": (_base64_encode, (1, 1)),
    "States.Base64Decode": (_base64_decode, (1, 1)),
    "States.Hash": (_hash, (2, 2)),
    "States.JsonMerge": (_json_merge, (3, 3)),
    "States.MathRandom": (_math_random, (2, 3)),
    "States.MathAdd": (_math_add, (2, 2)),
    "States.StringSplit": (_string_split, (2, 2)),
    "States.UUID": (_uuid, (0, 0)),
}

__all__ = ["FUNCTIONS", "Call", "Env", "IntrinsicSyntaxError", "evaluate", "parse_intrinsic"]

"""JSONPath as used by the ASL ``JSONPath`` query language.

Step Functions evaluates Paths with Jayway JsonPath semantics: a *definite* path (only
names and single indexes) yields one value or "no result"; an *indefinite* path
(wildcards, slices, unions, deep scans, filters) yields a list, possibly empty.
Reference Paths (``ResultPath``, Choice ``Variable``...) are the definite subset.
Compiled paths are cached because the same few strings are evaluated on every state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from stepdag.asl import variables
from stepdag.asl.errors import to_json


class PathSyntaxError(ValueError):
    """The string is not a valid JSONPath."""


class NoMatch(Exception):
    """A definite path selected nothing in the given document."""

    def __init__(self, path: str, data: Any) -> None:
        super().__init__(path)
        self.path = path
        self.data = data


_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class Field:
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True, slots=True)
class Union:
    keys: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class DeepScan:
    inner: Segment


@dataclass(frozen=True, slots=True)
class Filter:
    predicate: Callable[[Any, Any], bool]
    source: str


Segment: TypeAlias = Field | Index | Wildcard | Slice | Union | DeepScan | Filter

_NAME_RE: Final = re.compile(r"[^.\[\]()\s]+|\*")
_INT_RE: Final = re.compile(r"-?\d+")
_VARIABLE_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled path. ``context`` is True for ``$$`` (context-object) paths."""

    source: str
    segments: tuple[Segment, ...]
    context: bool
    definite: bool
    # ``$name...``: a workflow variable reference, evaluated against that variable's
    # value in the current scope (see stepdag.asl.variables) instead of ``data``.
    variable: str | None = None

    def find(self, data: Any) -> Any:
        """Evaluate; raises :class:`NoMatch` when a definite path selects nothing."""
        if self.variable is not None:
            data = variables.lookup(self.variable)
            if variables.is_missing(data):
                raise NoMatch(self.source, None)
        if not self.segments:
            return data
        if self.definite:
            node = data
            for seg in self.segments:
                node = _step_definite(seg, node)
                if node is _MISSING:
                    raise NoMatch(self.source, data)
            return node
        nodes = [data]
        for seg in self.segments:
            nodes = _step(seg, nodes, data)
        # Step Functions unwraps an indefinite selection that ends in a literal single
        # index when exactly one value was selected (``$.a[*].b[0]`` → that one value).
        if isinstance(self.segments[-1], Index) and len(nodes) == 1:
            return nodes[0]
        return nodes

    def exists(self, data: Any) -> bool:
        try:
            self.find(data)
        except NoMatch:
            return False
        return True

    @property
    def is_reference(self) -> bool:
        return self.definite and not self.context

    def set(self, data: Any, value: Any) -> Any:
        """Return a copy of ``data`` with ``value`` placed at this reference path.

        Only the containers along the path are copied, so unrelated subtrees are shared.
        Missing object fields are created; raises ``NoMatch`` when a step cannot apply.
        """
        return _set(self.segments, 0, data, value, self.source)


def _step_definite(seg: Segment, node: Any) -> Any:
    if isinstance(seg, Field):
        if isinstance(node, dict):
            return node.get(seg.name, _MISSING)
        return _MISSING
    if isinstance(seg, Index) and isinstance(node, list):
        i = seg.index
        if -len(node) <= i < len(node):
            return node[i]
    return _MISSING


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _step(seg: Segment, nodes: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if isinstance(seg, Field | Index):
            v = _step_definite(seg, node)
            if v is not _MISSING:
                out.append(v)
        elif isinstance(seg, Wildcard):
            out.extend(_children(node))
        elif isinstance(seg, Slice):
            if isinstance(node, list):
                out.extend(node[seg.start : seg.stop : seg.step])
        elif isinstance(seg, Union):
            for key in seg.keys:
                v = _step_definite(Field(key) if isinstance(key, str) else Index(key), node)
                if v is not _MISSING:
                    out.append(v)
        elif isinstance(seg, Filter):
            for child in _children(node):
                if seg.predicate(child, root):
                    out.append(child)
        elif isinstance(seg, DeepScan):
            for desc in _descendants(node):
                out.extend(_step(seg.inner, [desc], root))
    return out


def _descendants(node: Any) -> list[Any]:
    result = [node]
    for child in _children(node):
        result.extend(_descendants(child))
    return result


def _set(segs: tuple[Segment, ...], i: int, node: Any, value: Any, source: str) -> Any:
    if i == len(segs):
        return value
    seg = segs[i]
    if isinstance(seg, Field):
        if not isinstance(node, dict):
            raise NoMatch(source, node)
        copy = dict(node)
        child = node.get(seg.name, _MISSING)
        if child is _MISSING:
            child = {}
        copy[seg.name] = _set(segs, i + 1, child, value, source)
        return copy
    if isinstance(seg, Index) and isinstance(node, list) and -len(node) <= seg.index < len(node):
        lst = list(node)
        lst[seg.index] = _set(segs, i + 1, node[seg.index], value, source)
        return lst
    raise NoMatch(source, node)


# --------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str) -> PathSyntaxError:
        return PathSyntaxError(f"Invalid JSONPath '{self.text}': {msg} at offset {self.pos}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def parse_segments(self, stop: str = "") -> list[Segment]:
        segs: list[Segment] = []
        while self.pos < len(self.text) and (not stop or self.peek() not in stop):
            if self.peek(2) == "..":
                self.pos += 2
                if self.peek() == "[":
                    segs.append(DeepScan(self.parse_bracket()))
                else:
                    segs.append(DeepScan(self.parse_name()))
            elif self.peek() == ".":
                self.pos += 1
                if self.text.startswith("length()", self.pos):
                    # Step Functions does not support JSONPath functions: it looks up a
                    # property literally named "length()" (and so usually finds nothing).
                    self.pos += len("length()")
                    segs.append(Field("length()"))
                elif self.peek() == "[":
                    # Jayway (and AWS's docs: "$.abc.['def ghi']") accept a bracket
                    # selector right after a dot.
                    segs.append(self.parse_bracket())
                else:
                    segs.append(self.parse_name())
            elif self.peek() == "[":
                segs.append(self.parse_bracket())
            else:
                raise self.error("unexpected character")
        return segs

    def parse_name(self) -> Segment:
        m = _NAME_RE.match(self.text, self.pos)
        if not m:
            raise self.error("expected a field name")
        self.pos = m.end()
        return Wildcard() if m.group() == "*" else Field(m.group())

    def parse_quoted(self) -> str:
        quote = self.peek()
        self.pos += 1
        buf: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                buf.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(buf)
            buf.append(ch)
            self.pos += 1
        raise self.error("unterminated string")

    def skip_ws(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def parse_bracket(self) -> Segment:
        self.pos += 1  # "["
        self.skip_ws()
        if self.peek(2) == "?(":
            start = self.pos
            self.pos += 2
            from stepdag.asl.path_filters import FilterParser  # its grammar needs this one

            pred = FilterParser(self).parse_or()
            self.skip_ws()
            if self.peek() != ")":
                raise self.error("expected ')' closing the filter")
            self.pos += 1
            source = self.text[start : self.pos]
            self.expect("]")
            return Filter(pred, source)
        if self.peek() == "*":
            self.pos += 1
            self.expect("]")
            return Wildcard()
        keys: list[str | int] = []
        slice_parts: list[int | None] | None = None
        while True:
            self.skip_ws()
            if self.peek() in ("'", '"'):
                keys.append(self.parse_quoted())
            else:
                m = _INT_RE.match(self.text, self.pos)
                if self.peek() == ":" or (m and self.text[m.end() : m.end() + 1] == ":"):
                    slice_parts = self.parse_slice()
                    break
                if not m:
                    raise self.error("expected an index, a quoted name, '*', a slice or a filter")
                keys.append(int(m.group()))
                self.pos = m.end()
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1
                continue
            break
        self.expect("]")
        if slice_parts is not None:
            if keys:
                raise self.error("a slice cannot be part of a union")
            return Slice(slice_parts[0], slice_parts[1], slice_parts[2])
        if len(keys) == 1:
            key = keys[0]
            return Field(key) if isinstance(key, str) else Index(key)
        return Union(tuple(keys))

    def parse_slice(self) -> list[int | None]:
        parts: list[int | None] = []
        for _ in range(3):
            self.skip_ws()
            m = _INT_RE.match(self.text, self.pos)
            if m:
                parts.append(int(m.group()))
                self.pos = m.end()
            else:
                parts.append(None)
            self.skip_ws()
            if self.peek() == ":":
                self.pos += 1
            else:
                break
        while len(parts) < 3:
            parts.append(None)
        if parts[2] == 0:
            raise self.error("slice step cannot be zero")
        return parts

    def expect(self, ch: str) -> None:
        self.skip_ws()
        if self.peek() != ch:
            raise self.error(f"expected '{ch}'")
        self.pos += 1


@functools.lru_cache(maxsize=4096)
def compile_path(source: str) -> JsonPath:
    """Compile ``$...`` or ``$$...``; raises :class:`PathSyntaxError`."""
    if not isinstance(source, str) or not source.startswith("$"):
        raise PathSyntaxError(f"Invalid JSONPath '{source}': must start with '$'")
    context = source.startswith("$$")
    parser = _Parser(source)
    parser.pos = 2 if context else 1
    var = None if context else _VARIABLE_RE.match(source, 1)
    if var is not None:
        parser.pos = var.end()
    segs = tuple(parser.parse_segments())
    definite = all(isinstance(s, Field | Index) for s in segs)
    return JsonPath(source, segs, context, definite, var.group() if var else None)


def compile_reference_path(source: str) -> JsonPath:
    """A Reference Path: only names and single indexes, no ``$$``."""
    path = compile_path(source)
    if not path.is_reference:
        raise PathSyntaxError(
            f"Invalid ReferencePath '{source}': only field names and single array indexes "
            "are allowed"
        )
    return path


def is_valid_path(source: Any) -> bool:
    try:
        compile_path(source)
    except PathSyntaxError:
        return False
    return True


def is_valid_reference_path(source: Any) -> bool:
    try:
        compile_reference_path(source)
    except PathSyntaxError:
        return False
    return True


def describe_no_results(path: str) -> str:
    """AWS's rendering of a path that selected nothing: ``$['a']['b']``."""
    try:
        segs = compile_path(path).segments
    except PathSyntaxError:
        return path
    parts = ["$"]
    for seg in segs:
        if isinstance(seg, Field):
            parts.append(f"['{seg.name}']")
        elif isinstance(seg, Index):
            parts.append(f"[{seg.index}]")
        else:
            parts.append("[*]")
    return "".join(parts)


__all__ = [
    "JsonPath",
    "NoMatch",
    "PathSyntaxError",
    "compile_path",
    "compile_reference_path",
    "describe_no_results",
    "is_valid_path",
    "is_valid_reference_path",
    "to_json",
]

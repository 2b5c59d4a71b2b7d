"""Payload templates (``Parameters``, ``ResultSelector``, ``ItemSelector``).

A field whose name ends in ``.$`` takes its value from a Path (``$...`` against the
effective input, ``$$...`` against the context object) or from an intrinsic function;
the ``.$`` suffix is dropped from the output name. Templates are compiled once at
load so evaluation is a cheap tree walk that never copies constant subtrees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, TypeAlias

from stepdag.asl import intrinsics
from stepdag.asl.errors import RUNTIME, StatesError, to_json
from stepdag.asl.paths import JsonPath, NoMatch, PathSyntaxError, compile_path


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class PathRef:
    field: str
    path: JsonPath


@dataclass(frozen=True, slots=True)
class Intrinsic:
    field: str
    call: intrinsics.Call


@dataclass(frozen=True, slots=True)
class Obj:
    fields: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Arr:
    items: tuple[Node, ...]


Node: TypeAlias = Const | PathRef | Intrinsic | Obj | Arr


def compile_template(template: Any, where: str, problems: list[str]) -> Node:
    """Compile; every problem is appended to ``problems`` (prefixed by ``where``)."""
    if isinstance(template, dict):
        fields: list[tuple[str, Node]] = []
        dynamic = False
        for key, value in template.items():
            if isinstance(key, str) and key.endswith(".$"):
                dynamic = True
                name = key[:-2]
                fields.append((name, _compile_dynamic(key, value, f"{where}/{key}", problems)))
            else:
                node = compile_template(value, f"{where}/{key}", problems)
                dynamic = dynamic or not isinstance(node, Const)
                fields.append((key, node))
        if not dynamic:
            return Const(template)
        return Obj(tuple(fields))
    if isinstance(template, list):
        items = tuple(
            compile_template(v, f"{where}[{i}]", problems) for i, v in enumerate(template)
        )
        if all(isinstance(n, Const) for n in items):
            return Const(template)
        return Arr(items)
    return Const(template)


def _compile_dynamic(key: str, value: Any, where: str, problems: list[str]) -> Node:
    if not isinstance(value, str):
        problems.append(
            f"{where}: the value of a field ending in '.$' must be a string path "
            "or intrinsic function"
        )
        return Const(None)
    if value.startswith("$"):
        try:
            return PathRef(key, compile_path(value))
        except PathSyntaxError as exc:
            problems.append(f"{where}: {exc}")
            return Const(None)
    if intrinsics.looks_like_intrinsic(value):
        try:
            return Intrinsic(key, intrinsics.parse_intrinsic(value))
        except intrinsics.IntrinsicSyntaxError as exc:
            problems.append(f"{where}: {exc}")
            return Const(None)
    problems.append(
        f"{where}: the value '{value}' of a field ending in '.$' must be a JSONPath "
        "or an intrinsic function"
    )
    return Const(None)


def evaluate(node: Node, data: Any, context: Any, rng: random.Random) -> Any:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Obj):
        return {name: evaluate(child, data, context, rng) for name, child in node.fields}
    if isinstance(node, Arr):
        return [evaluate(child, data, context, rng) for child in node.items]
    if isinstance(node, PathRef):
        src = context if node.path.context else data
        try:
            return node.path.find(src)
        except NoMatch as exc:
            raise StatesError(
                RUNTIME,
                f"The JSONPath '{node.path.source}' specified for the field '{node.field}' "
                f"could not be found in the input '{to_json(src)}'",
            ) from exc
    return intrinsics.evaluate(node.call, intrinsics.Env(data, context, rng, node.field))


__all__ = ["Node", "compile_template", "evaluate"]

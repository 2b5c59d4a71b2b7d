"""Static compatibility between an upstream's return annotation and a parameter's.

Deliberately conservative: it answers "can a value of type ``src`` be passed where
``dst`` is expected?" for the shapes people write in workflows (builtins, pydantic
models, ``list[T]``/``Sequence[T]``, ``dict[K, V]``, ``Optional``/unions, ``Any``).
When it cannot tell (exotic typing constructs) it says yes — runtime validation with
pydantic still guards the value, so a false "compatible" is caught at run time, while a
false "incompatible" would reject a correct workflow.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from typing import Any

_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)

# Generic origins that accept a value of the key origin (list[int] fits Sequence[int]).
_ORIGIN_FITS: dict[Any, tuple[Any, ...]] = {
    list: (list, cabc.Sequence, cabc.Iterable, cabc.Collection, cabc.MutableSequence),
    tuple: (tuple, cabc.Sequence, cabc.Iterable, cabc.Collection),
    set: (set, cabc.Set, cabc.Iterable, cabc.Collection, cabc.MutableSet),
    frozenset: (frozenset, cabc.Set, cabc.Iterable, cabc.Collection),
    dict: (dict, cabc.Mapping, cabc.MutableMapping),
}

_NUMERIC_WIDENING = {(int, float), (bool, int), (bool, float)}


def _strip(tp: Any) -> Any:
    # Annotated[T, ...] → T
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in _UNION_TYPES


def is_any(tp: Any) -> bool:
    tp = _strip(tp)
    return tp is Any or tp is object or tp is inspect.Parameter.empty


def is_assignable(src: Any, dst: Any) -> bool:
    """True when a value typed ``src`` may be passed to a parameter typed ``dst``."""
    src, dst = _strip(src), _strip(dst)
    if is_any(src) or is_any(dst) or src == dst:
        return True
    if isinstance(src, str) or isinstance(dst, str):
        return True  # unresolved forward reference: cannot judge statically
    if _is_union(src):
        return all(is_assignable(s, dst) for s in typing.get_args(src))
    if _is_union(dst):
        return any(is_assignable(src, d) for d in typing.get_args(dst))
    if src is type(None) or dst is type(None):
        return False
    if (src, dst) in _NUMERIC_WIDENING:
        return True
    if typing.get_origin(src) is typing.Literal:
        return all(is_assignable(type(v), dst) for v in typing.get_args(src))
    if typing.get_origin(dst) is typing.Literal:
        return False
    s_origin, d_origin = typing.get_origin(src) or src, typing.get_origin(dst) or dst
    if isinstance(s_origin, type) and isinstance(d_origin, type):
        fits = _ORIGIN_FITS.get(s_origin)
        if fits is not None:
            if d_origin not in fits:
                return False
        elif not issubclass(s_origin, d_origin):
            return False
        return _args_assignable(src, dst, s_origin)
    return True  # TypeVar, NewType, Protocols …: leave it to runtime validation


def _args_assignable(src: Any, dst: Any, s_origin: Any) -> bool:
    s_args, d_args = typing.get_args(src), typing.get_args(dst)
    if not s_args or not d_args:
        return True  # bare list vs list[int]: unknown element type
    if s_origin is tuple and len(s_args) == 2 and s_args[1] is Ellipsis:
        s_args = (s_args[0],)
    if len(d_args) == 2 and d_args[1] is Ellipsis:
        d_args = (d_args[0],)
    if len(d_args) == 1 and len(s_args) > 1 and s_origin is tuple:
        return all(is_assignable(s, d_args[0]) for s in s_args)
    if len(s_args) != len(d_args):
        return True
    return all(is_assignable(s, d) for s, d in zip(s_args, d_args, strict=True))


def item_type(tp: Any) -> Any | None:
    """Element type of a list-like annotation, ``Any`` if unknown, None if not list-like."""
    tp = _strip(tp)
    if is_any(tp) or isinstance(tp, str):
        return Any
    if _is_union(tp):
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        return item_type(members[0]) if len(members) == 1 else None
    origin = typing.get_origin(tp) or tp
    if origin in (list, tuple, set, frozenset) or origin in (
        cabc.Sequence,
        cabc.Iterable,
        cabc.Collection,
        cabc.MutableSequence,
    ):
        args = typing.get_args(tp)
        return args[0] if args else Any
    return None


def accepts_none(tp: Any) -> bool:
    tp = _strip(tp)
    if is_any(tp) or tp is type(None):
        return True
    return _is_union(tp) and type(None) in typing.get_args(tp)


def describe(tp: Any) -> str:
    """Readable annotation: ``list[Record]`` rather than ``list[etl.Record]``."""
    tp = _strip(tp)
    if is_any(tp):
        return "Any"
    if tp is type(None):
        return "None"
    args = typing.get_args(tp)
    if _is_union(tp):
        return " | ".join(describe(a) for a in args)
    if args:
        origin = typing.get_origin(tp)
        name = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        return f"{name}[{', '.join('...' if a is Ellipsis else describe(a) for a in args)}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp).replace("typing.", "")

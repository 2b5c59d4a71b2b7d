"""A node function's code fingerprint: the "same code" half of its cache key.

The fingerprint covers what decides the function's result besides its arguments:

* its code object: bytecode, constants (nested functions, lambdas and comprehensions
  included), names, argument layout -- not line numbers or the file name, so moving a
  function or editing a comment elsewhere keeps its cache;
* its defaults, closure cells and resolved type annotations (an output model's fields);
* every module-level name its code reads (``LOAD_GLOBAL``, and ``module.attr`` chains
  such as ``helpers.rate``), by value: constants and containers by a canonical encoding;
  functions and classes of the user's own code recursively (their code, their globals);
  anything else -- library functions, classes and modules -- by qualified name (and a
  module's ``__version__``).

"The user's own code" is a module of the same top-level package as the node function
(or, for a top-level module such as ``statemachines/etl.py`` loaded as ``etl``, a module
in its directory) that is not a library file (``core/sources.py``: stepdag, the standard
library, ``site-packages``/``dist-packages``).

Deterministic across processes: no ``id()``, no ``hash()``, sets and dicts sorted by
their encodings (a ``frozenset`` constant iterates in hash-seed order otherwise). Computed
once per function per process (a weak memo), so a global the process mutates after
the first call is seen as it was then.

Limits (documented in docs/concepts.md): values without a stable encoding (an object
whose ``repr`` shows a memory address, or raises) count by their type name only; code
outside the user's package (a library upgrade, another top-level package of the project)
and data the function reads at run time (files, environment, a database) are not
covered -- bump ``Cache(version=...)`` for those. Bytecode differs between Python minor
versions, so a new interpreter starts a new cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import dis
import enum
import functools
import hashlib
import re
import sys
import types
import typing
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stepdag.core.model import resolve_hints
from stepdag.core.sources import is_library_file

_MEMO: weakref.WeakKeyDictionary[Callable[..., Any], str] = weakref.WeakKeyDictionary()
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_DEPTH = 32
# Generated or bookkeeping attributes of a class: not what its code does.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"})


def code_fingerprint(fn: Callable[..., Any]) -> str:
    """A hex SHA-256 of ``fn``'s code and of everything module-level it reads."""
    try:
        return _MEMO[fn]
    except (KeyError, TypeError):  # TypeError: not weak-referenceable (a builtin)
        pass
    encoder = _Encoder(fn)
    # The root is encoded in full even when it is not "the user's" (a node function
    # from stepdag.testing or an installed package): its own code is the key's core.
    text = encoder.function(fn) if isinstance(fn, types.FunctionType) else encoder.encode(fn)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with contextlib.suppress(TypeError):
        _MEMO[fn] = digest
    return digest


class _Encoder:
    """One traversal from a root function; ``_seen`` breaks reference cycles (mutual
    recursion, a class whose method names the class)."""

    def __init__(self, root: Callable[..., Any]) -> None:
        module = getattr(root, "__module__", None) or ""
        self._package = module.partition(".")[0]
        self._root_dir = _package_dir(self._package)
        self._seen: set[int] = set()

    def encode(self, value: Any, depth: int = 0) -> str:
        try:
            return self._encode(value, depth)
        except Exception:  # a __repr__, __getattr__ or property that raises: its type
            return f"object:{_qualname(type(value))}"

    def _encode(self, value: Any, depth: int) -> str:
        if depth > _MAX_DEPTH:
            return "<deep>"
        if value is None or isinstance(value, bool | int | float | complex | str):
            return f"{type(value).__name__}:{value!r}"
        if isinstance(value, bytes | bytearray):
            return f"bytes:{hashlib.sha256(value).hexdigest()}"
        if isinstance(value, enum.Enum):
            return f"enum:{_qualname(type(value))}.{value.name}"
        if isinstance(value, types.CodeType):
            return self._code(value, depth)
        if isinstance(value, types.ModuleType):
            return self._module(value)
        if isinstance(value, types.FunctionType):
            return self.function(value, depth) if self._is_users(value) else _named(value)
        if isinstance(value, types.MethodType):
            bound = (value.__func__, value.__self__)
            return "method:" + "@".join(self.encode(p, depth + 1) for p in bound)
        if isinstance(value, staticmethod | classmethod):
            return f"{type(value).__name__}:{self.encode(value.__func__, depth + 1)}"
        if isinstance(value, property):
            accessors = (value.fget, value.fset, value.fdel)
            return "property:" + ",".join(self.encode(p, depth + 1) for p in accessors)
        if isinstance(value, functools.partial):
            parts = (value.func, value.args, value.keywords)
            return "partial:" + ",".join(self.encode(p, depth + 1) for p in parts)
        if typing.get_origin(value) is not None:  # list[int], Annotated[...], X | None
            args = ",".join(self.encode(a, depth + 1) for a in typing.get_args(value))
            return f"generic:{self.encode(typing.get_origin(value), depth + 1)}[{args}]"
        if isinstance(value, type):
            return self._class(value, depth)
        if isinstance(value, types.BuiltinFunctionType | types.BuiltinMethodType):
            return f"builtin:{_qualname(value)}"
        return self._container(value, depth)

    # ---------------------------------------------------------------- code

    def function(self, fn: types.FunctionType, depth: int = 0) -> str:
        name = _qualname(fn)
        if id(fn) in self._seen:
            return f"function:{name}:<recursive>"
        self._seen.add(id(fn))
        try:
            parts = [
                f"function:{name}",
                self._code(fn.__code__, depth + 1),
                self.encode(fn.__defaults__, depth + 1),
                self.encode(fn.__kwdefaults__, depth + 1),
                self._closure(fn, depth + 1),
                self._globals(fn, depth + 1),
                self._annotations(fn, depth + 1),
            ]
        finally:
            self._seen.discard(id(fn))
        return "(" + "|".join(parts) + ")"

    def _code(self, code: types.CodeType, depth: int) -> str:
        consts = ",".join(self.encode(c, depth + 1) for c in code.co_consts)
        layout = (
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
        )
        return f"code:{code.co_name}:{code.co_code.hex()}:{layout!r}:[{consts}]"

    def _closure(self, fn: types.FunctionType, depth: int) -> str:
        cells = fn.__closure__ or ()
        out = []
        for name, cell in zip(fn.__code__.co_freevars, cells, strict=False):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell: a name assigned after the def
                out.append(f"{name}=<empty>")
                continue
            out.append(f"{name}={self.encode(content, depth)}")
        return "closure:{" + ",".join(out) + "}"

    def _globals(self, fn: types.FunctionType, depth: int) -> str:
        names = fn.__globals__
        builtins = names.get("__builtins__", {})
        builtins = vars(builtins) if isinstance(builtins, types.ModuleType) else builtins
        out = []
        for path in sorted(set(_global_reads(fn.__code__))):
            head, *attrs = path
            if head in names:
                value: Any = names[head]
            elif head in builtins:
                out.append(f"{head}=<builtin>")
                continue
            else:
                out.append(f"{head}=<undefined>")
                continue
            # ``helpers.rate``: the attribute read, not the whole module, is the input.
            for attr in attrs:
                if not isinstance(value, types.ModuleType):
                    break
                value = getattr(value, attr, None)
            out.append(f"{'.'.join(path)}={self.encode(value, depth)}")
        return "globals:{" + ",".join(out) + "}"

    def _annotations(self, fn: types.FunctionType, depth: int) -> str:
        hints = resolve_hints(fn)
        items = (f"{k}={self.encode(hints[k], depth)}" for k in sorted(hints))
        return "hints:{" + ",".join(items) + "}"

    # ---------------------------------------------------------------- objects

    def _class(self, cls: type, depth: int) -> str:
        name = _qualname(cls)
        if not self._is_users(cls):
            return _named(cls)
        if id(cls) in self._seen:
            return f"class:{name}:<recursive>"
        self._seen.add(id(cls))
        try:
            bases = ",".join(self.encode(b, depth + 1) for b in cls.__bases__)
            members = []
            for attr in sorted(vars(cls)):
                raw = vars(cls)[attr]
                if attr == "__pydantic_decorators__":
                    raw = _validators(raw)
                elif _generated(attr, raw):
                    continue
                members.append(f"{attr}={self.encode(raw, depth + 1)}")
        finally:
            self._seen.discard(id(cls))
        return f"class:{name}({bases}){{{','.join(members)}}}"

    def _module(self, module: types.ModuleType) -> str:
        name = f"module:{module.__name__}"
        if not self._is_users(module):
            version = getattr(module, "__version__", None)
            return f"{name}@{version}" if isinstance(version, str) else name
        # A user module passed around whole (not read as module.attr): its source.
        file = getattr(module, "__file__", None)
        try:
            return f"{name}:{hashlib.sha256(Path(str(file)).read_bytes()).hexdigest()}"
        except OSError:
            return name

    def _container(self, value: Any, depth: int) -> str:
        if isinstance(value, list | tuple | set | frozenset | dict) or _is_data(value):
            if id(value) in self._seen:
                return "<cycle>"
            self._seen.add(id(value))
            try:
                return self._contents(value, depth)
            finally:
                self._seen.discard(id(value))
        return self._opaque(value, depth)

    def _contents(self, value: Any, depth: int) -> str:
        kind = _qualname(type(value))
        if isinstance(value, list | tuple):
            return f"{kind}[{','.join(self.encode(v, depth + 1) for v in value)}]"
        if isinstance(value, set | frozenset):
            return f"{kind}{{{','.join(sorted(self.encode(v, depth + 1) for v in value))}}}"
        if isinstance(value, dict):
            items = sorted(
                f"{self.encode(k, depth + 1)}:{self.encode(v, depth + 1)}" for k, v in value.items()
            )
            return f"{kind}{{{','.join(items)}}}"
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        return f"{self.encode(type(value), depth + 1)}{self._contents(fields, depth)}"

    def _opaque(self, value: Any, depth: int) -> str:
        """An object of no known shape: a user class's instance by its class and
        attributes, anything else by a ``repr`` that shows no memory address."""
        cls = type(value)
        if self._is_users(cls) and hasattr(value, "__dict__"):
            return f"object:{self.encode(cls, depth + 1)}{self._container(vars(value), depth)}"
        try:
            text = repr(value)
        except Exception:
            return f"object:{_qualname(cls)}"
        if _ADDRESS.search(text):
            return f"object:{_qualname(cls)}"
        return f"object:{_qualname(cls)}:{text}"

    def _is_users(self, obj: Any) -> bool:
        """Defined in the user's own code (see the module docstring): followed into."""
        if isinstance(obj, types.ModuleType):
            module_name: Any = obj.__name__
        else:
            module_name = getattr(obj, "__module__", None)
        if not isinstance(module_name, str):
            return False
        file = getattr(sys.modules.get(module_name), "__file__", None)
        if file is not None and is_library_file(file):
            return False
        if self._package and module_name.partition(".")[0] == self._package:
            return True
        if file is None or self._root_dir is None:
            return False
        return Path(file).resolve().is_relative_to(self._root_dir)


def _global_reads(code: types.CodeType) -> Iterator[tuple[str, ...]]:
    """The module-level names ``code`` (and the code nested in it) reads, each with the
    attribute chain read from it: ``("helpers", "rate")`` for ``helpers.rate``."""
    ops = list(dis.get_instructions(code))
    for i, ins in enumerate(ops):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            path = [str(ins.argval)]
            for nxt in ops[i + 1 :]:
                if nxt.opname not in ("LOAD_ATTR", "LOAD_METHOD"):
                    break
                path.append(str(nxt.argval))
            yield tuple(path)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_reads(const)


def _package_dir(package: str) -> Path | None:
    top = sys.modules.get(package)
    paths = getattr(top, "__path__", None)
    if paths:  # a package, a namespace package too
        return Path(next(iter(paths))).resolve()
    file = getattr(top, "__file__", None)
    return Path(file).resolve().parent if file else None


def _generated(attr: str, value: Any) -> bool:
    """Class attributes that are bookkeeping, not behaviour: ``__module__``, pydantic's
    generated validators and schemas, a dunder that is not code (``__dict__``) --
    ``__annotations__`` (the fields) and dunder methods (``__init__``) count."""
    if attr == "__pydantic_fields__":  # the fields' defaults live only there
        return False
    if attr in _CLASS_SKIP or attr.startswith("__pydantic"):
        return True
    if not attr.startswith("__") or attr == "__annotations__":
        return False
    return not isinstance(value, types.FunctionType | staticmethod | classmethod | property)


def _validators(infos: Any) -> dict[str, Any]:
    """A pydantic model's validators and serializers: each one's function and settings
    (not the whole record, whose ``cls_ref`` holds an ``id()``)."""
    out: dict[str, Any] = {}
    for kind in dataclasses.fields(infos) if dataclasses.is_dataclass(infos) else ():
        for name, dec in getattr(infos, kind.name).items():
            out[f"{kind.name}.{name}"] = (getattr(dec, "func", None), getattr(dec, "info", None))
    return out


def _named(obj: Any) -> str:
    """Library code: by name (its behaviour is the installed version's)."""
    kind = "class" if isinstance(obj, type) else "function"
    return f"{kind}:{_qualname(obj)}"


def _is_data(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


__all__ = ["code_fingerprint"]

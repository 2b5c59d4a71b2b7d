"""Workflow variables (``Assign``): scopes, the current scope, and the size limits.

The top-level states of an execution share one scope; each Parallel branch and Map
iteration runs in a scope of its own whose lookups fall through to the enclosing
scopes (a distributed Map's iterations start from an empty scope, as on AWS, where
they are child executions). An inner scope never writes to an outer one: an
assignment inside a branch creates or updates the branch's own variable.

The scope a thread evaluates against is held in a context variable that
:meth:`Machine.run` sets for the frame it runs, so JSONPath ``$name`` references
(see :func:`stepdag.asl.paths.compile_path`) resolve without every evaluator taking
one more argument. A branch run inline in its parent's thread resets it on return.
"""

from __future__ import annotations

import contextvars
import re
from typing import Any, Final

from stepdag.asl.errors import DATA_LIMIT_EXCEEDED, StatesError, to_json

# AWS: up to 256 KiB of assigned data per state, 10 MiB of variables per execution.
MAX_ASSIGN_BYTES: Final = 256 * 1024
MAX_TOTAL_BYTES: Final = 10 * 1024 * 1024
MAX_NAME_LENGTH: Final = 80
NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED: Final = frozenset({"states"})

_MISSING: Final = object()


class Scope:
    """The variables one frame (top level, branch, iteration) can see and assign."""

    __slots__ = ("_snapshot", "bytes", "parent", "values")

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.bytes: dict[str, int] = {}
        self._snapshot: dict[str, Any] | None = None

    def lookup(self, name: str) -> Any:
        """The value, or the module's ``_MISSING`` sentinel (see :func:`is_missing`)."""
        scope: Scope | None = self
        while scope is not None:
            value = scope.values.get(name, _MISSING)
            if value is not _MISSING:
                return value
            scope = scope.parent
        return _MISSING

    def snapshot(self) -> dict[str, Any]:
        """Every visible variable, inner names shadowing outer ones (cached until assign)."""
        if self._snapshot is None:
            merged = {} if self.parent is None else dict(self.parent.snapshot())
            merged.update(self.values)
            self._snapshot = merged
        return self._snapshot

    def assign(self, state_name: str, values: dict[str, Any]) -> None:
        """Store one state's ``Assign`` results, enforcing AWS's size quotas."""
        if not values:
            return
        sizes = {name: len(to_json(value).encode("utf-8")) for name, value in values.items()}
        if sum(sizes.values()) > MAX_ASSIGN_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{state_name}' assigned variables whose size exceeds the "
                "maximum number of bytes service limit.",
            )
        total = sum(self.bytes.values()) - sum(self.bytes.get(n, 0) for n in sizes)
        if total + sum(sizes.values()) > MAX_TOTAL_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{state_name}' assigned variables whose total size exceeds "
                "the maximum number of bytes service limit.",
            )
        self.values.update(values)
        self.bytes.update(sizes)
        self._snapshot = None

    def child(self, *, isolated: bool = False) -> Scope:
        return Scope(None if isolated else self)


def is_missing(value: Any) -> bool:
    return value is _MISSING


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "stepdag_asl_scope", default=None
)


def enter(scope: Scope) -> contextvars.Token[Scope | None]:
    return _current.set(scope)


def leave(token: contextvars.Token[Scope | None]) -> None:
    _current.reset(token)


def current() -> Scope | None:
    return _current.get()


def lookup(name: str) -> Any:
    """The current scope's value for ``name`` (``_MISSING`` when unset)."""
    scope = _current.get()
    return _MISSING if scope is None else scope.lookup(name)


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a variable name, or None."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return (
            f"'{name}' is not a valid variable name (letters, digits and underscores, "
            "not starting with a digit)"
        )
    if len(name) > MAX_NAME_LENGTH:
        return f"variable name '{name}' exceeds {MAX_NAME_LENGTH} characters"
    if name in RESERVED:
        return f"'{name}' is a reserved variable name"
    return None


__all__ = [
    "MAX_ASSIGN_BYTES",
    "MAX_TOTAL_BYTES",
    "Scope",
    "current",
    "enter",
    "is_missing",
    "leave",
    "lookup",
    "name_problem",
]

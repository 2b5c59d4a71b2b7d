"""The exceptions ``stepdag`` exports are ones it raises: a public error type that nothing
raises (``NodeFailed`` was one) only misleads the callers who try to catch it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import stepdag
from stepdag.core import errors

PACKAGE = Path(stepdag.__file__).parent


def raised_names() -> set[str]:
    """Every name in a ``raise X`` / ``raise X(...)`` in the package's source."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name | ast.Attribute):
                    names.add(target.id if isinstance(target, ast.Name) else target.attr)
    return names


def test_every_exported_exception_is_raised_by_stepdag() -> None:
    exported = [getattr(stepdag, name) for name in stepdag.__all__]
    exceptions = [e for e in exported if inspect.isclass(e) and issubclass(e, Exception)]
    assert exceptions, "stepdag exports exception types"
    raised = raised_names()
    # A subclass raised counts (StepdagError is raised as its subclasses).
    defined = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)
    ] + exceptions  # and the ones defined elsewhere (stepdag.client.RunTimeout)
    never = [
        e.__name__
        for e in exceptions
        if not any(issubclass(c, e) and c.__name__ in raised for c in defined)
    ]
    assert never == [], f"exported but never raised: {never}"
    assert not hasattr(errors, "NodeFailed") and "NodeFailed" not in stepdag.__all__

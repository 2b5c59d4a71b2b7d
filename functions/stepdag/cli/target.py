"""Where a command goes: the target options, declared once, and the client for them.

:func:`target_options` gives a command ``--remote``/``--token``/``--region``/``--stack``
(see ``cli/remote.py`` for what each target is); the command itself takes one
``target: Target`` parameter.  :func:`client_for` connects to it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from stepdag.cli.client import Client
from stepdag.cli.remote import Target, connect

R = TypeVar("R")

RemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--remote",
        envvar="STEPDAG_REMOTE",
        help="an API URL (https://…/v1, http://127.0.0.1:8000) or 'aws' (boto3: DynamoDB, "
        "Step Functions, CloudWatch Logs); default: the local store",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        envvar="STEPDAG_TOKEN",
        help="Cognito ID token for a Cognito-authorized API (sent as the Authorization header)",
    ),
]
RegionOpt = Annotated[
    str | None,
    # No envvar= on purpose: an exported AWS_REGION must not read as "--region given",
    # which SigV4-signs any API URL (see connect); the SDK calls still default from it.
    typer.Option(
        help="AWS region for --remote aws (default: AWS_REGION, AWS_DEFAULT_REGION); "
        "given, it also SigV4-signs an API URL that is not an execute-api host "
        "(a custom domain of an IAM-authorized API)",
    ),
]
StackOpt = Annotated[
    str | None,
    typer.Option(envvar="STEPDAG_STACK", help="read the aws target's names from this stack"),
]
WorkflowsOpt = Annotated[
    list[str] | None,
    typer.Option("--workflow", help="workflow reference(s) to load (default: statemachines/)"),
]

# In Target's field order: the command line's four options become one Target.
_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("remote", RemoteOpt),
    ("token", TokenOpt),
    ("region", RegionOpt),
    ("stack", StackOpt),
)


def target_options(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn(..., target: Target)`` as a command with the four target options instead of
    ``target`` (last, keyword-only, in the order the help shows them)."""
    sig = inspect.signature(fn, eval_str=True)
    if "target" not in sig.parameters:
        raise TypeError(f"{fn.__name__} has no 'target' parameter")
    params = [p for p in sig.parameters.values() if p.name != "target"]
    params += [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
        for name, hint in _OPTIONS
    ]

    @functools.wraps(fn)
    def with_target(*args: Any, **kwargs: Any) -> R:
        target = Target(*(kwargs.pop(name, None) for name, _ in _OPTIONS))
        return fn(*args, target=target, **kwargs)

    # Typer reads the command's parameters from these two (evaluated: no string hints).
    with_target.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    with_target.__annotations__ = {p.name: p.annotation for p in params}
    return with_target


def home() -> Path:
    """The local target's folder (its SQLite store and captured logs)."""
    return Path(os.environ.get("STEPDAG_HOME", ".stepdag"))


def client_for(target: Target, workflows: Sequence[Any] | None = None) -> Client:
    """The client for ``target``; ``workflows``: its references, already loaded."""
    return connect(target, home(), workflows)


__all__ = [
    "RegionOpt",
    "RemoteOpt",
    "StackOpt",
    "TokenOpt",
    "WorkflowsOpt",
    "client_for",
    "home",
    "target_options",
]

"""The target options are declared once (``cli/target.py``) and given to every command
that talks to a target, identically."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from stepdag.cli.main import app
from stepdag.cli.remote import Target
from stepdag.cli.target import target_options

TARGET_OPTIONS = ("remote", "token", "region", "stack")
TARGETED = {
    "run",
    "redrive",
    "cancel",
    "rerun",
    "logs",
    "replay",
    "executions list",
    "executions show",
    "executions output",
}


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf command of the click tree Typer builds, by its full name."""
    found: dict[str, Any] = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            found.update(_commands(cmd, f"{prefix}{name} "))
        else:
            found[prefix + name] = cmd
    return found


def test_every_targeted_command_has_the_same_four_options_last() -> None:
    commands = _commands(typer.main.get_command(app))
    targeted = {n for n, c in commands.items() if any(p.name == "remote" for p in c.params)}
    assert targeted == TARGETED
    shapes = set()
    for name in sorted(targeted):
        params = commands[name].params
        last = params[-len(TARGET_OPTIONS) :]
        assert tuple(p.name for p in last) == TARGET_OPTIONS, name
        shapes.add(tuple((p.opts[0], p.envvar, getattr(p, "help", None)) for p in last))
    assert len(shapes) == 1  # one declaration


def test_the_options_become_one_target() -> None:
    seen: list[Target] = []

    @target_options
    def command(execution: str, *, target: Target) -> None:
        seen.append(target)

    command("x", remote="aws", token=None, region="eu-west-1", stack="s")
    command("y")  # called from Python (resume -> redrive): the local target
    assert seen == [Target("aws", None, "eu-west-1", "s"), Target()]
    with pytest.raises(TypeError, match="has no 'target' parameter"):
        target_options(lambda execution: None)

"""The ``stepdag`` Typer app, its two consoles, and THE mapping of errors to exit codes.

Command modules define plain functions; ``cli/main.py`` registers each of them here with
:func:`command`, which wraps it in :func:`friendly`: the one place an exception becomes
an exit status.  This module imports no other ``stepdag.cli`` module (it is the bottom of
the CLI's import graph).

Exit codes (docs/cli.md):

* 0 success; 1 the run (a replayed node, a ``--check``) ran and did not succeed;
* 2 the caller's to fix: bad input, an unknown workflow or execution, a conflict, an
  invalid definition, a remote's 4xx answer, a target that is not configured or answers
  nothing at its address -- every ``StepdagError`` whose ``http_status`` is below 500;
* 3 the other side failed: a remote's 5xx answer or time-out, a throttled or unavailable
  store, an AWS service error -- every ``StepdagError`` whose ``http_status`` is 500 or
  more (retrying later may succeed);
* 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from stepdag.core.errors import StepdagError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended

# emoji=False: rich would render ``:x:`` (or ``:rocket:``) inside an ARN or a name as an
# emoji -- user text is printed as it is.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

app = typer.Typer(
    name="stepdag",
    help="Typed Python DAGs compiled to AWS Step Functions, runnable locally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def exit_code(exc: StepdagError) -> int:
    """The exit status for a stepdag error, from the hierarchy's own classification
    (``http_status``, the same attribute the REST API answers with): below 500 the
    request was wrong, from 500 on the service behind it failed."""
    return EXIT_INVALID if exc.http_status < 500 else EXIT_UNAVAILABLE


class Interrupted(typer.Exit):
    """Ctrl-C: exit 130 at once, without waiting for anything."""

    def __init__(self) -> None:
        super().__init__(EXIT_INTERRUPTED)


def friendly(fn: F) -> F:
    """Print stepdag errors as one plain message (no traceback) and exit with
    :func:`exit_code`; Ctrl-C exits 130 (click would say ``Aborted!`` and exit 1)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StepdagError as exc:
            # escape(): messages contain [check-names] that rich would read as markup
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(exit_code(exc)) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise Interrupted() from None

    return wrapper  # type: ignore[return-value]


def command(group: typer.Typer, fn: Callable[..., Any], name: str | None = None) -> None:
    """Register ``fn`` as a command of ``group``, behind :func:`friendly`."""
    group.command(name)(friendly(fn))


def group(parent: typer.Typer, name: str, help: str) -> typer.Typer:
    """A command group (``stepdag executions …``) added to ``parent``."""
    sub = typer.Typer(help=help, no_args_is_help=True)
    parent.add_typer(sub, name=name)
    return sub


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_UNAVAILABLE",
    "Interrupted",
    "app",
    "command",
    "err",
    "exit_code",
    "friendly",
    "group",
    "out",
]

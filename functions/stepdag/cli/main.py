"""The ``stepdag`` command line: every command, registered here explicitly.

The commands live in their modules as plain functions (``cli/workflows.py``,
``runs.py``, ``executions.py``, ``logs.py``, ``replay.py``, ``serve.py``, ``trigger.py``,
``asl_run.py``); :func:`~stepdag.cli.app.command` registers each on the app behind the
one error-to-exit-code mapping (``cli/app.py``).  The order below is the order of
``stepdag --help``.
"""

from __future__ import annotations

from stepdag.cli import (
    asl_run,
    executions,
    logs,
    replay,
    runs,
    serve,
    trigger,
    workflows,
)
from stepdag.cli.app import app, command, group

command(app, workflows.validate)
command(app, workflows.compile_cmd, "compile")
command(app, workflows.graph)

command(app, runs.run)
command(app, runs.redrive)
command(app, runs.resume)
command(app, runs.cancel)
command(app, runs.rerun)
command(app, logs.logs)
command(app, replay.replay)
command(app, serve.serve)
command(app, trigger.trigger)

executions_group = group(app, "executions", "Inspect executions.")
command(executions_group, executions.list_executions, "list")
command(executions_group, executions.show_execution, "show")
command(executions_group, executions.execution_output, "output")

asl_group = group(app, "asl", "Run any ASL definition on the local interpreter.")
command(asl_group, asl_run.asl_run, "run")

console_group = group(app, "console", "The web console as static files.")
command(console_group, serve.console_export, "export")


def main() -> None:
    app()


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]

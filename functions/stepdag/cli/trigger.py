"""``stepdag trigger``: deliver an EventBridge event to a workflow's event triggers locally.

Every ``wf.on_event`` trigger whose pattern matches starts one run on the local engine,
named after the event's ``id`` (plus ``-<trigger>`` when the workflow declares several
event triggers), so a redelivered event finds its execution instead of starting another:
EventBridge delivers at least once, and this is how a run stays once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from stepdag.cli.main import EXIT_FAILED, WorkflowArg, app, friendly, out
from stepdag.core.errors import InputValidationError

#: Step Functions execution names: at most 80 characters of letters, digits, '-' and '_'.
EXECUTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def execution_name(event_id: str, trigger: str, event_triggers: int) -> str:
    """The execution name for one (event, trigger) pair; deterministic, so idempotent."""
    name = event_id if event_triggers == 1 else f"{event_id}-{trigger}"
    if not EXECUTION_NAME_RE.match(name):
        raise InputValidationError(
            f"execution name {name!r} (from the event id) must be 1-80 letters, digits, '-' or '_'"
        )
    return name


@app.command()
@friendly
def trigger(
    workflow: WorkflowArg,
    event: Annotated[str, typer.Option("--event", "-e", help="EventBridge event: JSON or @file")],
) -> None:
    """Match an event against the workflow's event triggers; start one run per match.

    The event id names the execution: delivering the same event again reports the
    existing execution (exit 0). Exit 1 when no trigger matched or a started run failed.
    """
    from stepdag.cli.runs import _engine, parse_json_arg
    from stepdag.core.loader import load_workflow
    from stepdag.core.triggers import EventTrigger
    from stepdag.runtime.store import DuplicateExecution

    loaded = load_workflow(workflow).workflow
    body: Any = parse_json_arg(event, "--event")
    if not isinstance(body, dict):
        raise InputValidationError("--event must be a JSON object (an EventBridge event)")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InputValidationError(
            "--event has no 'id': EventBridge events carry one, and it names the execution"
        )
    engine = _engine([])
    dag = engine.register(loaded)
    triggers = [t for t in loaded.triggers if isinstance(t, EventTrigger)]
    matched = [t for t in triggers if t.matches(body)]
    for t in triggers:
        out.print(f"{'matched' if t in matched else 'no match'}: trigger {t.name!r}")
    if not matched:
        out.print(f"no event trigger of {dag.workflow!r} matched event {event_id!r}")
        raise typer.Exit(EXIT_FAILED)
    failed = False
    for t in matched:
        name = execution_name(event_id, t.name, len(triggers))
        try:
            rec = engine.create(dag, t.render(body), name=name)
        except DuplicateExecution as dup:
            existing = dup.existing
            out.print(
                f"event {event_id!r} already delivered: execution {existing.name} "
                f"({existing.status.value}); not started again"
            )
            continue
        out.print(f"execution {rec.name} ({dag.workflow}) started by trigger {t.name!r}")
        final = engine.execute(rec)
        out.print(f"execution {final.name}: {final.status.value}")
        failed = failed or final.status.value != "SUCCEEDED"
    if failed:
        raise typer.Exit(EXIT_FAILED)


__all__ = ["execution_name", "trigger"]

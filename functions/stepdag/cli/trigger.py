"""``stepdag trigger``: deliver an EventBridge event to a workflow's event triggers locally.

Every ``wf.on_event`` trigger whose pattern matches starts one run through the local
execution service (the one ``stepdag run`` and ``stepdag serve`` use), named after the
event's ``id`` (plus ``-<trigger>`` when the workflow declares several event triggers),
so a redelivered event finds its execution instead of starting another: EventBridge
delivers at least once, and this is how a run stays once.  The service's start rule
applies, as behind the deployed API's event route: the same name with another input is
a conflict (exit 2), not a redelivery.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stepdag.cli.app import EXIT_FAILED, out
from stepdag.cli.args import WorkflowArg, parse_json_arg
from stepdag.cli.remote import Target, load_workflows
from stepdag.cli.session import session, watch
from stepdag.cli.target import client_for
from stepdag.core.errors import InputValidationError
from stepdag.core.inputs import InvalidExecutionName, check_execution_name
from stepdag.core.status import RunStatus
from stepdag.core.triggers import EventTrigger


def execution_name(event_id: str, trigger: str, event_triggers: int) -> str:
    """The execution name for one (event, trigger) pair; deterministic, so idempotent."""
    name = event_id if event_triggers == 1 else f"{event_id}-{trigger}"
    try:
        check_execution_name(name)
    except InvalidExecutionName as exc:
        raise InvalidExecutionName(f"{exc} (the name comes from the event id)") from None
    return name


def trigger(
    workflow: WorkflowArg,
    event: Annotated[str, typer.Option("--event", "-e", help="EventBridge event: JSON or @file")],
) -> None:
    """Match an event against the workflow's event triggers; start one run per match.

    The event id names the execution: delivering the same event again reports the
    existing execution (exit 0). Exit 1 when no trigger matched or a started run failed.
    """
    [loaded] = load_workflows([workflow])
    body: Any = parse_json_arg(event, "--event")
    if not isinstance(body, dict):
        raise InputValidationError("--event must be a JSON object (an EventBridge event)")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InputValidationError(
            "--event has no 'id': EventBridge events carry one, and it names the execution"
        )
    triggers = [t for t in loaded.triggers if isinstance(t, EventTrigger)]
    matched = [t for t in triggers if t.matches(body)]
    for t in triggers:
        out.print(f"{'matched' if t in matched else 'no match'}: trigger {t.name!r}")
    if not matched:
        out.print(f"no event trigger of {loaded.name!r} matched event {event_id!r}")
        raise typer.Exit(EXIT_FAILED)
    failed = False
    with session(client_for(Target(workflows=(workflow,)), [loaded])) as client:
        for t in matched:
            name = execution_name(event_id, t.name, len(triggers))
            params = t.render(body)
            rec, created = client.start(loaded.name, params, name=name, idempotency_key=None)
            if not created:
                out.print(
                    f"event {event_id!r} already delivered: execution {rec.name} "
                    f"({rec.status.value}); not started again"
                )
                continue
            out.print(f"execution {rec.name} ({rec.workflow}) started by trigger {t.name!r}")
            final, _ = watch(client, rec.execution_id, in_process=True)
            out.print(f"execution {final.name}: {final.status.value}")
            failed = failed or final.status is not RunStatus.SUCCEEDED
    if failed:
        raise typer.Exit(EXIT_FAILED)


__all__ = ["execution_name", "trigger"]

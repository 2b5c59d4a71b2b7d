"""``WorkflowTriggers``: a workflow's entry points, each starting runs on its ``live`` alias.

* ``wf.on_event`` -> an EventBridge rule on the default bus with the pattern as written.
  A dict input template becomes the rule target's InputTransformer
  (``stepdag.core.triggers.input_transformer``: the same document ``stepdag trigger``
  renders locally). Callable mappings run locally only and are refused here.
* ``wf.on_schedule`` -> an EventBridge Scheduler schedule (with its time zone) whose role
  may only ``states:StartExecution`` on the alias.

Execution names. With the REST API on IAM auth (``stepdag:api=true``, no user pool) a
rule targets ``POST /v1/hooks/<workflow>/events`` (``infra/constructs/hooks.py``), whose
template calls StartExecution with the envelope's ``key`` as the execution name. The
rule's transformer (``keyed_input_transformer``) renders ``{"key": <event id>, "input":
<the params>}``, the key being the event id (``<id>-<trigger>`` when the workflow has
several event triggers, as ``stepdag trigger`` names it), so a redelivered event (EventBridge
delivers at least once) finds the run it started instead of starting a second (Standard
workflows). The rule's events role may only ``execute-api:Invoke`` that one route.

Nothing is dropped silently: every rule target and schedule target retries
(``TRIGGER_RETRY_ATTEMPTS``, at most ``TRIGGER_MAX_EVENT_AGE``) and then sends the event to
the workflow's one SSE-encrypted SQS dead-letter queue (``dead_letters``), whose depth the
stack alarms on (``DeadLetters`` in docs/runbooks.md).

Without that route (no API, or the Cognito authorizer, which gets no hook routes) the
rule targets the alias directly; an EventBridge Step Functions target cannot set the
execution name, so there a redelivered event can start a second execution. Schedules
always target the alias: a Scheduler target cannot set the name either, and a schedule
fires once per time, so the remaining gap is Scheduler's own at-least-once retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
from infra.constructs.hooks import EVENT_KEY_FIELD, EventRoute
from infra.nag import acknowledge
from stepdag.core.triggers import EventTrigger, ScheduleTrigger, Trigger, input_transformer

# Top-level event pattern keys the L2 EventPattern names (others are set as overrides).
_PATTERN_FIELDS: dict[str, str] = {
    "version": "version",
    "id": "id",
    "detail-type": "detail_type",
    "source": "source",
    "account": "account",
    "time": "time",
    "region": "region",
    "resources": "resources",
    "detail": "detail",
}


def trigger_construct_id(name: str) -> str:
    """``orders-exported`` -> ``OrdersExported``."""
    parts = name.replace("-", "_").split("_")
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


EVENT_ID_PATH = "$.id"
DEAD_LETTERS_ID = "DeadLetters"
TRIGGER_DEAD_LETTER_ACTIONS: tuple[str, ...] = ("sqs:SendMessage",)
# How long EventBridge and Scheduler keep retrying one delivery before dead-lettering it.
TRIGGER_MAX_EVENT_AGE = Duration.hours(24)
DEAD_LETTER_RETENTION = Duration.days(14)  # SQS's maximum: time to replay after an incident


def keyed_input_transformer(
    template: Mapping[str, Any] | None, *, suffix: str | None = None
) -> dict[str, Any]:
    """The InputTransformer of a rule that targets the events route: the envelope.

    ``{"key": <id>, "input": <params>}``: the params part is ``input_transformer(template)``
    (the whole event, ``<aws.events.event.json>``, when ``template`` is None); ``<id>`` is
    ``$.id``, followed by ``-<suffix>`` when given.
    """
    if template is None:
        params: dict[str, Any] = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}
    else:
        params = input_transformer(template)
    paths: dict[str, str] = dict(params["InputPathsMap"])
    var, n = "id", 1
    while paths.get(var, EVENT_ID_PATH) != EVENT_ID_PATH:  # "id" taken by another path
        n += 1
        var = f"id_{n}"
    paths[var] = EVENT_ID_PATH
    key = f'"<{var}>-{suffix}"' if suffix else f"<{var}>"
    return {
        "InputPathsMap": paths,
        "InputTemplate": f'{{"{EVENT_KEY_FIELD}":{key},"input":{params["InputTemplate"]}}}',
    }


class WorkflowTriggers(Construct):
    """Rules and schedules for one workflow; ``rules``/``schedules`` keyed by trigger name."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow: str,
        triggers: Sequence[Trigger],
        alias_arn: str,
        event_route: EventRoute | None = None,
        retain_data: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.workflow = workflow
        self.alias_arn = alias_arn
        self.event_route = event_route
        self.events_role: iam.Role | None = None
        self.rules: dict[str, events.Rule] = {}
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        self.scheduler_role: iam.Role | None = None
        # One queue for the workflow's rules and schedules: one alarm, one place to replay.
        self.dead_letters = sqs.Queue(
            self,
            DEAD_LETTERS_ID,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
            removal_policy=RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue IS the dead-letter queue of the workflow's rule and schedule "
            "targets; a DLQ of a DLQ would only move the problem.",
        )
        event_triggers = [t for t in triggers if isinstance(t, EventTrigger)]
        if event_triggers:
            target = self._target(len(event_triggers))
            for t in event_triggers:
                suffix = t.name if len(event_triggers) > 1 else None
                self.rules[t.name] = self._rule(t, target, suffix)
        for s in triggers:
            if isinstance(s, ScheduleTrigger):
                self.schedules[s.name] = self._schedule(s)

    def _target(self, count: int) -> events.IRuleTarget:
        """The events route (IAM-signed by a role allowed to invoke it only), or the alias."""
        if self.event_route is None:
            # One IStateMachine for the alias: the SfnStateMachine target makes one
            # events role per machine, allowed states:StartExecution on the alias only.
            live = sfn.StateMachine.from_state_machine_arn(self, c.TRIGGER_ALIAS_ID, self.alias_arn)
            return targets.SfnStateMachine(
                live,
                retry_attempts=c.TRIGGER_RETRY_ATTEMPTS,
                max_event_age=TRIGGER_MAX_EVENT_AGE,
                dead_letter_queue=self.dead_letters,
            )
        route = self.event_route
        self.events_role = iam.Role(
            self,
            c.TRIGGER_EVENTS_ROLE_ID,
            description=f"stepdag {self.workflow}: event rules start runs through the events route",
            assumed_by=iam.ServicePrincipal(c.EVENTS_PRINCIPAL),
        )
        self.events_role.add_to_policy(
            iam.PolicyStatement(actions=list(c.TRIGGER_INVOKE_ACTIONS), resources=[route.arn])
        )
        # The target would also grant execute-api:ManageConnections (WebSocket APIs) on
        # the role it is given: hand it an immutable view, the grant above is the policy.
        return targets.ApiGateway(
            route.rest_api,
            path=route.path,
            method="POST",
            stage=route.stage,
            event_role=self.events_role.without_policy_updates(),
            retry_attempts=c.TRIGGER_RETRY_ATTEMPTS,
            max_event_age=TRIGGER_MAX_EVENT_AGE,
            dead_letter_queue=self.dead_letters,
        )

    def _rule(self, t: EventTrigger, target: events.IRuleTarget, suffix: str | None) -> events.Rule:
        if isinstance(t.input, Callable):  # type: ignore[arg-type]
            raise ValueError(
                f"workflow {self.workflow!r}, trigger {t.name!r}: a callable input mapping "
                "runs locally only; deploy with a dict template ({'param': '$.detail.x'})"
            )
        known = {_PATTERN_FIELDS[k]: v for k, v in t.pattern.items() if k in _PATTERN_FIELDS}
        rule = events.Rule(
            self,
            f"{trigger_construct_id(t.name)}{c.TRIGGER_RULE_SUFFIX}",
            description=f"stepdag {self.workflow}: event trigger {t.name}",
            event_pattern=events.EventPattern(**known),
            targets=[target],
        )
        cfn = rule.node.default_child
        assert isinstance(cfn, events.CfnRule)
        for key, value in t.pattern.items():
            if key not in _PATTERN_FIELDS:  # e.g. "$or" or a custom top-level field
                cfn.add_property_override(f"EventPattern.{key}", value)
        template: Mapping[str, Any] | None = t.input  # type: ignore[assignment]
        if self.event_route is not None:
            # The envelope; the rule's target names its path and stage, its body is this.
            keyed = keyed_input_transformer(template, suffix=suffix)
            cfn.add_property_override("Targets.0.InputTransformer", keyed)
        elif template is not None:
            cfn.add_property_override("Targets.0.InputTransformer", input_transformer(template))
        return rule

    def _schedule(self, s: ScheduleTrigger) -> scheduler.CfnSchedule:
        role = self._scheduler_role()
        return scheduler.CfnSchedule(
            self,
            f"{trigger_construct_id(s.name)}{c.TRIGGER_SCHEDULE_SUFFIX}",
            description=f"stepdag {self.workflow}: schedule {s.name}",
            schedule_expression=s.expression,
            schedule_expression_timezone=s.timezone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.alias_arn,
                role_arn=role.role_arn,
                input=json.dumps(s.payload, separators=(",", ":")),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=c.TRIGGER_RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=int(TRIGGER_MAX_EVENT_AGE.to_seconds()),
                ),
                # Scheduler sends there with the schedule's role (granted below).
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dead_letters.queue_arn
                ),
            ),
        )

    def _scheduler_role(self) -> iam.Role:
        if self.scheduler_role is None:
            self.scheduler_role = iam.Role(
                self,
                c.SCHEDULER_ROLE_ID,
                description=f"stepdag {self.workflow}: schedules start runs on the live alias",
                assumed_by=iam.ServicePrincipal(
                    c.SCHEDULER_PRINCIPAL,
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                ),
            )
            self.scheduler_role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(c.TRIGGER_START_ACTIONS), resources=[self.alias_arn]
                )
            )
            self.scheduler_role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(TRIGGER_DEAD_LETTER_ACTIONS),
                    resources=[self.dead_letters.queue_arn],
                )
            )
        return self.scheduler_role

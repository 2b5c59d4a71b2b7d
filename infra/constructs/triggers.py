"""``WorkflowTriggers``: a workflow's entry points, each starting runs on its ``live`` alias.

* ``wf.on_event`` -> an EventBridge rule on the default bus with the pattern as written,
  targeting the alias; a dict input template becomes the rule target's InputTransformer
  (``stepdag.core.triggers.input_transformer``: the same document ``stepdag trigger``
  renders locally). Callable mappings run locally only and are refused here.
* ``wf.on_schedule`` -> an EventBridge Scheduler schedule (with its time zone) whose role
  may only ``states:StartExecution`` on the alias.

Execution names: neither an EventBridge rule target nor a Scheduler target can set the
Step Functions execution name, so on AWS a redelivered event (both services deliver at
least once) starts a second execution. This is accepted for now; exactly-once starts
keyed on the event id are a follow-up through the API Lambda (its Idempotency-Key path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants as c
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.workflow = workflow
        self.alias_arn = alias_arn
        self.rules: dict[str, events.Rule] = {}
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        self.scheduler_role: iam.Role | None = None
        event_triggers = [t for t in triggers if isinstance(t, EventTrigger)]
        if event_triggers:
            # One IStateMachine for the alias: the SfnStateMachine target makes one
            # events role per machine, allowed states:StartExecution on the alias only.
            live = sfn.StateMachine.from_state_machine_arn(self, c.TRIGGER_ALIAS_ID, alias_arn)
            for t in event_triggers:
                self.rules[t.name] = self._rule(t, live)
        for s in triggers:
            if isinstance(s, ScheduleTrigger):
                self.schedules[s.name] = self._schedule(s)

    def _rule(self, t: EventTrigger, live: sfn.IStateMachine) -> events.Rule:
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
            targets=[targets.SfnStateMachine(live, retry_attempts=c.TRIGGER_RETRY_ATTEMPTS)],
        )
        cfn = rule.node.default_child
        assert isinstance(cfn, events.CfnRule)
        for key, value in t.pattern.items():
            if key not in _PATTERN_FIELDS:  # e.g. "$or" or a custom top-level field
                cfn.add_property_override(f"EventPattern.{key}", value)
        if t.input is not None:
            transformer: dict[str, Any] = input_transformer(t.input)  # type: ignore[arg-type]
            cfn.add_property_override("Targets.0.InputTransformer", transformer)
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
                    maximum_retry_attempts=c.TRIGGER_RETRY_ATTEMPTS
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
        return self.scheduler_role

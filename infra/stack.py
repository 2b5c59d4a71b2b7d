"""``StepdagStack``: storage, node runners, one ``StepdagWorkflow`` per workflow, alarms."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import constants as c
from infra.bundling import node_runner_code
from infra.constructs import alarms
from infra.constructs.api import StepdagApi, api_cors_origins, api_enabled
from infra.constructs.api_auth import api_auth
from infra.constructs.functions import NodeRunnerFunctions, function_id
from infra.constructs.observability import StepdagObservability, rollback_alarm_names
from infra.constructs.rollout import FunctionRollouts
from infra.constructs.status import StepdagStatusEvents
from infra.constructs.storage import StepdagStorage
from infra.constructs.triggers import WorkflowTriggers
from infra.constructs.workflow import StepdagWorkflow
from infra.settings import Settings
from infra.workflows import WorkflowSpec, function_configs
from stepdag import constants as contract
from stepdag.core.loader import load_workflow

ROLLOUTS_ID = "FunctionRollouts"


def workflow_construct_id(name: str) -> str:
    """``etl`` -> ``WorkflowEtl``; ``my_flow-2`` -> ``WorkflowMyFlow2``."""
    parts = name.replace("-", "_").split("_")
    return c.WORKFLOW_ID_PREFIX + "".join(p[:1].upper() + p[1:] for p in parts if p)


class StepdagStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflows: Sequence[WorkflowSpec],
        settings: Settings,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="stepdag: DAG workflows on Step Functions with a shared node runner",
            **kwargs,
        )
        self.settings = settings
        self.storage = StepdagStorage(
            self,
            c.STORAGE_ID,
            retain_data=settings.retain_data,
            output_retention_days=settings.output_retention_days,
        )
        workflows_dir = Path(settings.workflows_dir).resolve()
        self.node_runners = NodeRunnerFunctions(
            self,
            c.FUNCTIONS_ID,
            configs=function_configs(list(workflows)),
            code=node_runner_code(
                workflows_dir=workflows_dir, skip_bundling=settings.skip_bundling
            ),
            storage=self.storage,
            workflow_modules={spec.name: spec.ref for spec in workflows},
            log_level=settings.log_level,
            retain_data=settings.retain_data,
        )
        self.workflows: dict[str, StepdagWorkflow] = {}
        for spec in workflows:
            self.workflows[spec.name] = StepdagWorkflow(
                self,
                workflow_construct_id(spec.name),
                spec=spec,
                versions=self.node_runners.versions,
                state_machine_type=settings.state_machine_type,
                log_level=settings.state_machine_log_level,
                include_execution_data=settings.include_execution_data,
                deployment=settings.deployment,
                rollback_alarm_names=rollback_alarm_names(self.stack_name, spec.name),
                retain_logs=settings.retain_data,
            )
        self.observability = StepdagObservability(
            self,
            c.OBSERVABILITY_ID,
            workflows=list(self.workflows.values()),
            functions=self.node_runners.functions,
            alarm_email=settings.alarm_email,
        )
        self.observability.add_table(self.storage)
        # Final statuses into the table, from Step Functions' status-change events
        # (STANDARD only: EXPRESS executions emit none).
        self.status: StepdagStatusEvents | None = None
        if self.workflows and settings.state_machine_type == "STANDARD":
            self.status = StepdagStatusEvents(
                self,
                c.STATUS_ID,
                code=node_runner_code(
                    workflows_dir=workflows_dir, skip_bundling=settings.skip_bundling
                ),
                storage=self.storage,
                workflows=self.workflows,
                add_alarm=self.observability.add_alarm,
                log_level=settings.log_level,
                retain_data=settings.retain_data,
            )
            # Its errors also feed the StatusEvents alarm (with its dead-letter depth).
            self.observability.add_function(
                alarms.STATUS_FUNCTION_NAME, self.status.function, error_rate=False
            )
        for name, workflow in self.workflows.items():
            # The alias names its rollback alarms by string; make CloudFormation create
            # them first so a CANARY shift never watches an alarm that is not there yet.
            for alarm_name in rollback_alarm_names(self.stack_name, name):
                workflow.alias.node.add_dependency(self.observability.alarms[alarm_name])
        # The REST API (unless stepdag:api=false); the node runners' code asset (staged once).
        self.api: StepdagApi | None = None
        if api_enabled(self.node):
            self.api = StepdagApi(
                self,
                c.API_ID,
                code=node_runner_code(
                    workflows_dir=workflows_dir, skip_bundling=settings.skip_bundling
                ),
                storage=self.storage,
                workflows=self.workflows,
                log_level=settings.log_level,
                retain_data=settings.retain_data,
                auth=api_auth(self.node),
                cors_origins=api_cors_origins(self.node),
            )
            CfnOutput(self, c.OUTPUT_API_URL, value=self.api.rest_api.url)
            self.observability.add_api(self.api.rest_api)
            # Its handler answers every exception with a 500: an error is a crash.
            self.observability.add_function(
                alarms.API_FUNCTION_NAME, self.api.function, error_rate=False
            )
            if self.api.oidc is not None:  # a refused token is a 401 answer, not an error
                self.observability.add_function(
                    alarms.AUTHORIZER_FUNCTION_NAME, self.api.oidc.function, error_rate=False
                )
        self.rollouts = self._function_rollouts(settings)
        # Triggers after the API: with its hook routes, rules start runs through
        # POST /v1/hooks/<workflow>/events (the event id names the execution).
        hooks = self.api.hooks if self.api is not None else None
        self.triggers: dict[str, WorkflowTriggers] = {}
        for spec in workflows:
            declared = load_workflow(spec.ref).workflow.triggers
            if declared:
                self.triggers[spec.name] = WorkflowTriggers(
                    self,
                    workflow_construct_id(spec.name) + c.TRIGGERS_ID_SUFFIX,
                    workflow=spec.name,
                    triggers=declared,
                    alias_arn=self.workflows[spec.name].alias_arn,
                    event_route=hooks.event_routes.get(spec.name) if hooks else None,
                    retain_data=settings.retain_data,
                )
                self.observability.add_dead_letters(
                    workflow_construct_id(spec.name) + c.TRIGGERS_ID_SUFFIX,
                    self.triggers[spec.name].dead_letters,
                )
        self.observability.add_cost(
            self.storage,
            self.api.rest_api if self.api else None,
            standard=settings.state_machine_type == "STANDARD",
        )
        self._outputs()

    def _function_rollouts(self, settings: Settings) -> FunctionRollouts | None:
        """CANARY/LINEAR shifts of the API's and status recorder's live aliases, rolled
        back by their error alarms (as the state machines' aliases are)."""
        if settings.deployment.type == "ALL_AT_ONCE" or not (self.api or self.status):
            return None
        rollouts = FunctionRollouts(self, ROLLOUTS_ID, deployment=settings.deployment)
        watch = self.observability.alarms
        name = self.stack_name
        if self.api is not None:
            rollouts.add(
                "Api",
                self.api.alias,
                [
                    watch[c.alarm_name(name, alarms.ALARM_LAMBDA_ERRORS, alarms.API_FUNCTION_NAME)],
                    watch[c.alarm_name(name, alarms.ALARM_API_SERVER_ERRORS)],
                ],
            )
        if self.status is not None:
            rollouts.add(
                "StatusRecorder",
                self.status.alias,
                [
                    watch[
                        c.alarm_name(name, alarms.ALARM_LAMBDA_ERRORS, alarms.STATUS_FUNCTION_NAME)
                    ],
                    watch[c.alarm_name(name, c.ALARM_STATUS_EVENTS)],
                ],
            )
        return rollouts

    def _outputs(self) -> None:
        CfnOutput(self, c.OUTPUT_TABLE_NAME, value=self.storage.table.table_name)
        CfnOutput(self, c.OUTPUT_BUCKET_NAME, value=self.storage.bucket.bucket_name)
        CfnOutput(self, c.OUTPUT_ALARM_TOPIC_ARN, value=self.observability.topic.topic_arn)
        CfnOutput(self, c.OUTPUT_DASHBOARD_NAME, value=c.dashboard_name(self.stack_name))
        for name, workflow in self.workflows.items():
            prefix = workflow_construct_id(name)
            CfnOutput(
                self,
                f"{prefix}AliasArn",
                value=workflow.alias.ref,
                description=f"start {name} runs here (the {c.STATE_MACHINE_ALIAS} alias)",
            )
            CfnOutput(
                self,
                f"{prefix}StateMachineArn",
                value=workflow.state_machine.state_machine_arn,
            )
        CfnOutput(
            self,
            c.OUTPUT_WORKFLOW_MODULES,
            value=json.dumps({n: w.spec.ref for n, w in self.workflows.items()}),
        )
        # Machine-readable, for `stepdag --stack NAME` (cli/remote.py): the per-workflow
        # outputs above are for people and their keys are derived, lossily, from names.
        CfnOutput(
            self,
            c.OUTPUT_STATE_MACHINES,
            value=self.to_json_string(
                {
                    name: {
                        contract.STATE_MACHINE_ARN_KEY: w.state_machine.state_machine_arn,
                        contract.ALIAS_ARN_KEY: w.alias.ref,
                    }
                    for name, w in sorted(self.workflows.items())
                }
            ),
            description="JSON {workflow: {stateMachineArn, aliasArn}}; start runs on aliasArn",
        )
        CfnOutput(
            self,
            c.OUTPUT_NODE_LOG_GROUPS,
            value=self.to_json_string(
                {
                    function_id(key): group.log_group_name
                    for key, group in sorted(self.node_runners.log_groups.items())
                }
            ),
            description="JSON {function: log group name}: where the node runners log",
        )

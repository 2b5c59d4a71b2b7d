"""``StepdagHooks``: ``POST /v1/hooks/<workflow>`` starts a run, API Gateway -> Step Functions.

A direct service integration (no Lambda in the path): the request template turns the
JSON body into ``StartExecution``'s ``input`` on the workflow's ``live`` alias and the
``Idempotency-Key`` header into the execution ``name`` (``$context.requestId`` when absent).
For a Standard workflow Step Functions makes that idempotent: the same name and input
while the run is open answers the existing execution (200, no second run); another input,
or a run that already ended, is ``ExecutionAlreadyExists`` -> 409. The node runner adopts
such runs on their first Task (``NodeRunner._execution``), so a hook-started run is a
normal stepdag run, but no store record exists until then.

Why a separate ``/v1/hooks`` tree and not ``/v1/workflows/{name}/hooks``: API Gateway
routes to the most specific resource and does not fall back to a greedy ``{proxy+}``
sibling when that resource lacks the method, so a ``/v1/workflows`` resource would
swallow the Lambda API's ``GET /v1/workflows`` and ``POST …/executions``.

``POST /v1/hooks/<workflow>/events`` is the same integration for EventBridge rules
(``infra/constructs/triggers.py``): the body is an envelope ``{"key": <event id>, "input":
<params>}`` that the rule's InputTransformer renders, ``key`` becomes the execution name
and ``input`` the execution input, so a redelivered event answers the run it started
(200) or, once that run has ended, a 409 (which EventBridge does not retry): one run per
event. Its own ``EventEnvelope`` model requires both fields.

Only with IAM auth: the gateway cannot check the API's roles or scope a run to a tenant,
so under the Cognito authorizer (tenants, roles) no hook route is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import constants as c
from infra.constructs.workflow import StepdagWorkflow

# The body is any JSON object (the workflow's params; the node runner validates them).
BODY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="HookBody",
    type=apigw.JsonSchemaType.OBJECT,
)

# The events route's body: what the trigger rule's InputTransformer renders. ``key`` is
# the execution name (Step Functions: 1-80 characters), ``input`` the params object.
EVENT_BODY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="EventEnvelope",
    type=apigw.JsonSchemaType.OBJECT,
    required=["key", "input"],
    additional_properties=False,
    properties={
        "key": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=80),
        "input": apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
    },
)

# $util.escapeJavaScript also escapes ' as \' (invalid in JSON): undo that one.
_START = r"""{
  "stateMachineArn": "%(alias)s",
  "name": "$util.escapeJavaScript($key)",
  "input": "$util.escapeJavaScript($input.json('%(input)s')).replaceAll("\\'", "'")"
}"""

# The hook: body = input, the Idempotency-Key header = name ($context.requestId without).
REQUEST_TEMPLATE = r"""#set($key = "$!input.params().header.get('%(header)s')")
#if($key == "")#set($key = $context.requestId)#end
""" + _START.replace("%(input)s", "$")

# The events route: the envelope's key = name, its input = input (both required).
EVENT_REQUEST_TEMPLATE = r"""#set($key = "$!input.path('$.key')")
""" + _START.replace("%(input)s", "$.input")

EVENTS_PATH = "events"  # POST /v1/hooks/<workflow>/events
EVENT_KEY_FIELD = "key"  # the envelope field that names the execution

STARTED_TEMPLATE = """{
  "id": "$input.path('$.executionArn')",
  "workflow": "%(workflow)s",
  "started_at": $input.path('$.startDate')
}"""

# Step Functions answers every client error with HTTP 400 and names it in __type
# ("com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists"); the status is chosen
# here, as a problem document like the Lambda API's (stepdag.api.errors).
PROBLEM_TEMPLATE = r"""#set($type = "$!input.path('$.__type')")
#if($type.contains('ExecutionAlreadyExists'))
#set($status = 409)
#set($code = 'idempotency_conflict')
#set($title = 'an execution with this %(field)s exists with another input, or has ended')
#elseif($type.matches('.*(Throttling|ExecutionLimitExceeded).*'))
#set($status = 429)
#set($code = 'throttled')
#set($title = 'Step Functions throttled the start: retry later with the same key')
#elseif($type.matches('.*(InvalidName|InvalidExecutionInput|Validation).*'))
#set($status = 400)
#set($code = 'invalid_request')
#set($title = 'Step Functions refused the execution name or input')
#else
#set($status = 502)
#set($code = 'start_failed')
#set($title = 'the start failed')
#end
#set($context.responseOverride.status = $status)
#set($detail = $util.escapeJavaScript("$!input.path('$.message')").replaceAll("\\'", "'"))
{
  "type": "urn:stepdag:problem:$code",
  "title": "$title",
  "status": $status,
  "detail": "$detail",
  "code": "$code"#if($status == 409),
  "field": "%(field)s"#end

}"""

SERVER_ERROR_TEMPLATE = """{
  "type": "urn:stepdag:problem:start_failed",
  "title": "the start failed",
  "status": 502,
  "detail": "Step Functions answered with a server error; retry with the same %(field)s",
  "code": "start_failed"
}"""

PROBLEM_CONTENT_TYPE = "'application/problem+json'"
CONTENT_TYPE_PARAM = "method.response.header.Content-Type"
# Method responses: 200 started; the integration's 4xx/5xx are re-statused by the template.
STATUSES = ("200", "400", "409", "429", "502")


@dataclass(frozen=True)
class EventRoute:
    """``POST /v1/hooks/<workflow>/events``: where a trigger rule delivers its envelope."""

    rest_api: apigw.RestApi
    method: apigw.Method

    @property
    def path(self) -> str:
        """``/v1/hooks/<workflow>/events`` (the rule target's ``path``)."""
        return self.method.resource.path

    @property
    def stage(self) -> str:
        return self.rest_api.deployment_stage.stage_name

    @property
    def arn(self) -> str:
        """The one route an events role may ``execute-api:Invoke``."""
        return self.rest_api.arn_for_execute_api("POST", self.path, self.stage)


class StepdagHooks(Construct):
    """Per workflow under ``parent`` (``/v1``): ``POST hooks/<workflow>`` and its ``/events``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        parent: apigw.IResource,
        api: apigw.RestApi,
        workflows: Mapping[str, StepdagWorkflow],
        validator: apigw.IRequestValidator,
    ) -> None:
        super().__init__(scope, construct_id)
        ordered = [workflows[name] for name in sorted(workflows)]
        self.role = iam.Role(
            self,
            c.HOOKS_ROLE_ID,
            description="stepdag webhook routes: API Gateway starts runs on the live aliases",
            assumed_by=iam.ServicePrincipal(c.HOOKS_PRINCIPAL),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(c.HOOKS_START_ACTIONS), resources=[w.alias_arn for w in ordered]
            )
        )
        self._validator = validator
        model = api.add_model("HookBody", content_type="application/json", schema=BODY_SCHEMA)
        envelope = api.add_model(
            "EventEnvelope", content_type="application/json", schema=EVENT_BODY_SCHEMA
        )
        self.resource = parent.add_resource(c.HOOKS_PATH)
        self.methods: dict[str, apigw.Method] = {}
        self.event_routes: dict[str, EventRoute] = {}
        for workflow in ordered:
            name = workflow.spec.name
            hook = self.resource.add_resource(name)
            self.methods[name] = self._start_method(
                hook,
                workflow,
                template=REQUEST_TEMPLATE,
                field=c.HOOKS_KEY_HEADER,
                model=model,
                request_parameters={f"method.request.header.{c.HOOKS_KEY_HEADER}": False},
            )
            events_method = self._start_method(
                hook.add_resource(EVENTS_PATH),
                workflow,
                template=EVENT_REQUEST_TEMPLATE,
                field=EVENT_KEY_FIELD,
                model=envelope,
            )
            self.event_routes[name] = EventRoute(api, events_method)

    def _start_method(
        self,
        resource: apigw.IResource,
        workflow: StepdagWorkflow,
        *,
        template: str,
        field: str,
        model: apigw.IModel,
        request_parameters: Mapping[str, bool] | None = None,
    ) -> apigw.Method:
        """``POST`` on ``resource``: ``template`` -> StartExecution on the live alias."""
        return resource.add_method(
            "POST",
            self._integration(workflow.spec.name, workflow.alias_arn, template, field),
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=self._validator,
            request_models={"application/json": model},
            request_parameters=dict(request_parameters) if request_parameters else None,
            method_responses=[
                apigw.MethodResponse(
                    status_code=s,
                    response_parameters={CONTENT_TYPE_PARAM: True},
                )
                for s in STATUSES
            ],
        )

    def _integration(
        self, workflow: str, alias_arn: str, template: str, field: str
    ) -> apigw.AwsIntegration:
        header = c.HOOKS_KEY_HEADER
        fields = {"field": field, "workflow": workflow}
        return apigw.AwsIntegration(
            service="states",
            action="StartExecution",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.role,
                # Only JSON bodies reach the template; anything else is a 415.
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={
                    "application/json": template % {"header": header, "alias": alias_arn}
                },
                integration_responses=[
                    _response("200", None, "'application/json'", STARTED_TEMPLATE, fields),
                    # Step Functions' 4xx: re-statused by the template (409/429/400/502).
                    _response("400", r"4\d{2}", PROBLEM_CONTENT_TYPE, PROBLEM_TEMPLATE, fields),
                    _response(
                        "502", r"5\d{2}", PROBLEM_CONTENT_TYPE, SERVER_ERROR_TEMPLATE, fields
                    ),
                ],
            ),
        )


def _response(
    status: str, pattern: str | None, content_type: str, template: str, fields: Mapping[str, str]
) -> apigw.IntegrationResponse:
    """An integration response; ``pattern`` None is the default (Step Functions' 200)."""
    return apigw.IntegrationResponse(
        status_code=status,
        selection_pattern=pattern,
        response_parameters={CONTENT_TYPE_PARAM: content_type},
        response_templates={"application/json": template % fields},
    )

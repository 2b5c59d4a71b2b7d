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

Only with IAM auth: the gateway cannot check the API's roles or scope a run to a tenant,
so under the Cognito authorizer (tenants, roles) no hook route is created.
"""

from __future__ import annotations

from collections.abc import Mapping

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

# $util.escapeJavaScript also escapes ' as \' (invalid in JSON): undo that one.
REQUEST_TEMPLATE = r"""#set($key = "$!input.params().header.get('%(header)s')")
#if($key == "")#set($key = $context.requestId)#end
{
  "stateMachineArn": "%(alias)s",
  "name": "$util.escapeJavaScript($key)",
  "input": "$util.escapeJavaScript($input.json('$')).replaceAll("\\'", "'")"
}"""

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
#set($title = 'an execution with this %(header)s exists with another input, or has ended')
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
  "field": "%(header)s"#end

}"""

SERVER_ERROR_TEMPLATE = """{
  "type": "urn:stepdag:problem:start_failed",
  "title": "the start failed",
  "status": 502,
  "detail": "Step Functions answered with a server error; retry with the same %(header)s",
  "code": "start_failed"
}"""

PROBLEM_CONTENT_TYPE = "'application/problem+json'"
CONTENT_TYPE_PARAM = "method.response.header.Content-Type"
# Method responses: 200 started; the integration's 4xx/5xx are re-statused by the template.
STATUSES = ("200", "400", "409", "429", "502")


class StepdagHooks(Construct):
    """One ``POST /v1/hooks/<workflow>`` per workflow under ``parent`` (the ``/v1`` resource)."""

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
        model = api.add_model("HookBody", content_type="application/json", schema=BODY_SCHEMA)
        self.resource = parent.add_resource(c.HOOKS_PATH)
        self.methods: dict[str, apigw.Method] = {}
        for workflow in ordered:
            name = workflow.spec.name
            self.methods[name] = self.resource.add_resource(name).add_method(
                "POST",
                self._integration(name, workflow.alias_arn),
                authorization_type=apigw.AuthorizationType.IAM,
                request_validator=validator,
                request_models={"application/json": model},
                request_parameters={f"method.request.header.{c.HOOKS_KEY_HEADER}": False},
                method_responses=[
                    apigw.MethodResponse(
                        status_code=s,
                        response_parameters={CONTENT_TYPE_PARAM: True},
                    )
                    for s in STATUSES
                ],
            )

    def _integration(self, workflow: str, alias_arn: str) -> apigw.AwsIntegration:
        header = c.HOOKS_KEY_HEADER
        return apigw.AwsIntegration(
            service="states",
            action="StartExecution",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.role,
                # Only JSON bodies reach the template; anything else is a 415.
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={
                    "application/json": REQUEST_TEMPLATE % {"header": header, "alias": alias_arn}
                },
                integration_responses=[
                    _response("200", None, "'application/json'", STARTED_TEMPLATE, workflow),
                    # Step Functions' 4xx: re-statused by the template (409/429/400/502).
                    _response("400", r"4\d{2}", PROBLEM_CONTENT_TYPE, PROBLEM_TEMPLATE, workflow),
                    _response(
                        "502", r"5\d{2}", PROBLEM_CONTENT_TYPE, SERVER_ERROR_TEMPLATE, workflow
                    ),
                ],
            ),
        )


def _response(
    status: str, pattern: str | None, content_type: str, template: str, workflow: str
) -> apigw.IntegrationResponse:
    """An integration response; ``pattern`` None is the default (Step Functions' 200)."""
    fields = {"header": c.HOOKS_KEY_HEADER, "workflow": workflow}
    return apigw.IntegrationResponse(
        status_code=status,
        selection_pattern=pattern,
        response_parameters={CONTENT_TYPE_PARAM: content_type},
        response_templates={"application/json": template % fields},
    )

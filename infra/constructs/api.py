"""``StepdagApi``: the REST API (API Gateway, Lambda proxy) in front of the API function.

* Every method but ``GET /v1/health/live`` (a liveness probe, no data) requires AWS_IAM
  (SigV4) by default; with ``stepdag:apiUserPoolArn`` a
  Cognito user pool authorizer instead, with ``stepdag:apiOidcIssuer`` (+ audience, JWKS)
  the OIDC TOKEN authorizer (``api_auth.py``); their claims carry tenant and roles (see
  ``stepdag.api.auth``), and the API refuses callers without a tenant (multi-tenant
  mode).  An IAM caller is trusted: every role, no tenant.
* Pagination tokens are signed with a key generated at deploy (Secrets Manager), which
  only the API function's role may read.
* Stage throttling, gzip from ``API_MIN_COMPRESSION_BYTES``, JSON access logs, execution
  logging (ERROR) and X-Ray on the stage.
* The function runs ``stepdag.handlers.api.handler`` from the node runner's code asset,
  with least privilege: StartExecution on the ``live`` aliases only, Describe/Stop/Redrive
  on executions of this stack's state machines, item access on the table and bucket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from aws_cdk import Aspects, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, Node

from infra import constants as c
from infra.constructs.api_auth import ApiAuth, OidcAuthorizer, TenantAttributeGuard
from infra.constructs.functions import (
    acknowledge_storage_grants,
    function_role,
    stepdag_function,
)
from infra.constructs.hooks import StepdagHooks
from infra.constructs.rollout import live_alias
from infra.constructs.storage import StepdagStorage
from infra.constructs.workflow import StepdagWorkflow
from infra.nag import acknowledge
from stepdag.constants import CORS_HEADERS, CORS_MAX_AGE_S, ORIGIN_PATTERN

_ORIGIN = re.compile(ORIGIN_PATTERN)


def api_enabled(node: Node) -> bool:
    """The ``stepdag:api`` context flag (``true``/``false``, a string on the command line).

    On by default: runs come from API requests. ``false`` leaves the API out, for an
    account whose API Gateway CloudWatch role (``AWS::ApiGateway::Account``, one per
    account and region) another stack owns, or a stack driven by triggers alone.
    """
    value = node.try_get_context(c.CTX_API_ENABLED)
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{c.CTX_API_ENABLED}: expected a boolean, got {value!r}")


def api_cors_origins(node: Node) -> tuple[str, ...]:
    """The ``stepdag:apiCorsOrigins`` context flag: exact origins, comma-separated."""
    value = node.try_get_context(c.CTX_API_CORS_ORIGINS)
    if not value:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    origins = tuple(str(v).strip() for v in items if str(v).strip())
    bad = [o for o in origins if not _ORIGIN.match(o)]
    if bad:
        raise ValueError(
            f"{c.CTX_API_CORS_ORIGINS}: origins like https://console.example.com "
            f"(no path, no '*'); not valid: {', '.join(repr(b) for b in bad)}"
        )
    return origins


class StepdagApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        storage: StepdagStorage,
        workflows: Mapping[str, StepdagWorkflow],
        log_level: str = "INFO",
        retain_data: bool = True,
        auth: ApiAuth | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        self.cors_origins = tuple(cors_origins)
        self.auth = auth = auth or ApiAuth()
        # The tenant claim is only as good as the app clients that cannot write it.
        Aspects.of(self.node.root).add(TenantAttributeGuard())
        self.pagination_key = secretsmanager.Secret(
            self,
            c.PAGINATION_KEY_ID,
            description="stepdag API: HMAC key signing pagination tokens (generated at deploy)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=c.PAGINATION_KEY_LENGTH,
                exclude_punctuation=True,
                include_space=False,
            ),
        )
        self.function = self._function(code, storage, workflows, log_level, removal)

        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=removal
        )
        self.authorizer: apigw.IAuthorizer | None = None
        self.oidc: OidcAuthorizer | None = None
        method_options = apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        if auth.user_pool_arn:
            pool = cognito.UserPool.from_user_pool_arn(self, "UserPool", auth.user_pool_arn)
            self.authorizer = apigw.CognitoUserPoolsAuthorizer(
                self, "Authorizer", cognito_user_pools=[pool]
            )
            method_options = apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.COGNITO, authorizer=self.authorizer
            )
        elif auth.oidc:
            self.oidc = OidcAuthorizer(
                self,
                c.AUTHORIZER_ID,
                oidc=auth.oidc,
                code=code,
                storage=storage,
                log_level=log_level,
                removal=removal,
            )
            self.authorizer = self.oidc.authorizer
            method_options = apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.CUSTOM, authorizer=self.authorizer
            )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description="stepdag REST API: start, inspect, cancel, redrive and rerun workflows",
            default_method_options=method_options,
            min_compression_size=Size.bytes(c.API_MIN_COMPRESSION_BYTES),
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=removal,
            deploy_options=apigw.StageOptions(
                stage_name=c.API_STAGE_NAME,
                throttling_rate_limit=c.API_THROTTLE_RATE_LIMIT,
                throttling_burst_limit=c.API_THROTTLE_BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry user params
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        # The function validates bodies and parameters (OpenAPI + pydantic, answering with
        # problem documents); the proxy method declares no request model, so the gateway's
        # validator only enforces what is declared (nothing more than the route today).
        validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        # The gateway invokes the live alias: a CANARY/LINEAR rollout moves it gradually.
        self.alias = live_alias(self, self.function)
        integration = apigw.LambdaIntegration(self.alias, proxy=True)
        v1 = self.rest_api.root.add_resource(c.API_ROUTE_PREFIX)
        authorized = apigw.MethodOptions(
            authorization_type=method_options.authorization_type,
            authorizer=method_options.authorizer,
            request_validator=validator,
        )
        proxy = v1.add_proxy(
            default_integration=integration, any_method=True, default_method_options=authorized
        )
        self.liveness, health = self._health(v1, integration, authorized, validator)
        self.preflights: list[apigw.Method] = []
        if self.cors_origins:
            self._cors([proxy, *health])
        # Webhook starts without the Lambda (IAM only: the gateway checks no roles/tenants).
        self.hooks: StepdagHooks | None = None
        if not auth.token_auth:
            self.hooks = StepdagHooks(
                self,
                c.HOOKS_ID,
                parent=v1,
                api=self.rest_api,
                workflows=workflows,
                validator=validator,
            )
        self._acknowledge(storage, workflows)

    def _health(
        self,
        v1: apigw.Resource,
        integration: apigw.LambdaIntegration,
        authorized: apigw.MethodOptions,
        validator: apigw.RequestValidator,
    ) -> tuple[apigw.Method, list[apigw.Resource]]:
        """``GET /v1/health/live`` without authorization: a liveness probe from outside.

        The function answers it from the process alone (no store, no Step Functions, no
        caller data).  API Gateway routes to the most specific resource and never falls
        back to ``/v1/{proxy+}``, so ``/v1/health`` and everything else under it (``ready``:
        its details name the store and the failing call) get authorized methods of their own.
        """
        health = v1.add_resource(c.API_HEALTH_PATH, default_method_options=authorized)
        health.add_method("ANY", integration)
        rest = health.add_proxy(default_integration=integration, any_method=True)
        live = health.add_resource(c.API_LIVE_PATH)
        # NONE with no authorizer given: CDK drops the inherited authorizer for this method.
        method = live.add_method(
            "GET",
            integration,
            authorization_type=apigw.AuthorizationType.NONE,
            request_validator=validator,
        )
        acknowledge(
            method,
            "AwsSolutions-APIG4",
            "Liveness probe (GET /v1/health/live): callable without credentials by design; "
            "the function answers {status: ok} from the process alone, no data, no calls.",
        )
        acknowledge(
            method,
            "AwsSolutions-COG4",
            "Liveness probe (GET /v1/health/live): a probe from outside carries no token; it "
            "returns no data. /v1/health and /v1/health/ready keep the API's authorizer.",
        )
        return method, [health, rest, live]

    def _cors(self, resources: Sequence[apigw.Resource]) -> None:
        """Browsers on ``cors_origins`` may call the API (the console hosted elsewhere).

        A preflight carries no credentials, so it cannot pass IAM or Cognito auth: the
        gateway answers OPTIONS itself (a MOCK integration, no Lambda).  The function adds
        the headers to real answers (``stepdag.api.app.cors_config``), and the gateway's own
        4XX/5XX (a refused token, throttling) get them too, or the console would see a bare
        network error instead of the 401/429.  Those can name one origin only: the first.
        """
        for resource in resources:
            self.preflights.append(
                resource.add_cors_preflight(
                    allow_origins=list(self.cors_origins),
                    allow_headers=list(CORS_HEADERS),
                    allow_methods=["GET", "POST", "OPTIONS"],
                    max_age=Duration.seconds(CORS_MAX_AGE_S),
                )
            )
        headers = {"Access-Control-Allow-Origin": f"'{self.cors_origins[0]}'", "Vary": "'Origin'"}
        for response_type, name in (
            (apigw.ResponseType.DEFAULT_4_XX, "Default4xx"),
            (apigw.ResponseType.DEFAULT_5_XX, "Default5xx"),
        ):
            self.rest_api.add_gateway_response(name, type=response_type, response_headers=headers)
        for preflight in self.preflights:
            acknowledge(
                preflight,
                "AwsSolutions-APIG4",
                "CORS preflight (OPTIONS): browsers send it without credentials, so it cannot "
                "be authorized; a MOCK integration answers it with the CORS headers, no data.",
            )
            acknowledge(
                preflight,
                "AwsSolutions-COG4",
                "CORS preflight (OPTIONS) carries no token by the CORS protocol; it reaches no "
                "function and returns no data.",
            )

    def _function(
        self,
        code: lambda_.Code,
        storage: StepdagStorage,
        workflows: Mapping[str, StepdagWorkflow],
        log_level: str,
        removal: RemovalPolicy,
    ) -> lambda_.Function:
        log_group, self.role = function_role(
            self,
            logs_id="FunctionLogs",
            role_id="FunctionRole",
            description="stepdag REST API function",
            removal_policy=removal,
        )
        storage.grant_store(self.role, update_executions=True, list_executions=True)
        self.pagination_key.grant_read(self.role)  # no other role may: it forges tokens
        ordered = [workflows[name] for name in sorted(workflows)]
        if ordered:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(c.API_START_ACTIONS), resources=[w.alias_arn for w in ordered]
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(c.API_EXECUTION_ACTIONS),
                    resources=[w.executions_arn() for w in ordered],
                )
            )
        stack = Stack.of(self)
        return stepdag_function(
            self,
            "Function",
            handler=c.API_HANDLER,
            code=code,
            memory_mb=c.API_FUNCTION_MEMORY_MB,
            timeout_s=c.API_FUNCTION_TIMEOUT_S,
            role=self.role,
            log_group=log_group,
            storage=storage,
            service_name=c.API_SERVICE_NAME,
            log_level=log_level,
            environment={
                c.ENV_WORKFLOW_MODULES: json.dumps(
                    {n: w.spec.ref for n, w in sorted(workflows.items())}, sort_keys=True
                ),
                c.ENV_STATE_MACHINES: stack.to_json_string(
                    {n: w.alias_arn for n, w in sorted(workflows.items())}
                ),
                **({c.ENV_CORS_ORIGINS: ",".join(self.cors_origins)} if self.cors_origins else {}),
                c.ENV_TENANCY: self.auth.tenancy.value,
                **self._rate_environment(),
                c.ENV_PAGINATION_SECRET: self.pagination_key.secret_arn,
            },
            description="stepdag REST API",
        )

    def _rate_environment(self) -> dict[str, str]:
        if self.auth.tenant_rate is None:
            return {}
        rate, burst = self.auth.tenant_rate
        return {c.ENV_TENANT_RATE: f"{rate:g}", c.ENV_TENANT_BURST: str(burst)}

    def _acknowledge(
        self,
        storage: StepdagStorage,
        workflows: Mapping[str, StepdagWorkflow],
    ) -> None:
        stack = Stack.of(self)
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge_storage_grants(
            self.role,
            storage,
            "Offloaded outputs are read (and copied by rerun) under per-run keys of this one "
            "bucket; no other bucket and no bucket-level writes.",
        )
        for workflow in workflows.values():
            sm = stack.get_logical_id(workflow.state_machine.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:<{sm}.Name>:*]",
                "Describe/Stop/Redrive act on executions, whose ARNs end in a run name "
                "chosen at start; scoped to executions of this stack's state machine.",
            )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "No WAF web ACL: every method but the liveness probe (GET /v1/health/live, no "
            "data) requires SigV4 (IAM) or a token, and the stage throttles; attach a web "
            "ACL per account policy if the API is public.",
        )
        cw_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cw_role is not None:
            acknowledge(
                cw_role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role: the AWS-managed policy is the "
                "documented way to let API Gateway write execution logs.",
            )
        acknowledge(
            self.pagination_key,
            "AwsSolutions-SMG4",
            "An HMAC key for pagination tokens, not a credential: rotating it only invalidates "
            "open next_token values; replace it by hand (docs/deployment.md) if it leaks.",
        )
        if not self.auth.user_pool_arn:
            how = "an OIDC Lambda authorizer" if self.auth.oidc else "AWS_IAM (SigV4)"
            acknowledge(
                self.rest_api,
                "AwsSolutions-COG4",
                f"Methods use {how} authorization; a Cognito authorizer is opt-in with the "
                f"{c.CTX_API_USER_POOL_ARN} context flag.",
            )

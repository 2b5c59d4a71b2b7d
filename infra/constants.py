"""Every name shared by the CDK app, its tests and the runtime contract.

Construct ids, metric names and alarm names live here so a rename is one edit and the
tests assert against the same strings the stack uses. What the Lambdas and the CLI read
back -- environment variable names, the key schema, the stack outputs ``--stack`` reads --
is the deployment contract in ``stepdag.constants``; the names below only alias it.
"""

from __future__ import annotations

from typing import Final

from stepdag import constants as contract

# --- App / stack --------------------------------------------------------------------------
STACK_ID: Final = "Stepdag"
SERVICE_NAME: Final = "stepdag"
WORKFLOWS_DIR: Final = "statemachines"

# --- Construct ids (logical-id prefixes in the template) ----------------------------------
STORAGE_ID: Final = "Storage"
TABLE_ID: Final = "NodeStateTable"
BUCKET_ID: Final = "OutputsBucket"
ACCESS_LOGS_BUCKET_ID: Final = "AccessLogsBucket"
FUNCTIONS_ID: Final = "NodeRunners"
OBSERVABILITY_ID: Final = "Observability"
ALARM_TOPIC_ID: Final = "AlarmTopic"
ALARM_KEY_ID: Final = "AlarmTopicKey"
DASHBOARD_ID: Final = "Dashboard"
WORKFLOW_ID_PREFIX: Final = "Workflow"

# --- DynamoDB single-table key schema ------------------------------------------------------
# One source of truth: the store's own table spec (stepdag.constants), which the store's
# tests create tables from too. The CDK table cannot drift from what the code queries.
TABLE_PARTITION_KEY: Final = contract.PK
TABLE_SORT_KEY: Final = contract.SK
TABLE_TTL_ATTRIBUTE: Final = contract.TTL_ATTRIBUTE
# (index name, partition key, sort key); all string attributes, projection ALL.
TABLE_GSIS: Final[tuple[tuple[str, str, str], ...]] = tuple(
    (name, partition, contract.STARTED_KEY) for name, partition in contract.INDEXES.items()
)

# Item-level actions every stepdag function needs (the store's GetItem/Query/BatchGetItem
# reads, PutItem and TransactWriteItems of Puts, which IAM checks as PutItem); nothing
# table-administrative, no Scan, and no deletes: no code deletes an item (records expire
# by TTL) or an object (by the bucket's lifecycle rule).
TABLE_DATA_ACTIONS: Final[tuple[str, ...]] = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
)
# update_execution: the API (cancel, redrive, status refresh) and the status recorder only.
TABLE_UPDATE_ACTIONS: Final[tuple[str, ...]] = ("dynamodb:UpdateItem",)
# The indexes serve list_executions: the API only.
TABLE_INDEX_ACTIONS: Final[tuple[str, ...]] = ("dynamodb:Query",)
# One PutObject per offloaded output (never multipart), GetObject to load it.
BUCKET_OBJECT_ACTIONS: Final[tuple[str, ...]] = ("s3:GetObject", "s3:PutObject")
# ListBucket (on the bucket, not objects) turns a missing key into 404 instead of 403.
BUCKET_ACTIONS: Final[tuple[str, ...]] = ("s3:ListBucket",)

# --- Node-runner Lambda --------------------------------------------------------------------
NODE_RUNNER_HANDLER: Final = "stepdag.handlers.node_runner.handler"
# The newest Lambda Python runtime in aws-cdk-lib 2.275 (cdk-nag AwsSolutions-L1 asks for
# the latest). Keep in step with infra/constructs/functions.py::RUNTIME.
LAMBDA_PYTHON_VERSION: Final = "3.14"
LAMBDA_WHEEL_PLATFORM: Final = "manylinux2014_aarch64"  # ARM_64 functions
# Project dependencies the node runner never imports (the CLI's). boto3 is NOT left to the
# Lambda runtime: aws-xray-sdk pulls botocore into the bundle, and a bundled botocore
# shadowing the runtime's would pair it with a boto3 of another release; bundling the
# pinned boto3 keeps the pair consistent and the versions reproducible.
# CLI-only, and the JSONata library of the local interpreter (Step Functions runs the
# ASL on AWS; no Lambda imports stepdag.asl's JSONata support).
LAMBDA_EXCLUDED_REQUIREMENTS: Final[frozenset[str]] = frozenset({"typer", "rich", "jsonatapy"})
DEFAULT_FUNCTION_ID: Final = "NodeRunner"

# Environment variables the stack sets: the deployment contract (stepdag.constants), read
# by the Lambdas' settings and the CLI under the same names.
ENV_TABLE_NAME: Final = contract.ENV_TABLE_NAME
ENV_BUCKET_NAME: Final = contract.ENV_BUCKET_NAME
ENV_WORKFLOW_MODULES: Final = contract.ENV_WORKFLOW_MODULES
ENV_RETENTION_DAYS: Final = contract.ENV_RETENTION_DAYS
ENV_POWERTOOLS_SERVICE_NAME: Final = contract.ENV_POWERTOOLS_SERVICE_NAME
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = contract.ENV_POWERTOOLS_METRICS_NAMESPACE
ENV_LOG_LEVEL: Final = contract.ENV_LOG_LEVEL

# --- Metrics (EMF, emitted by the node runner through Powertools) --------------------------
METRIC_NAMESPACE: Final = "stepdag"
METRIC_NODE_FAILED: Final = "NodeFailed"
METRIC_NODE_SUCCEEDED: Final = "NodeSucceeded"
DIMENSION_WORKFLOW: Final = "workflow"
DIMENSION_NODE: Final = "node"
# Powertools Metrics adds a "service" dimension to every metric; CloudWatch identifies a
# metric by its full dimension set, so alarms must name it too.
DIMENSION_SERVICE: Final = "service"

# --- Step Functions -----------------------------------------------------------------------
STATE_MACHINE_ALIAS: Final = "live"
STATE_MACHINE_LOG_GROUP_PREFIX: Final = "/aws/vendedlogs/states/"

# --- Triggers (EventBridge rules, EventBridge Scheduler schedules) -------------------------
TRIGGERS_ID_SUFFIX: Final = "Triggers"  # WorkflowEtl -> WorkflowEtlTriggers
TRIGGER_ALIAS_ID: Final = "LiveAlias"
TRIGGER_RULE_SUFFIX: Final = "Rule"
TRIGGER_SCHEDULE_SUFFIX: Final = "Schedule"
SCHEDULER_ROLE_ID: Final = "SchedulerRole"
SCHEDULER_PRINCIPAL: Final = "scheduler.amazonaws.com"
TRIGGER_START_ACTIONS: Final[tuple[str, ...]] = ("states:StartExecution",)
TRIGGER_RETRY_ATTEMPTS: Final = 3
# With the API's hook routes: rules target POST /v1/hooks/<workflow>/events (event id = name).
TRIGGER_EVENTS_ROLE_ID: Final = "EventsRole"
EVENTS_PRINCIPAL: Final = "events.amazonaws.com"
TRIGGER_INVOKE_ACTIONS: Final[tuple[str, ...]] = ("execute-api:Invoke",)

# --- Alarms -------------------------------------------------------------------------------
# Alarm kinds; docs/runbooks.md has one section per kind (its heading is the kind).
ALARM_EXECUTIONS_FAILED: Final = "ExecutionsFailed"
ALARM_EXECUTION_DURATION_P95: Final = "ExecutionDurationP95"
ALARM_NODE_ERROR_RATE: Final = "NodeErrorRate"
ALARM_LAMBDA_THROTTLES: Final = "LambdaThrottles"
ALARM_STATUS_EVENTS: Final = "StatusEvents"  # status events dead-lettered or failing
ALARM_KINDS: Final[tuple[str, ...]] = (
    ALARM_EXECUTIONS_FAILED,
    ALARM_EXECUTION_DURATION_P95,
    ALARM_NODE_ERROR_RATE,
    ALARM_LAMBDA_THROTTLES,
    ALARM_STATUS_EVENTS,
)

NODE_ERROR_RATE_THRESHOLD_PCT: Final = 10.0
NODE_ERROR_RATE_MIN_SAMPLES: Final = 5  # below this many node runs the rate reads 0
DEFAULT_P95_DURATION_SECONDS: Final = 3_600
DEFAULT_EXPRESS_P95_DURATION_SECONDS: Final = 240  # Express runs stop at 5 minutes


def alarm_name(stack_name: str, kind: str, *parts: str) -> str:
    """Account-unique alarm name: ``<stack>-<parts…>-<kind>`` (runbook anchor = kind)."""
    return "-".join((stack_name, *parts, kind))


def dashboard_name(stack_name: str) -> str:
    return f"{stack_name}-overview"


# --- CDK context flags (cdk.json "context" or `cdk synth -c key=value`) -------------------
CTX_SKIP_BUNDLING: Final = "stepdag:skipBundling"  # tests: use the source dir as-is
CTX_STACK_NAME: Final = "stepdag:stackName"
CTX_LOG_LEVEL: Final = "stepdag:logLevel"  # node-runner LOG_LEVEL
CTX_SFN_LOG_LEVEL: Final = "stepdag:stateMachineLogLevel"  # ALL | ERROR
CTX_SFN_INCLUDE_EXECUTION_DATA: Final = "stepdag:includeExecutionData"
CTX_SFN_TYPE: Final = "stepdag:stateMachineType"  # STANDARD | EXPRESS
CTX_DEPLOYMENT_TYPE: Final = "stepdag:deploymentType"  # ALL_AT_ONCE | CANARY | LINEAR
CTX_DEPLOYMENT_PERCENTAGE: Final = "stepdag:deploymentPercentage"
CTX_DEPLOYMENT_INTERVAL: Final = "stepdag:deploymentIntervalMinutes"
CTX_RETAIN_DATA: Final = "stepdag:retainData"  # false: table/buckets deleted on destroy
CTX_OUTPUT_RETENTION_DAYS: Final = "stepdag:outputRetentionDays"
CTX_ALARM_EMAIL: Final = "stepdag:alarmEmail"
CTX_WORKFLOWS_DIR: Final = "stepdag:workflowsDir"

DEFAULT_OUTPUT_RETENTION_DAYS: Final = 30
ACCESS_LOG_RETENTION_DAYS: Final = 90

# --- Stack outputs -------------------------------------------------------------------------
# The ones `stepdag --stack NAME` reads are the deployment contract (stepdag.constants).
OUTPUT_TABLE_NAME: Final = contract.OUTPUT_TABLE_NAME
OUTPUT_BUCKET_NAME: Final = contract.OUTPUT_BUCKET_NAME
OUTPUT_WORKFLOW_MODULES: Final = contract.OUTPUT_WORKFLOW_MODULES
OUTPUT_STATE_MACHINES: Final = contract.OUTPUT_STATE_MACHINES
OUTPUT_NODE_LOG_GROUPS: Final = contract.OUTPUT_NODE_LOG_GROUPS
OUTPUT_ALARM_TOPIC_ARN: Final = "AlarmTopicArn"
OUTPUT_DASHBOARD_NAME: Final = "DashboardName"

# --- REST API (API Gateway -> the API Lambda) ----------------------------------------------
API_ID: Final = "Api"
API_HANDLER: Final = "stepdag.handlers.api.handler"
API_FUNCTION_MEMORY_MB: Final = 512
API_FUNCTION_TIMEOUT_S: Final = 29  # API Gateway's default integration timeout
API_SERVICE_NAME: Final = "stepdag-api"
API_ROUTE_PREFIX: Final = "v1"  # stepdag.api.app.PREFIX, without the slash
API_HEALTH_PATH: Final = "health"  # GET /v1/health, /v1/health/ready (authorized)
API_LIVE_PATH: Final = "live"  # GET /v1/health/live: the one unauthenticated route
API_STAGE_NAME: Final = "prod"
API_THROTTLE_RATE_LIMIT: Final = 50  # steady requests per second, per stage
API_THROTTLE_BURST_LIMIT: Final = 100
API_MIN_COMPRESSION_BYTES: Final = 1024  # gzip responses from this size on
# Environment variable the API function reads: JSON {workflow: alias ARN}.
ENV_STATE_MACHINES: Final = contract.ENV_STATE_MACHINES
# Step Functions actions of the API function: starts on the aliases, the rest on executions.
API_START_ACTIONS: Final[tuple[str, ...]] = ("states:StartExecution",)
API_EXECUTION_ACTIONS: Final[tuple[str, ...]] = (
    "states:DescribeExecution",
    "states:RedriveExecution",
    "states:StopExecution",
)
# The API is on by default; false leaves it out (it sets the account's API Gateway
# CloudWatch role, AWS::ApiGateway::Account, one per account and region).
CTX_API_ENABLED: Final = "stepdag:api"  # false: no REST API
# Optional Cognito user pool authorizer instead of IAM (a user pool ARN).
CTX_API_USER_POOL_ARN: Final = "stepdag:apiUserPoolArn"
# Optional comma-separated origins allowed to call the API from a browser (CORS), e.g. the
# console exported with `stepdag console export` and hosted on S3/CloudFront.
CTX_API_CORS_ORIGINS: Final = "stepdag:apiCorsOrigins"
# Optional OIDC authorizer (any issuer): a TOKEN Lambda authorizer verifying RS256 JWTs.
CTX_API_OIDC_ISSUER: Final = "stepdag:apiOidcIssuer"
CTX_API_OIDC_AUDIENCE: Final = "stepdag:apiOidcAudience"  # comma-separated
CTX_API_OIDC_JWKS_URL: Final = "stepdag:apiOidcJwksUrl"
CTX_API_OIDC_TENANT_CLAIM: Final = "stepdag:apiOidcTenantClaim"  # default "tenant"
CTX_API_OIDC_ROLES_CLAIM: Final = "stepdag:apiOidcRolesClaim"  # default "roles"
# single | multi (default: multi behind a token authorizer, single with IAM).
CTX_API_TENANCY: Final = "stepdag:apiTenancy"
ENV_TENANCY: Final = contract.ENV_TENANCY
# Per-tenant token bucket in the table (on by default in multi-tenant mode; rate 0: off).
CTX_API_TENANT_RATE: Final = "stepdag:apiTenantRatePerSecond"
CTX_API_TENANT_BURST: Final = "stepdag:apiTenantBurst"
DEFAULT_TENANT_RATE_PER_S: Final = 10
DEFAULT_TENANT_BURST: Final = 50
ENV_TENANT_RATE: Final = contract.ENV_TENANT_RATE
ENV_TENANT_BURST: Final = contract.ENV_TENANT_BURST
ENV_PAGINATION_SECRET: Final = contract.ENV_PAGINATION_SECRET
PAGINATION_KEY_ID: Final = "PaginationKey"
PAGINATION_KEY_LENGTH: Final = 64  # characters of [A-Za-z0-9]: ~380 bits
AUTHORIZER_ID: Final = "OidcAuthorizer"
AUTHORIZER_HANDLER: Final = "stepdag.handlers.authorizer.handler"
AUTHORIZER_MEMORY_MB: Final = 256
AUTHORIZER_TIMEOUT_S: Final = 10
AUTHORIZER_SERVICE_NAME: Final = "stepdag-authorizer"
AUTHORIZER_CACHE_TTL_S: Final = 300
ENV_CORS_ORIGINS: Final = contract.ENV_CORS_ORIGINS
OUTPUT_API_URL: Final = "ApiUrl"

# --- Webhook routes (API Gateway -> states:StartExecution, no Lambda) ----------------------
HOOKS_ID: Final = "Hooks"
HOOKS_PATH: Final = "hooks"  # POST /v1/hooks/<workflow>
HOOKS_ROLE_ID: Final = "HooksRole"
HOOKS_PRINCIPAL: Final = "apigateway.amazonaws.com"
HOOKS_START_ACTIONS: Final[tuple[str, ...]] = ("states:StartExecution",)
HOOKS_KEY_HEADER: Final = "Idempotency-Key"  # becomes the execution name

# --- Status recorder (EventBridge status-change events -> the store) -----------------------
STATUS_ID: Final = "StatusEvents"
STATUS_HANDLER: Final = "stepdag.handlers.status.handler"
STATUS_SERVICE_NAME: Final = "stepdag-status"
STATUS_FUNCTION_MEMORY_MB: Final = 256
STATUS_FUNCTION_TIMEOUT_S: Final = 30
STATUS_EXECUTION_ACTIONS: Final[tuple[str, ...]] = ("states:DescribeExecution",)
STATUS_TARGET_RETRY_ATTEMPTS: Final = 10  # EventBridge -> Lambda delivery (throttling)
STATUS_FUNCTION_RETRY_ATTEMPTS: Final = 2  # Lambda's async retries of a failed event
STATUS_DLQ_RETENTION_DAYS: Final = 14  # SQS's maximum: time to redrive after an incident

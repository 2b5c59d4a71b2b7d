"""Names shared by the runtime and the infrastructure code (CDK), importable without boto3.

The DynamoDB table definition lives here, in one place, so the store
(``stepdag.runtime.dynamodb``), its tests and the CDK construct cannot disagree on key
names, indexes or the TTL attribute.  See ``docs/dynamodb.md`` for what each one serves.

So does the deployment contract (the end of this module): the environment variables the
stack sets and the Lambdas and the CLI read, and the stack outputs the CLI's ``--stack``
reads -- one spelling for the writer and every reader (``docs/deployment.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

PK: Final = "PK"
SK: Final = "SK"
TTL_ATTRIBUTE: Final = "ttl"
"""Epoch seconds; DynamoDB deletes the item some time (typically within 48 h) after."""
STARTED_KEY: Final = "started_key"
"""Sort key of every GSI: ``<started_at, offset and zero-padded>#<execution_id>``."""
INDEX_ALL: Final = "by_time"
INDEX_WORKFLOW: Final = "by_workflow"
INDEX_STATUS: Final = "by_status"
INDEX_TENANT: Final = "by_tenant"
INDEXES: Final = {  # index name -> its partition-key attribute (sort key: STARTED_KEY)
    INDEX_ALL: "all_pk",
    INDEX_WORKFLOW: "workflow_pk",
    INDEX_STATUS: "status_pk",
    INDEX_TENANT: "tenant_pk",
}
ALL_EXECUTIONS: Final = "EXECUTIONS"
"""The one ``all_pk`` value: listing every execution newest first needs one partition."""


def table_spec(table_name: str) -> dict[str, Any]:
    """Keyword arguments for ``CreateTable`` (on-demand billing).  TTL is a separate API
    call: see ``stepdag.runtime.dynamodb.create_table`` and :data:`TTL_ATTRIBUTE`."""
    key_attrs = [PK, SK, STARTED_KEY, *INDEXES.values()]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in key_attrs],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": STARTED_KEY, "KeyType": "RANGE"},
                ],
                # ALL: a listing page is served by the index alone, no per-row GetItem.
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, partition in INDEXES.items()
        ],
    }


# --- CORS: the API answering a console on another origin -----------------------------
# Read by the API (stepdag.api.app, the API Lambda's settings) and by the CDK construct
# that answers preflights at the gateway, so the two cannot disagree.
CORS_HEADERS: Final = (
    "Authorization",  # the console's token (Cognito authorizer)
    "Content-Type",
    "Idempotency-Key",
    "X-Amz-Date",  # SigV4, for callers that sign in the browser
    "X-Amz-Security-Token",
)
CORS_MAX_AGE_S: Final = 600
ORIGIN_PATTERN: Final = r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$"
"""scheme://host[:port] and nothing after it: what browsers send in ``Origin``."""

# --- Where runs start: a workflow's state machine (or its version/alias) ARN
# Checked by the API Lambda's settings (``STEPDAG_STATE_MACHINES``) and by the CLI's
# ``--remote aws`` reading the same variable, so the two accept the same values.
SECRET_ARN_PATTERN: Final = (
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$"
)
STATE_MACHINE_ARN_PATTERN: Final = (
    r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}"
    r"(?::[A-Za-z0-9_-]{1,80})?$"
)
"""``arn:<partition>:states:<region>:<account>:stateMachine:<name>[:<version or alias>]``."""


# --- Step Functions status-change events (the status recorder and its EventBridge rule)
STATUS_EVENT_SOURCE: Final = "aws.states"
STATUS_EVENT_DETAIL_TYPE: Final = "Step Functions Execution Status Change"


# --- The deployment contract: environment variables --------------------------------------
# Set by the CDK stack (infra/constructs), read by the Lambdas' settings (handlers/*settings.py)
# and by the CLI's ``--remote aws`` (cli/remote.py), which takes the same values so a shell
# can be configured like the API Lambda.  The table in docs/deployment.md lists them.
ENV_TABLE_NAME: Final = "STEPDAG_TABLE_NAME"
ENV_BUCKET_NAME: Final = "STEPDAG_BUCKET_NAME"
"""The one bucket variable: paired with ``STEPDAG_TABLE_NAME`` and the ``BucketName`` output."""
ENV_OFFLOAD_THRESHOLD: Final = "STEPDAG_OFFLOAD_THRESHOLD_BYTES"
ENV_RETENTION_DAYS: Final = "STEPDAG_RETENTION_DAYS"  # table TTL, = the outputs' lifecycle
ENV_WORKFLOWS: Final = "STEPDAG_WORKFLOWS"  # comma-separated module:attr
ENV_WORKFLOW_MODULES: Final = "STEPDAG_WORKFLOW_MODULES"  # JSON {workflow: "module:attr"}
ENV_WORKFLOWS_DIR: Final = "STEPDAG_WORKFLOWS_DIR"
ENV_STATE_MACHINES: Final = "STEPDAG_STATE_MACHINES"  # JSON {workflow: alias ARN}
ENV_CORS_ORIGINS: Final = "STEPDAG_CORS_ORIGINS"
ENV_TENANCY: Final = "STEPDAG_TENANCY"  # API: "multi" refuses callers without a tenant
ENV_PAGINATION_SECRET: Final = "STEPDAG_PAGINATION_SECRET_ARN"  # API: the token-signing key
ENV_TENANT_RATE: Final = "STEPDAG_TENANT_RATE_PER_S"  # API: per-tenant requests/s (with burst)
ENV_TENANT_BURST: Final = "STEPDAG_TENANT_BURST"  # API: per-tenant bucket size
ENV_OIDC_ISSUER: Final = "STEPDAG_OIDC_ISSUER"  # OIDC authorizer: the token's `iss`
ENV_OIDC_AUDIENCE: Final = "STEPDAG_OIDC_AUDIENCE"  # the token's `aud` (one of)
ENV_OIDC_JWKS_URL: Final = "STEPDAG_OIDC_JWKS_URL"  # the issuer's keys (https)
ENV_OIDC_TENANT_CLAIM: Final = "STEPDAG_OIDC_TENANT_CLAIM"  # default "tenant"
ENV_OIDC_ROLES_CLAIM: Final = "STEPDAG_OIDC_ROLES_CLAIM"  # default "roles"
ENV_LOG_GROUPS: Final = "STEPDAG_LOG_GROUPS"  # CLI only: comma-separated node-runner log groups
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
ENV_POWERTOOLS_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"
ENV_LOG_LEVEL: Final = "LOG_LEVEL"  # what the stack sets; Powertools reads it second

RENAMED_ENV_VARS: Final = {"STEPDAG_BUCKET": ENV_BUCKET_NAME}
"""Names no longer read, and their replacement.  Setting one is an error, not ignored: a
configuration that silently lost its bucket would fail later, on the first offloaded value."""


def renamed_env_vars(environ: Mapping[str, str]) -> list[str]:
    """One problem line per retired variable that is set (non-empty) in ``environ``."""
    return [
        f"{old} is no longer read: set {new} instead"
        for old, new in RENAMED_ENV_VARS.items()
        if environ.get(old, "").strip()
    ]


# --- The deployment contract: stack outputs (infra/stack.py -> `stepdag --stack NAME`) ----
OUTPUT_TABLE_NAME: Final = "TableName"
OUTPUT_BUCKET_NAME: Final = "BucketName"
OUTPUT_WORKFLOW_MODULES: Final = "WorkflowModules"  # JSON {workflow: "module:attr"}
OUTPUT_STATE_MACHINES: Final = "WorkflowStateMachines"
"""JSON ``{workflow: {"stateMachineArn": …, "aliasArn": …}}``; start runs on ``aliasArn``."""
OUTPUT_NODE_LOG_GROUPS: Final = "NodeLogGroups"
"""JSON ``{function id: log group name}``: where the node runners log (``stepdag logs``)."""
STATE_MACHINE_ARN_KEY: Final = "stateMachineArn"
ALIAS_ARN_KEY: Final = "aliasArn"

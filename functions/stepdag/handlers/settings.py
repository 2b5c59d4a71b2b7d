"""Node-runner Lambda settings: environment variables, validated once at cold start.

A misconfigured function should fail its *init* with one message naming every bad
variable, not its first invocation halfway through a workflow run.  Only the format is
checked here (cheap, no imports of user code, no AWS calls); the workflows and the store
are loaded on first invocation (see ``app.py``).

Environment (all optional except the table; "a | b": either name, the first wins; the
names are the deployment contract in ``stepdag.constants``):

    STEPDAG_TABLE_NAME                 DynamoDB table holding execution/node/cache state
    STEPDAG_BUCKET_NAME                S3 bucket for outputs over the offload threshold
                                       (the retired STEPDAG_BUCKET is refused, not ignored)
    STEPDAG_OFFLOAD_THRESHOLD_BYTES    outputs larger than this go to S3 (needs the bucket)
    STEPDAG_RETENTION_DAYS             table items expire after this many days (TTL); set it
                                       no longer than the bucket's lifecycle, or expired
                                       S3 outputs would leave dangling references
    STEPDAG_WORKFLOWS                  comma-separated ``module:attr`` (or ``module``)
    STEPDAG_WORKFLOW_MODULES           or a JSON object ``{"<workflow>": "module:attr"}``
                                       (what the CDK stack sets); names are checked on load
    STEPDAG_WORKFLOWS_DIR              discovery directory when neither of the above is set
    POWERTOOLS_METRICS_NAMESPACE       CloudWatch namespace of the EMF metrics
    POWERTOOLS_SERVICE_NAME            ``service`` of every log line and metric
    POWERTOOLS_LOG_LEVEL | LOG_LEVEL   DEBUG | INFO | WARNING | ERROR | CRITICAL
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stepdag import constants as contract

# The DynamoDB store's bounds: an execution item holds its input *and* output inline, and
# DynamoDB's item limit is 400 KB (stepdag.runtime.dynamodb keeps its own copy; checked
# here so a bad value fails the cold start rather than the first invocation).
MAX_OFFLOAD_THRESHOLD = 150_000
DEFAULT_OFFLOAD_THRESHOLD = 64 * 1024

_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# S3 bucket names: 3-63 chars, lowercase letters, digits, dots and hyphens, starting and
# ending with a letter or digit.  (The finer rules -- no "..", not an IP -- are S3's job.)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# CloudWatch: ASCII alphanumerics and . - _ / # : space; "AWS/" is reserved.
_NAMESPACE = re.compile(r"^[A-Za-z0-9.\-_/#: ]{1,255}$")
_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_WORKFLOW_REF = re.compile(rf"^(?:{_MODULE}|[^:,]+\.py)(?::[A-Za-z_][A-Za-z0-9_]*)?$")
_REF_HINT = "workflow references like 'statemachines.etl:wf'"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Field -> the environment variables it is read from, by precedence; errors name the
# variable the operator actually set.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "table_name": (contract.ENV_TABLE_NAME,),
    "bucket": (contract.ENV_BUCKET_NAME,),
    "offload_threshold": (contract.ENV_OFFLOAD_THRESHOLD,),
    "retention_days": (contract.ENV_RETENTION_DAYS,),
    "workflows": (contract.ENV_WORKFLOWS,),
    "workflow_modules": (contract.ENV_WORKFLOW_MODULES,),
    "workflows_dir": (contract.ENV_WORKFLOWS_DIR,),
    "metrics_namespace": (contract.ENV_POWERTOOLS_METRICS_NAMESPACE,),
    "service_name": (contract.ENV_POWERTOOLS_SERVICE_NAME,),
    # Powertools' own precedence (its Logger reads both).
    "log_level": (contract.ENV_POWERTOOLS_LOG_LEVEL, contract.ENV_LOG_LEVEL),
}


class SettingsError(ValueError):
    """The function's environment is invalid.  Raised at import, i.e. at Lambda init, so
    the deployment fails visibly before any Task runs."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str
    bucket: str | None = None
    offload_threshold: Annotated[int, Field(ge=0, le=MAX_OFFLOAD_THRESHOLD)] = (
        DEFAULT_OFFLOAD_THRESHOLD
    )
    retention_days: Annotated[int, Field(ge=1, le=36_500)] | None = None
    workflows: tuple[str, ...] = ()
    workflow_modules: dict[str, str] = Field(default_factory=dict)
    workflows_dir: Annotated[str, Field(min_length=1)] = "statemachines"
    metrics_namespace: str = "stepdag"
    service_name: Annotated[str, Field(min_length=1)] = "stepdag"
    log_level: LogLevel = "INFO"

    @field_validator("table_name")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("a DynamoDB table name: 3-255 characters of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET.match(value):
            raise ValueError(
                "an S3 bucket name: 3-63 characters of a-z 0-9 . -, "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("metrics_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value) or not value.strip() or value.startswith("AWS/"):
            raise ValueError(
                "a CloudWatch namespace: 1-255 characters of A-Z a-z 0-9 . - _ / # : space, "
                "not starting with 'AWS/'"
            )
        return value

    @field_validator("workflows", mode="before")
    @classmethod
    def _split_workflows(cls, value: Any) -> Any:
        if isinstance(value, str):
            refs = tuple(part.strip() for part in value.split(","))
            bad = [r for r in refs if not _WORKFLOW_REF.match(r)]
            if bad:
                shown = ", ".join(repr(b) for b in bad)
                raise ValueError(f"comma-separated {_REF_HINT}; not valid: {shown}")
            return refs
        return value

    @field_validator("workflow_modules", mode="before")
    @classmethod
    def _parse_modules(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a JSON object {{workflow: module:attr}} ({exc})") from None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise ValueError("a JSON object mapping workflow names to 'module:attr' strings")
        bad = [v for v in parsed.values() if not _WORKFLOW_REF.match(v)]
        if bad:
            raise ValueError(f"{_REF_HINT}; not valid: {', '.join(repr(b) for b in bad)}")
        return parsed

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        # Without a bucket the store keeps every value inline (up to ~350 KB): an explicit
        # threshold would silently do nothing, which is a deployment mistake.
        if "offload_threshold" in self.model_fields_set and self.bucket is None:
            raise ValueError(
                f"{contract.ENV_OFFLOAD_THRESHOLD} is set but no bucket "
                f"({contract.ENV_BUCKET_NAME}) is: outputs over the threshold need a bucket "
                "to be offloaded to"
            )
        if self.workflows and self.workflow_modules:
            raise ValueError(
                f"{contract.ENV_WORKFLOWS} and {contract.ENV_WORKFLOW_MODULES} are both set; "
                "set one"
            )
        return self

    def workflow_refs(self) -> list[tuple[str | None, str]]:
        """(expected workflow name or None, reference) for each configured workflow."""
        if self.workflow_modules:
            return sorted(self.workflow_modules.items())
        return [(None, ref) for ref in self.workflows]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`SettingsError` listing every problem.

    An empty variable counts as unset: infrastructure code often renders "no value" as "".
    """
    env = os.environ if environ is None else environ
    raw, source = read_env(env, ENV_VARS)
    problems = contract.renamed_env_vars(env)
    settings = None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems += _describe(exc, raw, source)
    if problems or settings is None:
        raise SettingsError(
            "invalid node-runner configuration (environment variables):\n  - "
            + "\n  - ".join(problems)
        )
    return settings


def read_env(
    env: Mapping[str, str], fields: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> value, field -> the variable it came from), the first non-empty name of
    each field winning: an empty variable counts as unset."""
    raw: dict[str, str] = {}
    source: dict[str, str] = {}
    for field, names in fields.items():
        given = [(n, env[n]) for n in names if env.get(n, "").strip()]
        if given:
            source[field], raw[field] = given[0]
    return raw, source


def _describe(exc: ValidationError, raw: Mapping[str, str], source: Mapping[str, str]) -> list[str]:
    lines = []
    for err in exc.errors():
        # pydantic prefixes the message of a ValueError raised by a validator.
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule across variables: its message names them
            lines.append(msg)
            continue
        field = str(err["loc"][0])
        if err["type"] == "missing":
            lines.append(f"{ENV_VARS[field][0]} is required but not set")
            continue
        var = source.get(field, ENV_VARS.get(field, (field,))[0])
        shown = repr(raw[field]) if field in raw else "(unset)"
        prefix = "must be " if err["type"] == "value_error" else ""
        lines.append(f"{var}={shown}: {prefix}{msg}")
    return lines

"""API Lambda settings: the node runner's (``settings.py``) plus where runs start.

Validated at import (cold start) like the node runner's, one message naming every bad
variable.  Extra environment:

    STEPDAG_STATE_MACHINES   required: JSON ``{"<workflow>": "<state machine or alias ARN>"}``
                             (the CDK stack sets each workflow's ``live`` alias); every
                             loaded workflow needs one (checked when the app is built)
    STEPDAG_CORS_ORIGINS     optional: comma-separated origins (``https://console.example.com``)
                             whose pages may call the API (the console hosted elsewhere)
    STEPDAG_TENANCY          ``single`` (default) or ``multi``: refuse callers without a
                             tenant (the stack sets ``multi`` behind a token authorizer)
    STEPDAG_TENANT_RATE_PER_S, STEPDAG_TENANT_BURST
                             optional, together: each tenant's token bucket (requests per
                             second, bucket size), kept in the table; 429 beyond it
    STEPDAG_PAGINATION_SECRET_ARN
                             the Secrets Manager secret whose value signs pagination tokens;
                             required by the API function (``required=``), read on its first
                             request, so every instance signs and checks with one key
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from stepdag import constants as contract
from stepdag.api.auth import Tenancy
from stepdag.constants import ORIGIN_PATTERN, SECRET_ARN_PATTERN, STATE_MACHINE_ARN_PATTERN
from stepdag.handlers.settings import ENV_VARS, Settings, SettingsError, read_env
from stepdag.runtime.ratelimit import Limit

_ORIGIN = re.compile(ORIGIN_PATTERN)
_TARGET_ARN = re.compile(STATE_MACHINE_ARN_PATTERN)
_SECRET_ARN = re.compile(SECRET_ARN_PATTERN)

API_ENV_VARS: dict[str, tuple[str, ...]] = {
    **ENV_VARS,
    "state_machines": (contract.ENV_STATE_MACHINES,),
    "cors_origins": (contract.ENV_CORS_ORIGINS,),
    "tenancy": (contract.ENV_TENANCY,),
    "pagination_secret_arn": (contract.ENV_PAGINATION_SECRET,),
    "tenant_rate_per_s": (contract.ENV_TENANT_RATE,),
    "tenant_burst": (contract.ENV_TENANT_BURST,),
}


class ApiSettings(Settings):
    state_machines: dict[str, str]
    cors_origins: tuple[str, ...] = ()
    tenancy: Tenancy = Tenancy.SINGLE
    pagination_secret_arn: str | None = None
    tenant_rate_per_s: float | None = Field(default=None, gt=0)
    tenant_burst: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _rate_and_burst_together(self) -> ApiSettings:
        if (self.tenant_rate_per_s is None) != (self.tenant_burst is None):
            raise ValueError(
                f"{contract.ENV_TENANT_RATE} and {contract.ENV_TENANT_BURST} go together"
            )
        return self

    def rate_limit(self) -> Limit | None:
        if self.tenant_rate_per_s is None or self.tenant_burst is None:
            return None
        return Limit(self.tenant_rate_per_s, self.tenant_burst)

    @field_validator("pagination_secret_arn")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_ARN.match(value):
            raise ValueError("a Secrets Manager secret ARN (arn:aws:secretsmanager:…:secret:…)")
        return value

    @field_validator("tenancy", mode="before")
    @classmethod
    def _parse_tenancy(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text not in {t.value for t in Tenancy}:
            raise ValueError("single or multi")
        return text

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        bad = [v for v in value if not isinstance(v, str) or not _ORIGIN.match(v)]
        if bad:
            shown = ", ".join(repr(b) for b in bad)
            raise ValueError(
                f"origins like https://console.example.com (no path, no '*'); not valid: {shown}"
            )
        return value

    @field_validator("state_machines", mode="before")
    @classmethod
    def _parse_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"a JSON object {{workflow: state machine ARN}} ({exc})") from None
        if not isinstance(value, dict) or not value:
            raise ValueError("a non-empty JSON object mapping workflow names to ARNs")
        bad = [v for v in value.values() if not isinstance(v, str) or not _TARGET_ARN.match(v)]
        if bad:
            shown = ", ".join(repr(b) for b in bad)
            raise ValueError(f"state machine or alias ARNs; not valid: {shown}")
        return value


def load_api_settings(
    environ: Mapping[str, str] | None = None,
    *,
    function: str = "API",
    required: Collection[str] = (),
) -> ApiSettings:
    """Read and validate; raise :class:`SettingsError` listing every problem.

    ``function`` names the Lambda in the message (the status recorder reads these too);
    ``required``: optional fields this function cannot do without.
    """
    env = os.environ if environ is None else environ
    raw, source = read_env(env, API_ENV_VARS)
    problems = contract.renamed_env_vars(env)
    problems += [
        f"{API_ENV_VARS[field][0]} is required but not set"
        for field in required
        if field not in raw
    ]
    settings = None
    try:
        settings = ApiSettings.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not err["loc"]:
                problems.append(msg)
                continue
            field = str(err["loc"][0])
            var = source.get(field, API_ENV_VARS.get(field, (field,))[0])
            if err["type"] == "missing":
                problems.append(f"{var} is required but not set")
            else:
                problems.append(f"{var}={raw.get(field, '(unset)')!r}: {msg}")
    if problems or settings is None:
        raise SettingsError(
            f"invalid {function} configuration (environment variables):\n  - "
            + "\n  - ".join(problems)
        )
    return settings

"""Tenancy closed by construction (issue 14 items 6, 7): the pagination secret and its one
grant, the tenancy mode each authorizer gets, the OIDC authorizer, and the check that no
Cognito app client lets users write the tenant claim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk.assertions import Annotations, Match

from infra import constants as c
from infra.app import build_app
from infra.constructs.api_auth import TenantAttributeGuard, api_auth
from infra.lint import lint_template
from infra.nag import acknowledge
from stepdag import constants as contract
from tests.infra.conftest import FAST, Synthesized, synthesize

USER_POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_Abc123"
OIDC = {
    c.CTX_API_OIDC_ISSUER: "https://idp.example.com/",
    c.CTX_API_OIDC_AUDIENCE: "stepdag-api",
    c.CTX_API_OIDC_JWKS_URL: "https://idp.example.com/.well-known/jwks.json",
    c.CTX_API_OIDC_TENANT_CLAIM: "https://stepdag/tenant",
}


def _env(synth: Synthesized, handler: str) -> dict[str, Any]:
    env: dict[str, Any] = synth.function(handler)[1]["Environment"]["Variables"]
    return env


def test_the_pagination_key_is_generated_at_deploy(synth: Synthesized) -> None:
    (key_id, secret) = next(
        (k, v) for k, v in synth.of_type("AWS::SecretsManager::Secret").items() if "Pagination" in k
    )
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == c.PAGINATION_KEY_LENGTH >= 32
    assert generate["ExcludePunctuation"] is True
    assert "SecretString" not in secret["Properties"]  # never a value in the template
    env = _env(synth, c.API_HANDLER)
    assert env[contract.ENV_PAGINATION_SECRET] == {"Ref": key_id}
    assert env[contract.ENV_TENANCY] == "single"  # IAM: callers carry no tenant
    assert contract.ENV_TENANT_RATE not in env  # the stage throttle is the limit


def test_only_the_api_role_may_read_the_pagination_key(synth: Synthesized) -> None:
    key_id = next(k for k in synth.of_type("AWS::SecretsManager::Secret") if "Pagination" in k)
    api_role = synth.function(c.API_HANDLER)[1]["Role"]["Fn::GetAtt"][0]
    readers = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if key_id in str(statement["Resource"]):
                assert sorted(statement["Action"]) == [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                ]
                readers |= {r["Ref"] for r in policy["Properties"]["Roles"]}
    assert readers == {api_role}
    assert not synth.of_type("AWS::SecretsManager::ResourcePolicy")


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("oidc"), OIDC)


def test_the_oidc_authorizer_guards_every_method(oidc: Synthesized) -> None:
    (authorizer,) = oidc.of_type("AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == "TOKEN"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == c.AUTHORIZER_CACHE_TTL_S
    live = f"/{c.API_ROUTE_PREFIX}/{c.API_HEALTH_PATH}/{c.API_LIVE_PATH}"
    assert oidc.open_methods() == [(live, "GET")]  # the liveness probe, and only it
    for key, method in oidc.methods().items():
        if key[1] != "OPTIONS" and key != (live, "GET"):
            assert method["AuthorizationType"] == "CUSTOM", key
    assert oidc.stack.api is not None and oidc.stack.api.hooks is None  # no IAM-only routes
    env = _env(oidc, c.AUTHORIZER_HANDLER)
    assert env[contract.ENV_OIDC_ISSUER] == OIDC[c.CTX_API_OIDC_ISSUER]
    assert env[contract.ENV_OIDC_AUDIENCE] == "stepdag-api"
    assert env[contract.ENV_OIDC_JWKS_URL].startswith("https://")
    assert env[contract.ENV_OIDC_TENANT_CLAIM] == "https://stepdag/tenant"
    assert env[contract.ENV_OIDC_ROLES_CLAIM] == "roles"
    api_env = _env(oidc, c.API_HANDLER)
    assert api_env[contract.ENV_TENANCY] == "multi"
    # Multi-tenant: each tenant's token bucket is on by default.
    assert api_env[contract.ENV_TENANT_RATE] == str(c.DEFAULT_TENANT_RATE_PER_S)
    assert api_env[contract.ENV_TENANT_BURST] == str(c.DEFAULT_TENANT_BURST)


def test_the_oidc_authorizer_role_touches_no_data(oidc: Synthesized) -> None:
    actions = set()
    for statement in oidc.role_statements(c.AUTHORIZER_HANDLER):
        actions |= set(
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }


def test_the_oidc_stack_passes_cdk_nag_and_cfn_lint(oidc: Synthesized) -> None:
    assert oidc.nag_findings() == []
    assert lint_template(oidc.template_path) == []
    names = {a["Properties"]["AlarmName"] for a in oidc.of_type("AWS::CloudWatch::Alarm").values()}
    assert any("ApiAuthorizer" in n for n in names)  # its errors and throttles are alarmed


def _rate(context: dict[str, Any]) -> tuple[float, int] | None:
    app = App(context=context)
    return api_auth(Stack(app, "S").node).tenant_rate


def test_tenant_rate_limits_default_on_in_multi_tenant_mode() -> None:
    assert _rate({}) is None
    assert _rate({c.CTX_API_TENANT_RATE: "5", c.CTX_API_TENANT_BURST: "7"}) == (5.0, 7)
    assert _rate({c.CTX_API_USER_POOL_ARN: USER_POOL}) == (
        c.DEFAULT_TENANT_RATE_PER_S,
        c.DEFAULT_TENANT_BURST,
    )
    assert _rate({c.CTX_API_USER_POOL_ARN: USER_POOL, c.CTX_API_TENANT_RATE: "0"}) is None
    for bad in ({c.CTX_API_TENANT_RATE: "fast"}, {c.CTX_API_TENANT_RATE: "-1"}):
        with pytest.raises(ValueError, match=c.CTX_API_TENANT_RATE):
            _rate(bad)


def _mode(context: dict[str, Any]) -> str:
    app = App(context=context)
    return api_auth(Stack(app, "S").node).tenancy.value


def test_tenancy_defaults_to_multi_behind_a_token_authorizer() -> None:
    assert _mode({}) == "single"
    assert _mode({c.CTX_API_USER_POOL_ARN: USER_POOL}) == "multi"
    assert _mode(OIDC) == "multi"
    assert _mode({c.CTX_API_USER_POOL_ARN: USER_POOL, c.CTX_API_TENANCY: "single"}) == "single"
    for bad, message in (
        ({c.CTX_API_TENANCY: "multi"}, "needs a token authorizer"),
        ({c.CTX_API_TENANCY: "many"}, "single or multi"),
        ({**OIDC, c.CTX_API_USER_POOL_ARN: USER_POOL}, "choose one authorizer"),
        ({c.CTX_API_OIDC_ISSUER: "https://idp/"}, "also needs"),
        ({**OIDC, c.CTX_API_OIDC_JWKS_URL: "http://idp/jwks"}, "an https URL"),
        ({c.CTX_API_USER_POOL_ARN: "pool"}, "not a Cognito user pool ARN"),
    ):
        with pytest.raises(ValueError, match=message):
            _mode(bad)


def _client_errors(**client: Any) -> list[Any]:
    app = App()
    stack = Stack(app, "Pool")
    pool = cognito.UserPool(stack, "Users", custom_attributes={"tenant": cognito.StringAttribute()})
    pool.add_client("Client", **client)

    Aspects.of(app).add(TenantAttributeGuard())
    app.synth()
    return list(
        Annotations.from_stack(stack).find_error("*", Match.string_like_regexp("custom:tenant"))
    )


def test_an_app_client_that_lets_users_write_the_tenant_fails_synthesis() -> None:
    assert len(_client_errors()) == 1  # Cognito's default: every attribute writable
    writable_tenant = cognito.ClientAttributes().with_custom_attributes("tenant")
    assert len(_client_errors(write_attributes=writable_tenant)) == 1
    safe = cognito.ClientAttributes().with_standard_attributes(fullname=True, email=True)
    assert _client_errors(write_attributes=safe) == []


def test_the_stack_checks_app_clients_defined_beside_it(tmp_path: Path) -> None:
    """The guard is on the whole app: a pool added next to the stack is checked too."""
    _app, stack = build_app({**FAST, c.CTX_API_USER_POOL_ARN: USER_POOL}, outdir=str(tmp_path))
    pool = cognito.UserPool(stack, "Users")
    pool.add_client("Console")
    for rule in ("AwsSolutions-COG1", "AwsSolutions-COG2", "AwsSolutions-COG8"):
        acknowledge(pool, rule, "a test pool: only its app client's settings matter here")
    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("custom:tenant")
    )
    assert len(errors) == 1

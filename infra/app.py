"""CDK app entry point (``cdk.json``: ``python -m infra.app``).

Builds one ``StepdagStack`` from every workflow in ``statemachines/`` and checks it with
cdk-nag's AWS Solutions pack, registered as a CDK policy-validation plugin: any
unacknowledged finding fails ``cdk synth``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import Settings
from infra.stack import StepdagStack
from infra.workflows import load_workflows

REPO_ROOT = Path(__file__).resolve().parent.parent


# CDK feature flags this app relies on (cdk.json is only read by the CDK CLI, so they live
# here to hold for `python -m infra.app` and the tests too; context can still override).
FEATURE_FLAGS: dict[str, Any] = {
    # Grant S3 server-access-log delivery by bucket policy, not the legacy ACL, so both
    # buckets can keep ObjectOwnership=BucketOwnerEnforced (ACLs disabled).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    # Merge IAM statements: smaller policies, fewer near-duplicate cdk-nag findings.
    "@aws-cdk/aws-iam:minimizePolicies": True,
}


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    builtin_validation: bool = True,
) -> tuple[cdk.App, StepdagStack]:
    """The app and its one stack; ``context`` overrides cdk.json (tests use this).

    ``builtin_validation=False`` skips CDK's built-in CloudFormation validation plugin
    (about 30 s per synth); the tests run cfn-lint on the template instead. cdk-nag runs
    either way.
    """
    app = cdk.App(
        context={**FEATURE_FLAGS, **(context or {})},
        outdir=outdir,
        builtin_cloud_formation_validation=builtin_validation,
    )
    settings = Settings.from_context(app.node)
    workflows_dir = Path(settings.workflows_dir)
    if not workflows_dir.is_absolute():
        workflows_dir = REPO_ROOT / workflows_dir
    settings = replace(settings, workflows_dir=str(workflows_dir))
    stack = StepdagStack(
        app, settings.stack_name, workflows=load_workflows(workflows_dir), settings=settings
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    # Under the CDK CLI, CDK_OUTDIR names the cloud assembly dir; run directly
    # (`python -m infra.app`), write to ./cdk.out instead of a throwaway temp dir.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out")
    app, _ = build_app(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()

"""Node-runner code asset, bundled WITHOUT Docker.

The asset is the ``stepdag`` package + the workflow modules + third-party wheels for
Lambda's arm64 Linux. ``pip install --platform manylinux2014_aarch64 --only-binary=:all:``
fetches wheels built for the target whatever machine runs ``cdk synth``, so no container
(and no cross-compiling) is needed; a dependency without such a wheel fails the synth loudly
rather than shipping a host-architecture build.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import constants as c

# The Lambda runtime the wheels are fetched for (constants.LAMBDA_PYTHON_VERSION).
RUNTIME = lambda_.Runtime.PYTHON_3_14

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "functions" / "stepdag"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache")


def lambda_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """Runtime requirements of the node runner, from pyproject (one source of truth).

    The core dependencies plus the ``aws`` extra, minus the CLI-only ones.
    """
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"].get("aws", [])]
    return [req for req in wanted if _dist_name(req) not in c.LAMBDA_EXCLUDED_REQUIREMENTS]


def _dist_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    return (match.group(0) if match else requirement).lower().replace("_", "-")


def _source_files(workflows_dir: Path) -> list[Path]:
    files = [p for p in sorted(PACKAGE_DIR.rglob("*")) if p.is_file() and _keep(p)]
    files += sorted(p for p in workflows_dir.glob("*.py"))
    return files


def _keep(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


def asset_hash(workflows_dir: Path, requirements: Sequence[str]) -> str:
    """Hash of everything that goes into the zip, so unchanged code re-uses the bundle.

    Hashing the inputs (not the output dir) lets CDK skip pip entirely on a re-synth.
    """
    digest = hashlib.sha256()
    for item in (c.LAMBDA_PYTHON_VERSION, c.LAMBDA_WHEEL_PLATFORM, *requirements):
        digest.update(item.encode() + b"\0")
    for path in _source_files(workflows_dir):
        rel = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundler:
    """``ILocalBundling`` that pip-installs target wheels and copies the sources."""

    def __init__(self, *, workflows_dir: Path, requirements: Sequence[str]) -> None:
        self.workflows_dir = workflows_dir
        self.requirements = list(requirements)

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        out = Path(output_dir)
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # .pyc for the host interpreter would be dead weight
            "--platform",
            c.LAMBDA_WHEEL_PLATFORM,
            "--implementation",
            "cp",
            "--python-version",
            c.LAMBDA_PYTHON_VERSION,
            "--only-binary=:all:",
            "--target",
            str(out),
            *self.requirements,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Raising (not returning False) on purpose: False would fall back to Docker,
            # which this project does not use; the pip error is the useful message.
            raise RuntimeError(
                "bundling the node-runner dependencies failed:\n"
                f"  {' '.join(command)}\n{result.stdout}{result.stderr}"
            )
        shutil.copytree(PACKAGE_DIR, out / "stepdag", ignore=_IGNORE, dirs_exist_ok=True)
        target = out / self.workflows_dir.name
        target.mkdir(exist_ok=True)
        for module in self.workflows_dir.glob("*.py"):
            shutil.copy2(module, target / module.name)
        return True


def node_runner_code(*, workflows_dir: Path, skip_bundling: bool) -> lambda_.Code:
    """The code asset shared by every node-runner function."""
    if skip_bundling:
        # Fast path for unit tests: the source tree as-is (no wheels, not runnable).
        return lambda_.Code.from_asset(
            str(PACKAGE_DIR.parent), exclude=["*.egg-info", "**/__pycache__", "**/*.pyc"]
        )
    requirements = lambda_requirements()
    return lambda_.Code.from_asset(
        str(PACKAGE_DIR.parent),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(workflows_dir, requirements),
        bundling=cdk.BundlingOptions(
            # Required by the API but never pulled: local bundling always succeeds or
            # raises, so Docker is not needed on the synth machine.
            image=RUNTIME.bundling_image,
            local=PipLocalBundler(workflows_dir=workflows_dir, requirements=requirements),
        ),
    )

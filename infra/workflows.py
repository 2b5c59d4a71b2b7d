"""Workflows to deploy: discovered in ``statemachines/``, deployed from the COMMITTED ASL.

The CDK app never deploys a definition it compiled on the fly: what was reviewed in git is
what runs. Compiling here only proves the committed ``<workflow>.asl.json`` is current (a
stale file fails synth with the command that fixes it) and tells which node-runner function
each placeholder needs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepdag.core.compile import compile_dag, function_placeholder
from stepdag.core.loader import discover
from stepdag.core.model import LambdaConfig

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class StaleDefinitionError(RuntimeError):
    """The committed ASL is missing, stale, or uses a placeholder the infra cannot fill."""


@dataclass(frozen=True)
class WorkflowSpec:
    """One deployable workflow, as the infra needs it."""

    name: str
    ref: str  # module:attr the node runner imports
    asl_path: Path
    definition_text: str
    nodes: tuple[str, ...]
    # substitution key (placeholder without ``${}``) -> Lambda size it stands for
    functions: Mapping[str, LambdaConfig]

    @property
    def definition(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.definition_text)
        return loaded

    @property
    def definition_sha256(self) -> str:
        return hashlib.sha256(self.definition_text.encode()).hexdigest()

    @property
    def placeholders(self) -> frozenset[str]:
        return placeholders_in(self.definition_text)


def placeholders_in(text: str) -> frozenset[str]:
    """Substitution keys (``NodeRunnerFunctionArn``) used by an ASL document."""
    return frozenset(PLACEHOLDER_RE.findall(text))


def substitution_key(placeholder: str) -> str:
    """``${NodeRunnerFunctionArn}`` -> ``NodeRunnerFunctionArn``."""
    match = PLACEHOLDER_RE.fullmatch(placeholder)
    if match is None:
        raise ValueError(f"not a definition placeholder: {placeholder!r}")
    return match.group(1)


def load_workflows(directory: str | Path) -> list[WorkflowSpec]:
    """Every workflow in ``directory`` with its committed, up-to-date ASL."""
    specs: list[WorkflowSpec] = []
    seen: dict[str, str] = {}
    for loaded in discover(directory):
        dag = loaded.workflow.build()
        if dag.workflow in seen:
            raise StaleDefinitionError(
                f"workflow name {dag.workflow!r} is defined twice ({seen[dag.workflow]} and "
                f"{loaded.ref}); state machine names must be unique"
            )
        seen[dag.workflow] = loaded.ref
        folder = loaded.source.parent if loaded.source else Path(directory)
        asl_path = (folder / f"{dag.workflow}.asl.json").resolve()
        if not asl_path.is_file():
            raise StaleDefinitionError(
                f"{asl_path} is missing: run `stepdag compile` and commit the result"
            )
        committed = asl_path.read_text()
        # The CLI compiles with the "sp" strategy by default; "levels" is the opt-in one.
        if all(compile_dag(dag, strategy=s).to_json() != committed for s in ("sp", "levels")):
            raise StaleDefinitionError(
                f"{asl_path} is stale (it does not match {loaded.ref}): run `stepdag compile` "
                "and commit the result"
            )
        functions = {
            substitution_key(function_placeholder(node.options.lambda_config)): (
                node.options.lambda_config
            )
            for node in dag.nodes.values()
        }
        unknown = placeholders_in(committed) - functions.keys()
        if unknown:
            raise StaleDefinitionError(
                f"{asl_path} uses placeholders no node-runner function serves: {sorted(unknown)}"
            )
        # Only placeholders actually present in the ASL get a function.
        used = {k: v for k, v in functions.items() if k in placeholders_in(committed)}
        specs.append(
            WorkflowSpec(
                name=dag.workflow,
                ref=loaded.ref,
                asl_path=asl_path,
                definition_text=committed,
                nodes=tuple(dag.nodes),
                functions=used,
            )
        )
    if not specs:
        raise StaleDefinitionError(f"no workflows found in {str(directory)!r}")
    return specs


def function_configs(specs: list[WorkflowSpec]) -> dict[str, LambdaConfig]:
    """Distinct node-runner functions across all workflows, keyed by substitution key."""
    out: dict[str, LambdaConfig] = {}
    for spec in specs:
        out.update(spec.functions)
    return dict(sorted(out.items()))

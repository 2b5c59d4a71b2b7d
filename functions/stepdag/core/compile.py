"""DAG → Amazon States Language (JSONPath), as a pure function.

``compile_dag(dag, targets)`` takes every deployment-specific value (the node-runner
function ARN placeholder) as an argument and returns a plain dict; nothing here reads
configuration or builds AWS clients.

Only pointers travel through the state machine: each Task sends the node runner
``{workflow, node, execution, attempt[, index][, params]}`` and gets back
``{node, status}``; node data lives in the ExecutionStore. That keeps every run under
Step Functions' 256 KB payload limit whatever the nodes return.

Shape of one node ("block"); state names are node names so the console reads like the DAG:

    plain        <node>                                    Task
    conditional  <node>.when → <node>.choice → <node> | <node>.skipped
    map          <node>.plan → <node> (Map; inner Task <node>.item) → <node>.gather
    continue     Catch → <node>.failed (records the failure, then carries on)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stepdag.core.compile_jsonata import to_jsonata
from stepdag.core.errors import CompileError, StepdagInvalidInput, StepdagInvalidOutput
from stepdag.core.graph import Leaf, Par, Seq, Tree, level_decompose, sp_decompose
from stepdag.core.model import LAMBDA_TRANSIENT_ERRORS, Dag, LambdaConfig, Node, enum_value

MAX_STATE_NAME = 80
MAX_DEFINITION_BYTES = 1_048_576
MAX_HISTORY_EVENTS = 25_000
DEFAULT_FUNCTION_PLACEHOLDER = "${NodeRunnerFunctionArn}"

# Deterministic failures: retrying cannot help, so they bypass every user retrier.
NON_RETRYABLE_ERRORS: tuple[str, ...] = (
    StepdagInvalidInput.__name__,
    StepdagInvalidOutput.__name__,
)

Strategy = Literal["sp", "levels"]
ASL = dict[str, Any]


def function_placeholder(config: LambdaConfig) -> str:
    """Substitution placeholder for the node-runner function serving ``config``.

    Nodes with the default Lambda size share one function; each other (memory, timeout)
    pair gets its own placeholder, which the CDK construct maps to its own function.
    """
    if config == LambdaConfig():
        return DEFAULT_FUNCTION_PLACEHOLDER
    return "${NodeRunner" + f"{config.memory_mb}mb{config.timeout_s}s" + "FunctionArn}"


@dataclass(frozen=True)
class Targets:
    """Where Tasks point. ``resource`` maps a node to its Task ``Resource`` string."""

    resource: Callable[[Node], str] = field(
        default=lambda node: function_placeholder(node.options.lambda_config)
    )


@dataclass(frozen=True)
class Compiled:
    definition: ASL
    tree: Tree
    warnings: tuple[str, ...]
    estimated_history_events: int

    def to_json(self) -> str:
        return to_json(self.definition)


def to_json(definition: Mapping[str, Any]) -> str:
    """Canonical text: sorted keys, 2-space indent, trailing newline — stable diffs."""
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def compile_dag(
    dag: Dag,
    targets: Targets | None = None,
    *,
    strategy: Strategy = "sp",
    query_language: str | None = None,
) -> Compiled:
    """``query_language`` (default: the workflow's) picks the ASL query language."""
    targets = targets or Targets()
    preds = dag.preds
    tree = sp_decompose(preds) if strategy == "sp" else level_decompose(preds)
    builder = _Builder(dag, targets)
    start, exits, states = builder.block(tree)
    for name in exits:
        states[name]["End"] = True
    definition: ASL = {
        "Comment": f"stepdag workflow {dag.workflow!r}"
        + (f": {dag.description}" if dag.description else ""),
        "StartAt": start,
        "States": states,
    }
    if (query_language or dag.query_language) == "JSONata":
        definition = to_jsonata(definition)
    check_definition(definition)
    events = estimate_history_events(dag)
    warnings = []
    if events > MAX_HISTORY_EVENTS:
        warnings.append(
            f"workflow {dag.workflow!r}: a run could record about {events:,} history events "
            f"(Step Functions Standard stops at {MAX_HISTORY_EVENTS:,}); lower max_items/"
            "retries or split the workflow"
        )
    return Compiled(definition, tree, tuple(warnings), events)


class _Builder:
    def __init__(self, dag: Dag, targets: Targets) -> None:
        self.dag = dag
        self.targets = targets
        self.names: set[str] = set()

    # Each block returns (entry state, states whose Next is still open, states).
    Block = tuple[str, list[str], dict[str, ASL]]

    def block(self, tree: Tree) -> _Builder.Block:
        if isinstance(tree, Leaf):
            return self.node_block(self.dag[tree.node])
        if isinstance(tree, Seq):
            return self.seq_block(tree)
        return self.par_block(tree)

    def seq_block(self, tree: Seq) -> _Builder.Block:
        states: dict[str, ASL] = {}
        entry: str | None = None
        open_exits: list[str] = []
        for part in tree.parts:
            start, exits, sub = self.block(part)
            states.update(sub)
            for name in open_exits:
                _set_next(states[name], start)
            entry = entry or start
            open_exits = exits
        assert entry is not None
        return entry, open_exits, states

    def par_block(self, tree: Par) -> _Builder.Block:
        branches = []
        firsts = []
        for branch in tree.branches:
            start, exits, sub = self.block(branch)
            for name in exits:
                sub[name]["End"] = True
            branches.append({"StartAt": start, "States": sub})
            firsts.append(next(iter(_leaf_names(branch))))
        name = self.unique("parallel." + "+".join(firsts))
        # ResultPath null: branch outputs are only {node, status} pointers; passing the
        # input through keeps the state small and its shape stable.
        state: ASL = {"Type": "Parallel", "Branches": branches, "ResultPath": None}
        return name, [name], {name: state}

    def node_block(self, node: Node) -> _Builder.Block:
        states: dict[str, ASL] = {}
        if node.is_map:
            entry, exits = self.map_states(node, states)
        else:
            task = self.task(node, "run")
            name = self.unique(node.name)
            states[name] = task
            entry, exits = name, [name]
        if node.options.continue_on_failure:
            failed = self.unique(f"{node.name}.failed")
            states[failed] = self.task(node, "record_failure", retry=False)
            states[failed]["Parameters"].update({"error.$": "$.Error", "cause.$": "$.Cause"})
            for name in [s for s in states if s != failed and states[s]["Type"] in ("Task", "Map")]:
                states[name]["Catch"] = [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": failed}
                ]
            exits = [*exits, failed]
        if node.is_conditional:
            when, choice, skipped = (
                self.unique(f"{node.name}.when"),
                self.unique(f"{node.name}.choice"),
                self.unique(f"{node.name}.skipped"),
            )
            states[when] = {**self.task(node, "condition"), "Next": choice}
            states[choice] = {
                "Type": "Choice",
                "Choices": [{"Variable": "$.run", "BooleanEquals": True, "Next": entry}],
                "Default": skipped,
            }
            # The runner already recorded the skip when it evaluated the condition.
            states[skipped] = {"Type": "Pass", "Result": {"node": node.name, "status": "SKIPPED"}}
            entry, exits = when, [*exits, skipped]
        return entry, exits, states

    def map_states(self, node: Node, states: dict[str, ASL]) -> tuple[str, list[str]]:
        plan, mapped, gather = (
            self.unique(f"{node.name}.plan"),
            self.unique(node.name),
            self.unique(f"{node.name}.gather"),
        )
        item = self.unique(f"{node.name}.item")
        states[plan] = {**self.task(node, "plan"), "Next": mapped}
        states[plan]["ResultSelector"] = {"items.$": "$.items"}
        item_task = self.task(node, "item")
        item_task["Parameters"]["index.$"] = "$.index"
        item_task["End"] = True
        mapped_state: ASL = {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"index.$": "$$.Map.Item.Index"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": item,
                "States": {item: item_task},
            },
            "MaxConcurrency": node.options.max_concurrency,
            "ResultPath": None,
            "Next": gather,
        }
        states[mapped] = mapped_state
        states[gather] = self.task(node, "gather", retry=False)
        return plan, [gather]

    def task(self, node: Node, phase: str, *, retry: bool = True) -> ASL:
        params: ASL = {
            "workflow": self.dag.workflow,
            "node": node.name,
            "phase": phase,
            "execution.$": "$$.Execution.Id",
            "attempt.$": "$$.State.RetryCount",
        }
        if node.takes_input and phase in ("run", "item", "plan", "condition"):
            params["params.$"] = "$$.Execution.Input"
        state: ASL = {
            "Type": "Task",
            "Resource": self.targets.resource(node),
            "Parameters": params,
            "Retry": self.retriers(node, user=retry and phase in ("run", "item")),
        }
        if node.options.timeout is not None and phase in ("run", "item"):
            state["TimeoutSeconds"] = node.options.timeout
        return state

    @staticmethod
    def retriers(node: Node, *, user: bool) -> list[ASL]:
        out: list[ASL] = [
            {"ErrorEquals": list(NON_RETRYABLE_ERRORS), "MaxAttempts": 0},
            {
                "ErrorEquals": list(LAMBDA_TRANSIENT_ERRORS),
                "IntervalSeconds": 1,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
            },
        ]
        r = node.options.retry
        if user and r is not None and r.max_attempts > 1:
            rule: ASL = {
                "ErrorEquals": list(r.error_names),
                "IntervalSeconds": r.interval,
                "MaxAttempts": r.max_attempts - 1,
                "BackoffRate": float(r.backoff_rate),
            }
            if r.max_delay is not None:
                rule["MaxDelaySeconds"] = r.max_delay
            jitter = enum_value(r.jitter)
            if jitter != "NONE":
                rule["JitterStrategy"] = jitter
            out.append(rule)
        return out

    def unique(self, name: str) -> str:
        if len(name) > MAX_STATE_NAME:
            digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
            name = name[: MAX_STATE_NAME - 10] + "~" + digest
        base, n = name, 1
        while name in self.names:
            n += 1
            name = f"{base[: MAX_STATE_NAME - 4]}.{n}"
        self.names.add(name)
        return name


def _leaf_names(tree: Tree) -> list[str]:
    from stepdag.core.graph import leaves

    return list(leaves(tree))


def _set_next(state: ASL, target: str) -> None:
    state.pop("End", None)
    state["Next"] = target


# ---------------------------------------------------------------- AWS limits


def check_definition(definition: Mapping[str, Any]) -> None:
    """Step Functions' structural rules that the compiler must never break."""
    problems: list[str] = []
    seen: dict[str, str] = {}

    def walk(machine: Mapping[str, Any], where: str) -> None:
        states = machine["States"]
        if machine["StartAt"] not in states:
            problems.append(f"{where}: StartAt {machine['StartAt']!r} is not a state")
        for name, state in states.items():
            if len(name) > MAX_STATE_NAME:
                problems.append(f"state name longer than {MAX_STATE_NAME}: {name!r}")
            if name in seen:
                problems.append(f"state name {name!r} used twice ({seen[name]} and {where})")
            seen[name] = where
            targets = [state.get("Next"), state.get("Default")]
            targets += [c.get("Next") for c in state.get("Choices", [])]
            targets += [c.get("Next") for c in state.get("Catch", [])]
            for t in targets:
                if t is not None and t not in states:
                    problems.append(f"{where}.{name}: Next target {t!r} does not exist")
            terminal = state["Type"] in ("Succeed", "Fail", "Choice") or state.get("End")
            if not terminal and "Next" not in state:
                problems.append(f"{where}.{name}: neither Next nor End")
            for i, branch in enumerate(state.get("Branches", [])):
                walk(branch, f"{where}.{name}[{i}]")
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"], f"{where}.{name}")

    walk(definition, "States")
    size = len(json.dumps(definition, separators=(",", ":")).encode())
    if size >= MAX_DEFINITION_BYTES:
        problems.append(f"definition is {size:,} bytes; Step Functions accepts < 1 MiB")
    if problems:
        raise CompileError(
            "compiled definition breaks Step Functions rules:\n  - " + "\n  - ".join(problems)
        )


# ---------------------------------------------------------------- estimates


# History events one successful state writes (entered/exited + its own lifecycle).
_TASK_EVENTS = 5  # StateEntered, Scheduled, Started, Succeeded, StateExited
_RETRY_EVENTS = 3  # Scheduled, Started, Failed per extra attempt


def estimate_history_events(dag: Dag) -> int:
    """Worst-case history events for one run, using declared retries and fan-out."""
    total = 2  # ExecutionStarted, ExecutionSucceeded/Failed
    for node in dag.nodes.values():
        retries = (node.options.retry.max_attempts - 1) if node.options.retry else 0
        per_task = _TASK_EVENTS + retries * _RETRY_EVENTS
        if node.is_map:
            items = node.options.max_items or 0
            total += 2 * _TASK_EVENTS + 4 + items * (per_task + 2)  # plan, gather, Map, items
        else:
            total += per_task
        if node.is_conditional:
            total += _TASK_EVENTS + 2
    total += 6 * len(dag.nodes)  # Parallel states: at most one per node, ~6 events each
    return total

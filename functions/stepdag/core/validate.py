"""Workflow validation: a registry of small named checks that collect every problem.

Each check is a function ``(ctx) -> Iterable[Problem]`` registered with ``@check``.
All checks run; ``validate_specs`` raises one ``DagValidationError`` listing every
problem, each naming workflow, node and parameter. Checks that need an acyclic graph
declare ``needs_acyclic`` and are skipped (not failed) when a cycle was found, so one
cycle does not drown the report in follow-on noise.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stepdag.core import types as T
from stepdag.core.errors import DagValidationError, Problem
from stepdag.core.model import (
    PARAMS,
    Cache,
    Dag,
    Jitter,
    Node,
    NodeSpec,
    Param,
    ParamKind,
    Retry,
    UpstreamSkipped,
    enum_value,
    resolve_hints,
)
from stepdag.core.triggers import ScheduleTrigger, Trigger, trigger_problems

# Step Functions allows 80 characters per state name; node blocks add suffixes such as
# ".choice"/".skipped"/".gather", so node names are capped lower to always fit.
NODE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
WORKFLOW_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass
class Context:
    workflow: str
    specs: Sequence[NodeSpec]
    nodes: dict[str, Node]
    cycle: list[str] | None = None
    triggers: Sequence[Trigger] = ()
    problems: list[Problem] = field(default_factory=list)

    def problem(
        self, check: str, message: str, node: str | None = None, parameter: str | None = None
    ) -> Problem:
        return Problem(check, message, self.workflow, node, parameter)


CheckFn = Callable[[Context], Iterable[Problem]]


@dataclass(frozen=True)
class Check:
    name: str
    fn: CheckFn
    needs_acyclic: bool


CHECKS: list[Check] = []


def check(name: str, *, needs_acyclic: bool = False) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(name, fn, needs_acyclic))
        return fn

    return register


# ---------------------------------------------------------------- building nodes


def _build_node(spec: NodeSpec, names: set[str]) -> Node:
    hints = resolve_hints(spec.fn)
    params: list[Param] = []
    for p in inspect.signature(spec.fn).parameters.values():
        ann = hints.get(p.name, Any)
        if p.name == PARAMS:
            kind = ParamKind.INPUT
        elif p.name in names and p.name != spec.name:
            kind = ParamKind.UPSTREAM
        else:
            kind = ParamKind.UNRESOLVED
        params.append(Param(p.name, ann, kind, p.default is not inspect.Parameter.empty))
    when_params: tuple[str, ...] = ()
    if spec.options.when is not None and callable(spec.options.when):
        # Builtins such as ``bool`` have no inspectable signature: reported by a check.
        with contextlib.suppress(ValueError, TypeError):
            when_params = tuple(inspect.signature(spec.options.when).parameters)
    return Node(
        name=spec.name,
        fn=spec.fn,
        params=tuple(params),
        returns=hints.get("return", Any),
        options=spec.options,
        data_deps=tuple(p.name for p in params if p.kind is ParamKind.UPSTREAM),
        # A condition's inputs must exist before it is evaluated: they are implicit
        # order-only dependencies, so users need not repeat them in after=.
        order_deps=tuple(spec.options.after) + tuple(p for p in when_params if p in names),
        when_params=when_params,
    )


def validate_specs(
    workflow: str,
    specs: Sequence[NodeSpec],
    *,
    description: str = "",
    triggers: Sequence[Trigger] = (),
) -> Dag:
    names = {s.name for s in specs}
    nodes: dict[str, Node] = {}
    for spec in specs:
        nodes.setdefault(spec.name, _build_node(spec, names))  # duplicates reported below
    ctx = Context(workflow, specs, nodes, triggers=tuple(triggers))
    from stepdag.core.graph import find_cycle

    ctx.cycle = find_cycle({n: [d for d in node.deps if d in nodes] for n, node in nodes.items()})
    for chk in CHECKS:
        if chk.needs_acyclic and ctx.cycle is not None:
            continue
        try:
            ctx.problems.extend(chk.fn(ctx))
        except Exception as exc:  # a value so malformed that a check could not inspect it
            ctx.problems.append(
                ctx.problem(chk.name, f"could not be checked ({type(exc).__name__}: {exc})")
            )
    if ctx.problems:
        raise DagValidationError(workflow, ctx.problems)
    return Dag(workflow, nodes, description)


# ---------------------------------------------------------------- the checks


@check("workflow-name")
def _workflow_name(ctx: Context) -> Iterable[Problem]:
    if not WORKFLOW_NAME_RE.match(ctx.workflow):
        yield ctx.problem(
            "workflow-name",
            "workflow names must start with a letter and use only letters, digits, '-' and "
            "'_' (at most 64 characters), because they name the Step Functions state machine",
        )


@check("empty")
def _empty(ctx: Context) -> Iterable[Problem]:
    if not ctx.specs:
        yield ctx.problem("empty", "the workflow has no nodes; add one with @wf.node")


@check("duplicate-node")
def _duplicates(ctx: Context) -> Iterable[Problem]:
    seen: dict[str, NodeSpec] = {}
    for spec in ctx.specs:
        if spec.name in seen:
            first = seen[spec.name].fn
            yield ctx.problem(
                "duplicate-node",
                f"node name defined twice (first by {_where(first)}, again by "
                f"{_where(spec.fn)}); node names must be unique",
                node=spec.name,
            )
        else:
            seen[spec.name] = spec


@check("node-name")
def _node_names(ctx: Context) -> Iterable[Problem]:
    for name in ctx.nodes:
        if name == PARAMS:
            yield ctx.problem(
                "node-name", f"{PARAMS!r} is reserved for the execution input", node=name
            )
        elif not NODE_NAME_RE.match(name):
            yield ctx.problem(
                "node-name",
                "node names become Step Functions state names: start with a letter, use only "
                "letters, digits, '-' and '_', at most 64 characters",
                node=name,
            )


@check("unknown-node")
def _unknown(ctx: Context) -> Iterable[Problem]:
    for node in ctx.nodes.values():
        for dep in node.order_deps:
            if dep not in ctx.nodes:
                yield ctx.problem("unknown-node", f"after= names unknown node {dep!r}", node.name)
            elif dep == node.name:
                yield ctx.problem("unknown-node", "a node cannot run after itself", node.name)
        src = node.options.map_over
        if src is not None and src not in ctx.nodes:
            yield ctx.problem("unknown-node", f"map_over names unknown node {src!r}", node.name)


@check("unresolved-parameter")
def _unresolved(ctx: Context) -> Iterable[Problem]:
    known = sorted(ctx.nodes)
    for node in ctx.nodes.values():
        sig = inspect.signature(node.fn).parameters
        for p in node.params:
            kind = sig[p.name].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                yield ctx.problem(
                    "unresolved-parameter",
                    "*args/**kwargs cannot be wired; name each upstream explicitly",
                    node.name,
                    p.name,
                )
            elif kind is inspect.Parameter.POSITIONAL_ONLY:
                yield ctx.problem(
                    "unresolved-parameter",
                    "positional-only parameters cannot be wired by name",
                    node.name,
                    p.name,
                )
            elif p.kind is ParamKind.UNRESOLVED and not p.has_default:
                hint = "a node cannot read its own output; " if p.name == node.name else ""
                yield ctx.problem(
                    "unresolved-parameter",
                    f"{hint}no upstream node is named {p.name!r} and it is not {PARAMS!r} "
                    f"(the execution input); known nodes: {', '.join(known)}",
                    node.name,
                    p.name,
                )


@check("cycle")
def _cycle(ctx: Context) -> Iterable[Problem]:
    if ctx.cycle is not None:
        path = " -> ".join([*ctx.cycle, ctx.cycle[0]])
        yield ctx.problem("cycle", f"dependency cycle: {path}", node=ctx.cycle[0])


@check("type-mismatch")
def _types(ctx: Context) -> Iterable[Problem]:
    for node in ctx.nodes.values():
        for p in node.params:
            if p.kind is not ParamKind.UPSTREAM:
                continue
            produced = ctx.nodes[p.name].output_type
            if node.options.map_over == p.name:
                element = T.item_type(produced)
                if element is None:
                    continue  # reported by the map-over check
                produced = element
            if not T.is_assignable(produced, p.annotation):
                yield ctx.problem(
                    "type-mismatch",
                    f"expects {T.describe(p.annotation)} but upstream {p.name!r} returns "
                    f"{T.describe(produced)}"
                    + (" (one item per map run)" if node.options.map_over == p.name else ""),
                    node.name,
                    p.name,
                )


@check("map-over")
def _map_over(ctx: Context) -> Iterable[Problem]:
    for node in ctx.nodes.values():
        src = node.options.map_over
        if src is None or src not in ctx.nodes:
            continue
        if node.param(src) is None:
            yield ctx.problem(
                "map-over",
                f"map_over={src!r} but the function has no parameter {src!r} to receive each item",
                node.name,
            )
        produced = ctx.nodes[src].output_type
        if T.item_type(produced) is None:
            yield ctx.problem(
                "map-over",
                f"map_over={src!r} needs a list, but {src!r} returns {T.describe(produced)}",
                node.name,
                src,
            )
        if node.options.max_concurrency < 0:
            yield ctx.problem("map-over", "max_concurrency must be >= 0", node.name)


@check("options")
def _options(ctx: Context) -> Iterable[Problem]:
    for node in ctx.nodes.values():
        for message in _option_problems(node):
            yield ctx.problem("options", message, node.name)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _option_problems(node: Node) -> Iterable[str]:
    # Values are type-checked before they are compared: options come from user code, and
    # ``timeout="60"`` must become a clear problem, not a TypeError deep in a check.
    o = node.options
    if o.retry is not None and not isinstance(o.retry, Retry):
        yield f"retry must be a stepdag.Retry(...), got {o.retry!r}"
    elif o.retry is not None:
        yield from _retry_problems(o.retry)
    if o.timeout is not None and (not _whole(o.timeout) or o.timeout < 1):
        yield f"timeout must be a whole number of seconds >= 1, got {o.timeout!r}"
    lc = o.lambda_config
    if not _whole(lc.memory_mb) or not 128 <= lc.memory_mb <= 10_240:
        yield f"memory_mb must be between 128 and 10240, got {lc.memory_mb!r}"
    if not _whole(lc.timeout_s) or not 1 <= lc.timeout_s <= 900:
        yield f"lambda_timeout must be between 1 and 900 seconds, got {lc.timeout_s!r}"
    elif _whole(o.timeout) and o.timeout is not None and o.timeout > lc.timeout_s:
        yield f"timeout ({o.timeout}s) exceeds the Lambda timeout ({lc.timeout_s}s)"
    if o.cache is not None and not isinstance(o.cache, Cache):
        yield f"cache must be True or a stepdag.Cache(...), got {o.cache!r}"
    elif o.cache is not None and (not _whole(o.cache.ttl) or o.cache.ttl < 1):
        yield f"cache.ttl must be a whole number of seconds >= 1, got {o.cache.ttl!r}"
    if o.max_items is not None and (not _whole(o.max_items) or o.max_items < 0):
        yield f"max_items must be a whole number >= 0, got {o.max_items!r}"
    if not _whole(o.max_concurrency):
        yield f"max_concurrency must be a whole number, got {o.max_concurrency!r}"
    if enum_value(o.on_upstream_skipped) not in {u.value for u in UpstreamSkipped}:
        yield f"on_upstream_skipped must be 'skip' or 'run', got {o.on_upstream_skipped!r}"
    if any(not isinstance(a, str) for a in o.after):
        yield f"after= must list node names, got {list(o.after)!r}"
    if o.map_over is not None and not isinstance(o.map_over, str):
        yield f"map_over must be a node name, got {o.map_over!r}"
    if o.when is not None and not callable(o.when):
        yield "when= must be a callable over upstream outputs"
    elif o.when is not None and not _has_signature(o.when):
        yield (
            f"when={o.when!r} has no inspectable signature (a builtin?); use a lambda whose "
            "parameters name the upstream nodes, e.g. when=lambda a: bool(a)"
        )


def _has_signature(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn)
    except (ValueError, TypeError):
        return False
    return True


def _retry_problems(r: Retry) -> Iterable[str]:
    if not _whole(r.max_attempts) or not 1 <= r.max_attempts <= 100:
        yield f"retry.max_attempts must be between 1 and 100, got {r.max_attempts!r}"
    if not _whole(r.interval) or r.interval < 1:
        yield f"retry.interval must be a whole number of seconds >= 1, got {r.interval!r}"
    if not _number(r.backoff_rate) or r.backoff_rate < 1.0:
        yield f"retry.backoff_rate must be >= 1.0, got {r.backoff_rate!r}"
    if r.max_delay is not None and (not _whole(r.max_delay) or r.max_delay < 1):
        yield f"retry.max_delay must be >= 1 second, got {r.max_delay!r}"
    if not isinstance(r.jitter, str) or enum_value(r.jitter) not in {j.value for j in Jitter}:
        yield f"retry.jitter must be NONE or FULL, got {r.jitter!r}"
    if not isinstance(r.errors, tuple | list) or any(
        not isinstance(e, str | type) for e in r.errors
    ):
        yield f"retry.errors must be error names or exception classes, got {r.errors!r}"
        return
    names = r.error_names
    if not names:
        yield "retry.errors must name at least one error"
    if "States.ALL" in names and len(names) > 1:
        yield "retry.errors: 'States.ALL' must appear alone"


@check("when")
def _when(ctx: Context) -> Iterable[Problem]:
    for node in ctx.nodes.values():
        if node.options.when is None:
            continue
        for name in node.when_params:
            if name == node.name:
                yield ctx.problem(
                    "when", "a condition cannot read the node's own output", node.name, name
                )
            elif name != PARAMS and name not in ctx.nodes:
                yield ctx.problem(
                    "when",
                    f"the condition reads {name!r}, which is neither a node nor {PARAMS!r}; "
                    "name condition parameters after the upstream nodes they read",
                    node.name,
                    name,
                )


@check("skip-optional", needs_acyclic=True)
def _skip_optional(ctx: Context) -> Iterable[Problem]:
    may_skip = _may_skip(ctx.nodes)
    for node in ctx.nodes.values():
        if enum_value(node.options.on_upstream_skipped) != UpstreamSkipped.RUN.value:
            continue
        for p in node.params:
            if (
                p.kind is ParamKind.UPSTREAM
                and may_skip[p.name]
                and not T.accepts_none(p.annotation)
            ):
                yield ctx.problem(
                    "skip-optional",
                    f"upstream {p.name!r} can be skipped and on_upstream_skipped='run' then "
                    "passes None, so this parameter must accept None (e.g. "
                    f"{T.describe(p.annotation)} | None)",
                    node.name,
                    p.name,
                )


def _may_skip(nodes: dict[str, Node]) -> dict[str, bool]:
    """Which nodes can end without an output: conditional ones, ones that may fail and
    continue, and (transitively) ones whose upstream may skip, unless they opt in."""
    from stepdag.core.graph import topo_order

    out: dict[str, bool] = {}
    for name in topo_order({n: [d for d in node.deps if d in nodes] for n, node in nodes.items()}):
        node = nodes[name]
        inherits = enum_value(node.options.on_upstream_skipped) == UpstreamSkipped.SKIP.value
        out[name] = (
            node.is_conditional
            or node.options.continue_on_failure
            or (inherits and any(out.get(d, False) for d in node.deps))
        )
    return out


@check("serializable")
def _serializable(ctx: Context) -> Iterable[Problem]:
    from pydantic import TypeAdapter

    for node in ctx.nodes.values():
        targets = [("return", node.returns)] + [
            (p.name, p.annotation) for p in node.params if p.kind is ParamKind.INPUT
        ]
        for label, tp in targets:
            if isinstance(tp, str):
                yield ctx.problem(
                    "serializable",
                    f"annotation {tp!r} could not be resolved (is it imported?)",
                    node.name,
                    None if label == "return" else label,
                )
                continue
            try:
                TypeAdapter(tp)
            except Exception as exc:  # pydantic raises several error types here
                yield ctx.problem(
                    "serializable",
                    f"{T.describe(tp)} cannot be validated/serialised as JSON by pydantic: "
                    f"{str(exc).splitlines()[0]}",
                    node.name,
                    None if label == "return" else label,
                )


@check("triggers")
def _triggers(ctx: Context) -> Iterable[Problem]:
    """Trigger syntax (patterns, templates, schedules, time zones, unique names) and, for
    schedules, their fixed input against every node's ``params`` annotation."""
    for name, message in trigger_problems(ctx.triggers):
        yield ctx.problem("triggers", f"trigger {name!r}: {message}")
    from pydantic import TypeAdapter, ValidationError

    for trigger in ctx.triggers:
        if not isinstance(trigger, ScheduleTrigger) or not isinstance(trigger.input, dict | None):
            continue
        for node in ctx.nodes.values():
            param = node.param(PARAMS)
            if param is None or isinstance(param.annotation, str):
                continue
            try:
                TypeAdapter(param.annotation).validate_python(trigger.payload)
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(x) for x in first["loc"]) or "(input)"
                yield ctx.problem(
                    "triggers",
                    f"trigger {trigger.name!r}: its input is rejected by {PARAMS!r} "
                    f"({loc}: {first['msg']})",
                    node.name,
                    PARAMS,
                )


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{fn.__qualname__} at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}"

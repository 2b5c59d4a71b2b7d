"""The definition API and the frozen DAG model.

``Workflow`` and its ``@wf.node`` decorator only *record* what the user wrote (a
``NodeSpec`` per function). ``Workflow.build()`` is the separate, pure step that turns
those specs into a ``Dag`` of frozen ``Node`` objects and validates it; importing a
workflow module therefore has no side effects beyond creating a few small objects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from stepdag.core.triggers import EventTrigger, ScheduleTrigger, Trigger

F = TypeVar("F", bound=Callable[..., Any])

#: The parameter name that receives the execution input.
PARAMS = "params"
QUERY_LANGUAGES = ("JSONPath", "JSONata")

#: Errors AWS recommends retrying for every Lambda task (transient service faults).
LAMBDA_TRANSIENT_ERRORS: tuple[str, ...] = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


def enum_value(value: Enum | str) -> str:
    """Options accept an Enum member or its plain string value; compare on the string."""
    return str(value.value if isinstance(value, Enum) else value)


class Jitter(StrEnum):
    NONE = "NONE"
    FULL = "FULL"


class UpstreamSkipped(StrEnum):
    """What a node does when an upstream it reads was skipped (or failed and continued)."""

    SKIP = "skip"  # default: the skip propagates
    RUN = "run"  # run anyway; the skipped upstream's parameter receives None


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy for one node, compiled to an ASL ``Retry`` block.

    ``max_attempts`` counts *all* attempts, the first included (so ``max_attempts=3``
    means two retries; ASL's ``MaxAttempts`` is the number of retries and becomes 2).
    ``errors`` are error names as Step Functions sees them: a Python exception raised by a
    node surfaces as its class name, so ``errors=("TimeoutError",)`` or exception classes
    both work.
    """

    max_attempts: int = 3
    interval: int = 1
    backoff_rate: float = 2.0
    max_delay: int | None = None
    jitter: Jitter | str = Jitter.NONE
    errors: tuple[str | type[BaseException], ...] = ("States.ALL",)

    @property
    def error_names(self) -> tuple[str, ...]:
        return tuple(e if isinstance(e, str) else e.__name__ for e in self.errors)

    def attempts_for(self, error: str) -> int:
        """How many attempts a Task failing with ``error`` gets (ASL: ``States.ALL``
        matches every error but ``States.Runtime``)."""
        names = self.error_names
        matches = error in names or ("States.ALL" in names and error != "States.Runtime")
        return self.max_attempts if matches else 1


@dataclass(frozen=True, slots=True)
class Cache:
    """Result cache: key = hash(version + code + inputs); entries expire after ``ttl`` s."""

    ttl: int = 86_400
    version: str = "1"


@dataclass(frozen=True, slots=True)
class LambdaConfig:
    memory_mb: int = 512
    timeout_s: int = 900


@dataclass(frozen=True, slots=True)
class NodeOptions:
    retry: Retry | None = None
    timeout: int | None = None
    cache: Cache | None = None
    map_over: str | None = None
    max_concurrency: int = 0
    max_items: int | None = None  # declared fan-out bound, used for history-size warnings
    when: Callable[..., Any] | None = None
    after: tuple[str, ...] = ()
    on_upstream_skipped: UpstreamSkipped | str = UpstreamSkipped.SKIP
    continue_on_failure: bool = False
    lambda_config: LambdaConfig = field(default_factory=LambdaConfig)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What ``@wf.node`` recorded: the function and its options, nothing derived yet."""

    name: str
    fn: Callable[..., Any]
    options: NodeOptions


class ParamKind(StrEnum):
    UPSTREAM = "upstream"  # receives an upstream node's output
    INPUT = "input"  # receives the (validated) execution input
    UNRESOLVED = "unresolved"  # neither: a validation error


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Any  # typing.Any when the user wrote none
    kind: ParamKind
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a built DAG. Everything here is derived once, at build time."""

    name: str
    fn: Callable[..., Any]
    params: tuple[Param, ...]
    returns: Any
    options: NodeOptions
    data_deps: tuple[str, ...]  # upstreams whose outputs this node reads
    order_deps: tuple[str, ...]  # after= edges: order only
    when_params: tuple[str, ...] = ()

    @property
    def deps(self) -> tuple[str, ...]:
        """All upstream nodes, data and order, de-duplicated, in declaration order."""
        return tuple(dict.fromkeys(self.data_deps + self.order_deps))

    @property
    def is_map(self) -> bool:
        return self.options.map_over is not None

    @property
    def output_type(self) -> Any:
        """What downstream nodes receive: a map node's item outputs are gathered in a list."""
        return types.GenericAlias(list, (self.returns,)) if self.is_map else self.returns

    @property
    def takes_input(self) -> bool:
        return any(p.kind is ParamKind.INPUT for p in self.params)

    @property
    def is_conditional(self) -> bool:
        return self.options.when is not None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class Dag:
    """A built workflow: nodes in declaration order plus derived graph views."""

    workflow: str
    nodes: Mapping[str, Node]
    description: str = ""
    # The query language of the compiled state machine: "JSONPath" or "JSONata".
    query_language: str = "JSONPath"

    @cached_property
    def edges(self) -> tuple[tuple[str, str], ...]:
        return tuple((d, n.name) for n in self.nodes.values() for d in n.deps if d in self.nodes)

    @cached_property
    def preds(self) -> Mapping[str, tuple[str, ...]]:
        return {n.name: tuple(d for d in n.deps if d in self.nodes) for n in self.nodes.values()}

    @cached_property
    def succs(self) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {name: [] for name in self.nodes}
        for src, dst in self.edges:
            out[src].append(dst)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def map_sources(self) -> frozenset[str]:
        return frozenset(n.options.map_over for n in self.nodes.values() if n.options.map_over)

    @cached_property
    def sinks(self) -> tuple[str, ...]:
        return tuple(name for name, s in self.succs.items() if not s)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]


class Workflow:
    """A named DAG of typed Python functions.

    >>> wf = Workflow("etl")
    >>> @wf.node
    ... def extract(params: dict) -> list[int]: ...
    """

    def __init__(
        self, name: str, *, description: str = "", query_language: str = "JSONPath"
    ) -> None:
        if query_language not in QUERY_LANGUAGES:
            raise ValueError(
                f"Workflow {name!r}: query_language must be 'JSONPath' or 'JSONata', "
                f"not {query_language!r}"
            )
        self.name = name
        self.description = description
        self.query_language = query_language
        self._specs: list[NodeSpec] = []
        self._dag: Dag | None = None
        self._triggers: list[Trigger] = []

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        """Entry points declared with ``on_event``/``on_schedule`` (validated by build)."""
        return tuple(self._triggers)

    def on_event(
        self,
        pattern: dict[str, Any],
        input: dict[str, Any] | Callable[[dict[str, Any]], Any] | None = None,
        name: str | None = None,
    ) -> EventTrigger:
        """Start a run for each EventBridge event matching ``pattern`` (see core.triggers)."""
        from stepdag.core.triggers import EventTrigger

        trigger = EventTrigger(name or f"event{len(self._triggers) + 1}", pattern, input)
        self._triggers.append(trigger)
        self._dag = None
        return trigger

    def on_schedule(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        input: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> ScheduleTrigger:
        """Start a run on an EventBridge Scheduler cron(...)/rate(...)/at(...) expression."""
        from stepdag.core.triggers import ScheduleTrigger

        trigger = ScheduleTrigger(
            name or f"schedule{len(self._triggers) + 1}", expression, timezone, input
        )
        self._triggers.append(trigger)
        self._dag = None
        return trigger

    @property
    def specs(self) -> tuple[NodeSpec, ...]:
        return tuple(self._specs)

    @overload
    def node(self, fn: F, /) -> F: ...

    @overload
    def node(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: int | None = None,
        cache: Cache | bool | None = None,
        map_over: str | None = None,
        max_concurrency: int = 0,
        max_items: int | None = None,
        when: Callable[..., Any] | None = None,
        after: Iterable[str] = (),
        on_upstream_skipped: UpstreamSkipped | str = UpstreamSkipped.SKIP,
        continue_on_failure: bool = False,
        memory_mb: int = 512,
        lambda_timeout: int = 900,
    ) -> Callable[[F], F]: ...

    def node(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: int | None = None,
        cache: Cache | bool | None = None,
        map_over: str | None = None,
        max_concurrency: int = 0,
        max_items: int | None = None,
        when: Callable[..., Any] | None = None,
        after: Iterable[str] = (),
        on_upstream_skipped: UpstreamSkipped | str = UpstreamSkipped.SKIP,
        continue_on_failure: bool = False,
        memory_mb: int = 512,
        lambda_timeout: int = 900,
    ) -> F | Callable[[F], F]:
        """Register a function as a node. Usable bare (``@wf.node``) or with options."""
        options = NodeOptions(
            retry=retry,
            timeout=timeout,
            cache=Cache() if cache is True else (cache or None),
            map_over=map_over,
            max_concurrency=max_concurrency,
            max_items=max_items,
            when=when,
            # A bare string would otherwise be split into characters.
            after=(after,) if isinstance(after, str) else tuple(after),
            on_upstream_skipped=on_upstream_skipped,
            continue_on_failure=continue_on_failure,
            lambda_config=LambdaConfig(memory_mb=memory_mb, timeout_s=lambda_timeout),
        )

        def register(f: F) -> F:
            self._specs.append(NodeSpec(name or f.__name__, f, options))
            self._dag = None
            return f

        return register(fn) if fn is not None else register

    def add_node(self, name: str, fn: Callable[..., Any], **options: Any) -> None:
        """Programmatic form of ``@wf.node`` (used by generators and tests)."""
        self.node(name=name, **options)(fn)

    def build(self) -> Dag:
        """Build and validate the DAG (cached). Raises DagValidationError with every problem."""
        if self._dag is None:
            from stepdag.core.validate import validate_specs

            self._dag = validate_specs(
                self.name, self._specs, description=self.description, triggers=self._triggers
            )
            if self.query_language != self._dag.query_language:
                self._dag = dataclasses.replace(self._dag, query_language=self.query_language)
        return self._dag

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, nodes={[s.name for s in self._specs]})"


def resolve_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Evaluate annotations (``from __future__ import annotations`` makes them strings).

    Resolved one by one, so a single unresolvable name leaves only that annotation a
    string (reported by validation) instead of all of them.
    """
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    out: dict[str, Any] = {}
    globalns = getattr(fn, "__globals__", {})
    for name, raw in getattr(fn, "__annotations__", {}).items():
        out[name] = raw
        if isinstance(raw, str):
            with contextlib.suppress(Exception):  # left a string; validation reports it
                # The evaluation get_type_hints performs, of the module's own annotations.
                out[name] = eval(raw, globalns)  # nosec B307
    return out


def signature_params(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())

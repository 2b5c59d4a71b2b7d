"""The node runner: the one code path shared by the local engine and the Lambda handler.

Given a Task payload ``{workflow, node, phase, execution, attempt[, index][, params]}``
it loads the node's inputs from the store, checks the result cache, calls the function,
validates the output against its annotation, stores output and status in one
transaction and returns a small result. Safe under at-least-once delivery: a node that
completed is never run again, and of several concurrent deliveries of one attempt only
the one holding the claim runs the function; the others wait for its result.

Phases (see core/compile.py for the ASL shape):
    run             a plain node
    condition       evaluate ``when``; records SKIPPED when false → {"run": bool}
    plan            a map node: count the items → {"items": [0..n-1]}
    item            one map item (``index``)
    gather          a map node: collect item outputs into the node's output
    record_failure  continue_on_failure: record the caught error, then carry on
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from stepdag.core.errors import (
    ConditionFailed,
    ExecutionAlreadyExists,
    ExecutionNotFound,
    StepdagError,
    StepdagInvalidInput,
    StepdagInvalidOutput,
    StepdagUpstreamMissing,
)
from stepdag.core.model import PARAMS, Dag, Node, ParamKind, UpstreamSkipped, enum_value
from stepdag.core.status import NodeStatus
from stepdag.runtime.abandoned import timeout_message
from stepdag.runtime.payloads import MISSING as _MISSING
from stepdag.runtime.payloads import NodeRequest, RunnerObserver
from stepdag.runtime.payloads import NullObserver as _NullObserver
from stepdag.runtime.records import (
    REDRIVE_STRIDE,
    CacheEntry,
    Claim,
    ExecutionRecord,
    NodeKey,
    NodeRecord,
)
from stepdag.runtime.store import TIMEOUT_ERROR, ExecutionStore

if TYPE_CHECKING:
    # Only local runs capture logs (the Lambda's Powertools Logger prints them): the
    # node-runner Lambda never imports runtime.logs, a few ms off its cold start.
    from stepdag.runtime.logs import LogCapture

LEASE_MARGIN_S = 30.0


def error_class(name: str) -> type[Exception]:
    """An exception class whose ``__name__`` is ``name``: replays a stored failure with the
    same Step Functions error name (Lambda reports ``type(exc).__name__``)."""
    return type(name, (Exception,), {"__module__": "stepdag.replayed"})


def _describe(fn: Callable[..., Any]) -> str:
    """``<lambda> (wf.py:12)``: which condition, for a message that names it."""
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__qualname__", type(fn).__name__)
    if code is None:
        return str(name)
    return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"


class NodeRunner:
    def __init__(
        self,
        workflows: Mapping[str, Dag],
        store: ExecutionStore,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: RunnerObserver | None = None,
        owner_prefix: str = "",
        poll_seconds: float = 0.02,
        log_capture: LogCapture | None = None,
    ) -> None:
        self.workflows = workflows
        # Local runs capture what node code logs (`stepdag logs`); Lambda's Powertools
        # Logger writes those lines to CloudWatch itself, so it passes none.
        self.log_capture = log_capture
        self.store = store
        self.now = now
        self.observer: RunnerObserver = observer or _NullObserver()
        self.owner_prefix = owner_prefix
        self.poll_seconds = poll_seconds
        self._adapters: dict[tuple[str, str, str], TypeAdapter[Any]] = {}
        # Completed outputs are immutable, so decoded values can be reused across calls
        # (a 1,000-item Map would otherwise decode its source list 1,000 times).
        self._outputs: OrderedDict[tuple[str, str], Any] = OrderedDict()

    # ------------------------------------------------------------------ entry point

    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        req = NodeRequest.from_payload(payload)
        dag = self.workflows.get(req.workflow)
        if dag is None or req.node not in dag.nodes:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise StepdagInvalidInput(
                f"unknown workflow/node {req.workflow!r}/{req.node!r} (deployed workflows: {known})"
            )
        node = dag[req.node]
        handler = getattr(self, f"_{req.phase}")
        result: dict[str, Any] = handler(dag, node, req)
        return result

    # ------------------------------------------------------------------ phases

    def _run(self, dag: Dag, node: Node, req: NodeRequest) -> dict[str, Any]:
        key = NodeKey(req.execution, node.name, req.index)
        return self._execute(dag, node, req, key)

    _item = _run

    def _condition(self, dag: Dag, node: Node, req: NodeRequest) -> dict[str, Any]:
        key = NodeKey(req.execution, node.name)
        current = self.store.get_node(key)
        if current is not None and current.status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED):
            return {"node": node.name, "run": current.status is NodeStatus.SUCCEEDED}
        skipped = self._skipped_upstreams(dag, node, req.execution)
        if skipped and _mode(node) is UpstreamSkipped.SKIP:
            self._skip(key, f"upstream skipped: {', '.join(skipped)}", req)
            return {"node": node.name, "run": False}
        args: dict[str, Any] = {}
        for name in node.when_params:
            if name == PARAMS:
                args[name] = self._input(dag, node, req)
            elif name in skipped:
                args[name] = None
            else:
                args[name] = self._upstream_value(dag, node, name, req.execution)
        assert node.options.when is not None
        try:
            decision = bool(node.options.when(**args))
        except Exception as exc:
            # Same error name (a Retry or Catch on it still matches), located message;
            # the node's record says it too, so its row and the console show where.
            kind = type(exc).__name__
            what = f"when= condition {_describe(node.options.when)} raised {kind}: {exc}"
            self._condition_failed(key, req, error_class(kind)(what))
            raise error_class(kind)(f"node {node.name!r}: {what}") from exc
        if not decision:
            self._skip(key, "condition is false", req)
        return {"node": node.name, "run": decision}

    def _plan(self, dag: Dag, node: Node, req: NodeRequest) -> dict[str, Any]:
        key = NodeKey(req.execution, node.name)
        current = self.store.get_node(key)
        if current is not None and current.is_completed:
            return {"node": node.name, "status": current.status.value, "items": []}
        skipped = self._skipped_upstreams(dag, node, req.execution)
        source = node.options.map_over
        assert source is not None
        if source in skipped or (skipped and _mode(node) is UpstreamSkipped.SKIP):
            self._skip(key, f"upstream skipped: {', '.join(skipped)}", req)
            return {"node": node.name, "status": "SKIPPED", "items": []}
        items = self._output(req.execution, source)
        if not isinstance(items, list):
            raise StepdagInvalidInput(f"map_over source {source!r} did not produce a list")
        self.store.set_items(key, len(items), now=self.now())
        return {"node": node.name, "status": "RUNNING", "items": list(range(len(items)))}

    def _gather(self, dag: Dag, node: Node, req: NodeRequest) -> dict[str, Any]:
        key = NodeKey(req.execution, node.name)
        owner = self._owner()
        claim = self.store.claim_node(
            key, attempt=self._attempt(req), owner=owner, lease_seconds=60.0, now=self.now()
        )
        if not claim.acquired:
            return self._settled(claim.record, req)
        outputs = self.store.get_item_outputs(req.execution, node.name)
        done = self.store.complete_node(key, owner=owner, output=outputs, now=self.now())
        return {"node": node.name, "status": done.status.value}

    def _record_failure(self, dag: Dag, node: Node, req: NodeRequest) -> dict[str, Any]:
        key = NodeKey(req.execution, node.name)
        current = self.store.get_node(key)
        if current is not None and req.error == TIMEOUT_ERROR:  # caught: its own timeout
            attempt = current.attempt % REDRIVE_STRIDE
            cause = timeout_message(node, attempt, None)
            self.store.abandon_node(key, attempt=current.attempt, timed_out=True, cause=cause)
            current = self.store.get_node(key)
        if current is None or not current.status.is_failure:
            owner = self._owner()
            # The caught attempt may still hold a lease (e.g. it timed out): claim as the
            # newest attempt of this redrive so the record is taken over at once.
            claim = self.store.claim_node(
                key,
                attempt=self._attempt(req) + REDRIVE_STRIDE - 1,
                owner=owner,
                lease_seconds=60.0,
                now=self.now(),
            )
            if claim.acquired:
                self.store.fail_node(
                    key,
                    owner=owner,
                    error=req.error or "States.TaskFailed",
                    cause=req.cause or "",
                    now=self.now(),
                )
        return {"node": node.name, "status": NodeStatus.FAILED.value}

    # ------------------------------------------------------------------ the core

    def _execute(self, dag: Dag, node: Node, req: NodeRequest, key: NodeKey) -> dict[str, Any]:
        if key.map_index is None:  # items inherit their node's skip decision (see _plan)
            skipped = self._skipped_upstreams(dag, node, req.execution)
            if skipped and _mode(node) is UpstreamSkipped.SKIP:
                current = self.store.get_node(key)
                if current is None or current.status is NodeStatus.PENDING:
                    self._skip(key, f"upstream skipped: {', '.join(skipped)}", req)
                    return {"node": node.name, "status": NodeStatus.SKIPPED.value}
        else:
            skipped = []
        owner = self._owner()
        lease = float(node.options.timeout or node.options.lambda_config.timeout_s) + LEASE_MARGIN_S
        attempt = self._attempt(req)
        # The node's timeout fences the attempt in the store: a result after it is refused
        # (the orchestrator has given up on it and may be running the retry already).
        deadline = None if node.options.timeout is None else float(node.options.timeout)

        def claim_it() -> Claim:
            return self.store.claim_node(
                key,
                attempt=attempt,
                owner=owner,
                lease_seconds=lease,
                now=self.now(),
                deadline_seconds=deadline,
            )

        claim = claim_it()
        if not claim.acquired:
            record = self._wait_for(claim.record, key)
            if record.status is not NodeStatus.RUNNING:
                return self._settled(record, req)
            # The holder's lease or deadline ran out (it crashed, or timed out): take the
            # node over, once.
            claim = claim_it()
            if not claim.acquired:
                return self._settled(claim.record, req)
        started = time.perf_counter()
        self.observer.node_started(req)
        try:
            kwargs = self._kwargs(dag, node, req, skipped)
            cache_key = self._cache_key(dag, node, kwargs) if node.options.cache else None
            if cache_key is not None:
                hit = self.store.cache_get(cache_key, now=self.now())
                if hit is not None:
                    done = self.store.complete_node(
                        key,
                        owner=owner,
                        output=hit.output,
                        now=self.now(),
                        cache=hit,
                        cache_hit=True,
                    )
                    self._finished(req, done, started, cache_hit=True)
                    return {"node": node.name, "status": done.status.value}
            value = self._call(dag, node, req, kwargs)
            output = self._validate_output(dag, node, value)
        except Exception as exc:
            self._fail(key, owner, exc, req, started)
            raise
        entry = None
        if cache_key is not None:
            assert node.options.cache is not None
            entry = CacheEntry.for_ttl(
                cache_key, output, now=self.now(), ttl_seconds=node.options.cache.ttl
            )
        try:
            done = self.store.complete_node(
                key,
                owner=owner,
                output=output,
                now=self.now(),
                cache=entry,
                late_cause=timeout_message(node, req.attempt, req.index),
            )
        except ConditionFailed:
            # Lost the claim (a newer attempt took over, or ours is past its deadline and
            # was recorded TIMED_OUT): ours is discarded, never stored.
            current = self.store.get_node(key)
            if current is None:
                raise
            return self._settled(current, req)
        self._finished(req, done, started, cache_hit=False if cache_key else None)
        return {"node": node.name, "status": done.status.value}

    def _call(self, dag: Dag, node: Node, req: NodeRequest, kwargs: dict[str, Any]) -> Any:
        """Call the node's function: the one place user code runs (under log capture
        when configured; ``runtime/replay.py`` overrides ``_invoke`` for the debugger)."""
        if self.log_capture is None:
            return self._invoke(node.fn, kwargs)
        from stepdag.runtime.logs import LogContext  # loaded with the LogCapture given

        ctx = LogContext(req.execution, dag.workflow, node.name, req.phase, req.attempt, req.index)
        with self.log_capture.capture(ctx):
            return self._invoke(node.fn, kwargs)

    def _invoke(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        return fn(**kwargs)

    def _wait_for(self, record: NodeRecord, key: NodeKey) -> NodeRecord:
        """Another delivery holds the claim: wait for its result instead of running twice.

        Returns once the node is no longer RUNNING, or its holder's lease or deadline has
        passed.
        """
        delay = self.poll_seconds
        while record.is_held(self.now()):
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            current = self.store.get_node(key)
            if current is None:
                break
            record = current
        return record

    def _settled(self, record: NodeRecord, req: NodeRequest) -> dict[str, Any]:
        """The answer for a node someone else already ran (duplicate delivery/resume)."""
        if record.status.is_failure:
            raise error_class(record.error or "States.TaskFailed")(record.cause or "")
        if record.status is NodeStatus.RUNNING:
            raise StepdagUpstreamMissing(f"node {record.key} is still running elsewhere")
        return {"node": req.node, "status": record.status.value}

    # ------------------------------------------------------------------ inputs & outputs

    def _kwargs(self, dag: Dag, node: Node, req: NodeRequest, skipped: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for p in node.params:
            if p.kind is ParamKind.INPUT:
                kwargs[p.name] = self._input(dag, node, req)
            elif p.kind is ParamKind.UPSTREAM:
                if p.name in skipped:
                    kwargs[p.name] = None
                elif node.options.map_over == p.name and req.index is not None:
                    items = self._output(req.execution, p.name)
                    kwargs[p.name] = self._adapt(dag, node, p.name, items[req.index])
                else:
                    kwargs[p.name] = self._upstream_value(dag, node, p.name, req.execution)
        return kwargs

    def _upstream_value(self, dag: Dag, node: Node, name: str, execution: str) -> Any:
        return self._adapt(dag, node, name, self._output(execution, name))

    def _output(self, execution: str, node: str) -> Any:
        cache_key = (execution, node)
        if cache_key in self._outputs:
            self._outputs.move_to_end(cache_key)
            return self._outputs[cache_key]
        rec = self.store.get_node(NodeKey(execution, node))
        if rec is None or rec.status is not NodeStatus.SUCCEEDED:
            state = "missing" if rec is None else rec.status.value
            raise StepdagUpstreamMissing(
                f"upstream {node!r} of execution {execution!r} has no output ({state}); "
                "the deployed state machine may be older than the workflow code"
            )
        self._remember(execution, node, rec.output)
        return rec.output

    def _input(self, dag: Dag, node: Node, req: NodeRequest) -> Any:
        raw = req.params
        if raw is _MISSING:
            raw = self.store.get_execution(req.execution).input
        return self._adapt(dag, node, PARAMS, raw, what="execution input")

    def _adapt(self, dag: Dag, node: Node, name: str, raw: Any, what: str = "") -> Any:
        param = node.param(name)
        if param is None and name not in dag.nodes:
            return raw  # `params` read only by a condition: no annotation to apply
        # A when= argument that is not a function parameter gets the upstream's own type.
        annotation = param.annotation if param is not None else dag[name].output_type
        adapter = self._adapter(dag, node, name, annotation)
        try:
            return adapter.validate_python(raw)
        except ValidationError as exc:
            label = what or f"output of upstream {name!r}"
            raise StepdagInvalidInput(
                f"workflow {dag.workflow!r}, node {node.name!r}, parameter {name!r}: "
                f"{label} does not match its annotation: {_errors(exc)}"
            ) from None

    def _validate_output(self, dag: Dag, node: Node, value: Any) -> Any:
        adapter = self._adapter(dag, node, "return", node.returns)
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            raise StepdagInvalidOutput(
                f"workflow {dag.workflow!r}, node {node.name!r}: returned value does not "
                f"match the return annotation: {_errors(exc)}"
            ) from None

    def _adapter(self, dag: Dag, node: Node, name: str, annotation: Any) -> TypeAdapter[Any]:
        k = (dag.workflow, node.name, name)
        adapter = self._adapters.get(k)
        if adapter is None:
            adapter = self._adapters[k] = TypeAdapter(annotation)
        return adapter

    def _skipped_upstreams(self, dag: Dag, node: Node, execution: str) -> list[str]:
        """Upstreams that were skipped (or failed and continued). Reading a dependency's
        record here also primes the output cache, so its output is not read twice."""
        out = []
        for dep in node.deps:
            if (execution, dep) in self._outputs:
                continue  # succeeded: cached only then
            rec = self.store.get_node(NodeKey(execution, dep))
            if rec is None:
                continue
            if rec.status is NodeStatus.SKIPPED or rec.status.is_failure:
                out.append(dep)
            elif rec.status is NodeStatus.SUCCEEDED:
                self._remember(execution, dep, rec.output)
        return out

    def _remember(self, execution: str, node: str, output: Any) -> None:
        self._outputs[(execution, node)] = output
        if len(self._outputs) > 256:
            self._outputs.popitem(last=False)

    # ------------------------------------------------------------------ bookkeeping

    def _cache_key(self, dag: Dag, node: Node, kwargs: Mapping[str, Any]) -> str:
        # Imported here: only cached nodes pay for it (``dis``, ~2 ms of a cold start).
        from stepdag.core.fingerprint import code_fingerprint

        assert node.options.cache is not None
        inputs = self._dump_inputs(dag, node, kwargs)
        material = {
            "workflow": dag.workflow,
            "node": node.name,
            "version": node.options.cache.version,
            # The function's code and everything module-level it reads (constants,
            # helpers of its package, closures): editing any of them misses.
            "code": code_fingerprint(node.fn),
            "inputs": inputs,
        }
        text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _dump_inputs(self, dag: Dag, node: Node, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The function's arguments as JSON values (what the cache key hashes)."""
        inputs = {}
        for name, value in kwargs.items():
            param = node.param(name)
            ann = param.annotation if param is not None else Any
            inputs[name] = self._adapter(dag, node, name, ann).dump_python(value, mode="json")
        return inputs

    def _skip(self, key: NodeKey, reason: str, req: NodeRequest) -> None:
        try:
            self.store.skip_node(key, reason=reason, now=self.now())
        except StepdagError:
            current = self.store.get_node(key)
            if current is None or not current.is_completed:
                raise
        self.observer.node_finished(req, NodeStatus.SKIPPED.value, 0.0)

    def _condition_failed(self, key: NodeKey, req: NodeRequest, exc: Exception) -> None:
        owner = self._owner()
        claim = self.store.claim_node(
            key, attempt=self._attempt(req), owner=owner, lease_seconds=60.0, now=self.now()
        )
        if claim.acquired:  # else another delivery holds it: its outcome is recorded
            self._fail(key, owner, exc, req, time.perf_counter())

    def _fail(
        self, key: NodeKey, owner: str, exc: Exception, req: NodeRequest, started: float
    ) -> None:
        name = type(exc).__name__
        # A newer attempt may own the node now, or ours is past its deadline (recorded
        # TIMED_OUT): the outcome already recorded is the one that counts.
        with contextlib.suppress(ConditionFailed):
            late = timeout_message(self.workflows[req.workflow][req.node], req.attempt, req.index)
            self.store.fail_node(
                key, owner=owner, error=name, cause=str(exc), now=self.now(), late_cause=late
            )
        self.observer.node_finished(
            req, NodeStatus.FAILED.value, time.perf_counter() - started, error=name
        )

    def _finished(
        self, req: NodeRequest, rec: NodeRecord, started: float, *, cache_hit: bool | None
    ) -> None:
        self.observer.node_finished(
            req,
            rec.status.value,
            time.perf_counter() - started,
            output_bytes=rec.output_bytes or 0,
            cache_hit=cache_hit,
        )

    def _attempt(self, req: NodeRequest) -> int:
        redrives = req.redrive if req.redrive is not None else self._execution(req).redrive_count
        return redrives * REDRIVE_STRIDE + req.attempt

    def _execution(self, req: NodeRequest) -> ExecutionRecord:
        """The execution's record; adopted on first sight when something else started it
        (the Step Functions console, an EventBridge rule) so its nodes still get stored."""
        try:
            return self.store.get_execution(req.execution)
        except ExecutionNotFound:
            pass
        rec = ExecutionRecord(
            execution_id=req.execution,
            name=req.execution.rsplit(":", 1)[-1],
            workflow=req.workflow,
            started_at=self.now(),
            input=None if req.params is _MISSING else req.params,
        )
        try:
            return self.store.create_execution(rec)
        except ExecutionAlreadyExists:
            return self.store.get_execution(req.execution)

    def _owner(self) -> str:
        return f"{self.owner_prefix}{uuid.uuid4().hex}"


def _mode(node: Node) -> UpstreamSkipped:
    return UpstreamSkipped(enum_value(node.options.on_upstream_skipped))


def _errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "(value)"
        parts.append(f"{loc}: {e['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")

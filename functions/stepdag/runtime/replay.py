"""Replay: re-run one node in this process with the inputs recorded for it.

The inputs are rebuilt by the node runner itself -- the code that built them for the
real run -- on a *scratch* store holding copies of exactly what the runner reads: the
execution record (its input) and the node's upstream records (their outputs, or their
SKIPPED/FAILED state).  Nothing is written to the store the execution lives in; the
scratch store is a temporary SQLite file, deleted afterwards.

What pins the inputs: a node with ``cache=`` records its cache key, a hash of its code,
cache version and JSON inputs (``NodeRunner._cache_key``).  Replay recomputes it from
the rebuilt inputs and says whether it matches.  A node without a cache has nothing
recorded to check against.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from stepdag.core.errors import StepdagError
from stepdag.core.model import Dag, Node, ParamKind
from stepdag.core.status import NodeStatus, RunStatus
from stepdag.runtime.logs import LogCapture, LogEntry, MemoryLogSink
from stepdag.runtime.records import ExecutionRecord, NodeKey, NodeRecord
from stepdag.runtime.runner import NodeRunner
from stepdag.runtime.store import ExecutionStore

_OWNER = "stepdag-replay"


class ReplayError(StepdagError):
    """The node cannot be replayed: unknown, or its inputs cannot be reconstructed."""

    http_status = 409
    code = "replay_not_possible"


class ReplaySource(Protocol):
    """Reads the recorded run: whichever store (or API) the execution lives in."""

    full_records: bool
    """True when records carry cache keys and Map item outputs (a store, not the API)."""

    def node_record(
        self, rec: ExecutionRecord, node: str, index: int | None = None
    ) -> NodeRecord | None:
        """The node's record, with its output when it succeeded."""
        ...


@dataclass
class ReplayResult:
    execution: ExecutionRecord
    node: str
    index: int | None
    status: str
    inputs: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: BaseException | None = None
    skip_reason: str | None = None
    logs: list[LogEntry] = field(default_factory=list)
    recorded: NodeRecord | None = None
    verification: str = ""
    same_output: bool | None = None


class _ReplayRunner(NodeRunner):
    """The node runner, remembering the arguments it built and calling through ``call``."""

    def __init__(self, *args: Any, call: Callable[..., Any] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.call = call
        self.kwargs: dict[str, Any] | None = None

    def _invoke(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        self.kwargs = dict(kwargs)
        if self.call is not None:
            return self.call(fn, **kwargs)
        return fn(**kwargs)


def _data_params(node: Node) -> set[str]:
    return {p.name for p in node.params if p.kind is ParamKind.UPSTREAM}


def _check_upstream(
    dag: Dag, rec: ExecutionRecord, node: Node, dep: str, found: NodeRecord | None
) -> NodeRecord | None:
    """The upstream record to copy, or a ReplayError naming what is missing."""
    needed = dep in _data_params(node)
    where = f"cannot reconstruct the inputs of node {node.name!r} of {rec.name!r}"
    if found is None:
        if needed:
            raise ReplayError(f"{where}: upstream {dep!r} has no record (it never ran)")
        return None
    if found.status.is_failure and not dag[dep].options.continue_on_failure:
        # The run stopped there: this node never got inputs (replay the upstream instead).
        raise ReplayError(
            f"{where}: upstream {dep!r} {found.status.value} ({found.error}), so it never ran"
        )
    if found.status.is_terminal:
        return found
    if needed:
        raise ReplayError(f"{where}: upstream {dep!r} is {found.status.value}, it has no output")
    return None


def _copy(store: ExecutionStore, upstream: NodeRecord) -> None:
    """Write ``upstream``'s outcome into the scratch store through the store's own API."""
    key = NodeKey(upstream.execution_id, upstream.node)
    if upstream.status is NodeStatus.SKIPPED:
        store.skip_node(key, reason=upstream.skip_reason or "skipped")
        return
    store.claim_node(key, attempt=0, owner=_OWNER, lease_seconds=60.0)
    if upstream.status is NodeStatus.SUCCEEDED:
        store.complete_node(key, owner=_OWNER, output=upstream.output)
    else:
        store.fail_node(
            key,
            owner=_OWNER,
            error=upstream.error or "States.TaskFailed",
            cause=upstream.cause or "",
        )


def _items_of(source: ReplaySource, rec: ExecutionRecord, node: Node) -> int | None:
    src = node.options.map_over
    if src is None:
        return None
    found = source.node_record(rec, src)
    if found is None or found.status is not NodeStatus.SUCCEEDED:
        state = "never ran" if found is None else found.status.value
        raise ReplayError(
            f"cannot reconstruct the inputs of node {node.name!r}: its map source {src!r} "
            f"has no output ({state})"
        )
    return len(found.output) if isinstance(found.output, list) else None


def replay_node(
    dag: Dag,
    rec: ExecutionRecord,
    node_name: str,
    source: ReplaySource,
    *,
    index: int | None = None,
    call: Callable[..., Any] | None = None,
) -> ReplayResult:
    """Run ``node_name`` (or its Map item ``index``) of ``rec`` again, in-process.

    ``call(fn, **kwargs)`` replaces the plain call (``pdb.runcall`` under ``--pdb``).
    """
    if node_name not in dag.nodes:
        raise ReplayError(
            f"workflow {dag.workflow!r} has no node {node_name!r}; nodes: {', '.join(dag.nodes)}"
        )
    node = dag[node_name]
    count = _items_of(source, rec, node)
    if node.options.map_over is not None and index is None:
        raise ReplayError(
            f"node {node_name!r} runs once per item of {node.options.map_over!r} "
            f"({count} items): pass --index"
        )
    if node.options.map_over is None and index is not None:
        raise ReplayError(f"node {node_name!r} is not a map node; --index does not apply")
    if index is not None and count is not None and index >= count:
        raise ReplayError(
            f"--index {index} is out of range: {node.options.map_over!r} produced {count} items"
        )
    upstreams = [_check_upstream(dag, rec, node, d, source.node_record(rec, d)) for d in node.deps]
    recorded = source.node_record(rec, node_name, index)

    from stepdag.runtime.sqlite import SqliteStore

    sink = MemoryLogSink()
    with tempfile.TemporaryDirectory(prefix="stepdag-replay-") as tmp:
        scratch = SqliteStore(Path(tmp) / "replay.db")
        try:
            scratch.create_execution(
                replace(rec, status=RunStatus.RUNNING, output=None, ended_at=None)
            )
            for up in upstreams:
                if up is not None:
                    _copy(scratch, replace(up, execution_id=rec.execution_id))
            runner = _ReplayRunner(
                {dag.workflow: dag}, scratch, log_capture=LogCapture(sink), call=call
            )
            result = _run(runner, dag=dag, rec=rec, node=node, index=index, recorded=recorded)
            result.logs = sink.read(rec.execution_id)
        finally:
            scratch.close()
    result.verification = _verify(runner, dag, node, recorded, source)
    if (
        result.status == NodeStatus.SUCCEEDED.value
        and recorded is not None
        and recorded.status is NodeStatus.SUCCEEDED
        and (index is None or source.full_records)
    ):
        result.same_output = recorded.output == result.output
    return result


def _run(
    runner: _ReplayRunner,
    *,
    dag: Dag,
    rec: ExecutionRecord,
    node: Node,
    index: int | None,
    recorded: NodeRecord | None,
) -> ReplayResult:
    payload: dict[str, Any] = {
        "workflow": dag.workflow,
        "node": node.name,
        "phase": "run" if index is None else "item",
        "execution": rec.execution_id,
        "attempt": recorded.attempt if recorded is not None else 0,
        "redrive": 0,
    }
    if index is not None:
        payload["index"] = index
    result = ReplayResult(rec, node.name, index, NodeStatus.FAILED.value, recorded=recorded)
    try:
        runner.handle(payload)
    except Exception as exc:
        result.error = exc
    if runner.kwargs is not None:
        result.inputs = runner._dump_inputs(dag, node, runner.kwargs)
    done = runner.store.get_node(NodeKey(rec.execution_id, node.name, index))
    if result.error is None and done is not None:
        result.status = done.status.value
        result.output = done.output
        result.skip_reason = done.skip_reason
    return result


def _verify(
    runner: _ReplayRunner,
    dag: Dag,
    node: Node,
    recorded: NodeRecord | None,
    source: ReplaySource,
) -> str:
    if node.options.cache is None:
        return (
            "nothing pins this node's inputs (it has no cache=, so no input hash is "
            "recorded): they are the recorded execution input and upstream outputs"
        )
    if runner.kwargs is None:
        return "inputs not verified: the node function was not called"
    if not source.full_records:
        return "inputs not verified: the API does not serve the recorded cache key"
    if recorded is None or recorded.cache_key is None:
        return "inputs not verified: no cache key was recorded for this node"
    key = runner._cache_key(dag, node, runner.kwargs)
    if key == recorded.cache_key:
        return f"inputs verified: cache key {key[:12]}… equals the recorded one"
    return (
        f"inputs DIFFER from the recorded run: cache key {key[:12]}… != recorded "
        f"{recorded.cache_key[:12]}… (changed upstream outputs, or the node's code or cache "
        "version changed since)"
    )


__all__ = ["ReplayError", "ReplayResult", "ReplaySource", "replay_node"]

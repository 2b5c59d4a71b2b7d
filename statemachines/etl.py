"""ETL with fan-out/fan-in: extract, then three independent steps, a per-record Map, a report.

extract ─┬─ transform ── load (one run per record) ─┐
         ├─ validate ───────────────────────────────┼─ report (only if anything loaded)
         └─ profile ────────────────────────────────┘
"""

from __future__ import annotations

import hashlib
import statistics

from pydantic import BaseModel, Field

from stepdag import Retry, Workflow

wf = Workflow("etl", description="orders: extract, clean, load per record, report")


class ExtractParams(BaseModel):
    source: str = Field(description="logical source name, e.g. 'orders-2026-11'")
    count: int = Field(default=20, ge=0, le=2_000)


class Record(BaseModel):
    id: int
    customer: str
    amount_cents: int


class Clean(BaseModel):
    id: int
    customer: str
    amount: float


class Profile(BaseModel):
    rows: int
    mean_amount: float
    customers: int


class SchemaReport(BaseModel):
    valid: int
    invalid_ids: list[int]


class LoadResult(BaseModel):
    id: int
    partition: str


class Report(BaseModel):
    loaded: int
    partitions: dict[str, int]
    mean_amount: float
    invalid: int


@wf.node
def extract(params: ExtractParams) -> list[Record]:
    # Deterministic pseudo-data so runs are reproducible (a real source would be S3/SQL).
    out = []
    for i in range(params.count):
        digest = hashlib.sha256(f"{params.source}:{i}".encode()).digest()
        out.append(Record(id=i, customer=f"c{digest[0] % 7}", amount_cents=digest[1] * 37 - 900))
    return out


@wf.node(retry=Retry(max_attempts=3, backoff_rate=2.0), timeout=60)
def transform(extract: list[Record]) -> list[Clean]:
    return [
        Clean(id=r.id, customer=r.customer, amount=r.amount_cents / 100)
        for r in extract
        if r.amount_cents >= 0
    ]


@wf.node
def validate(extract: list[Record]) -> SchemaReport:
    bad = [r.id for r in extract if r.amount_cents < 0]
    return SchemaReport(valid=len(extract) - len(bad), invalid_ids=bad)


@wf.node
def profile(extract: list[Record]) -> Profile:
    amounts = [r.amount_cents / 100 for r in extract] or [0.0]
    return Profile(
        rows=len(extract),
        mean_amount=round(statistics.fmean(amounts), 2),
        customers=len({r.customer for r in extract}),
    )


@wf.node(map_over="transform", max_concurrency=10, max_items=2_000)
def load(transform: Clean) -> LoadResult:
    partition = f"customer={transform.customer}"
    return LoadResult(id=transform.id, partition=partition)


@wf.node(when=lambda load: len(load) > 0)
def report(load: list[LoadResult], validate: SchemaReport, profile: Profile) -> Report:
    partitions: dict[str, int] = {}
    for item in load:
        partitions[item.partition] = partitions.get(item.partition, 0) + 1
    return Report(
        loaded=len(load),
        partitions=dict(sorted(partitions.items())),
        mean_amount=profile.mean_amount,
        invalid=len(validate.invalid_ids),
    )


# Entry points (deployed as an EventBridge Scheduler schedule and an EventBridge rule).
wf.on_schedule(
    "cron(0 2 * * ? *)", timezone="Europe/Berlin", input={"source": "nightly"}, name="nightly"
)
wf.on_event(
    {"source": ["orders.service"], "detail-type": ["OrdersExported"]},
    input={"source": "$.detail.source"},
    name="orders-exported",
)

"""Document pipeline with retries and a conditional branch.

fetch (retried on transient errors) → detect → ocr (only for scanned PDFs) → classify
(retried with backoff) → summarize ∥ index → publish (only when confidently classified).
A skipped ``ocr`` does not skip ``classify``: it opts in and reads the text another way.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from stepdag import Retry, Workflow

wf = Workflow("documents", description="ingest, OCR when needed, classify, summarise, publish")


class TransientFetchError(Exception):
    """The document store hiccupped; worth retrying."""


class DocumentParams(BaseModel):
    uri: str
    content: str
    mime_type: str = "text/plain"


class Document(BaseModel):
    uri: str
    mime_type: str
    raw: str


class Detection(BaseModel):
    scanned: bool
    language: str


class OcrText(BaseModel):
    text: str
    pages: int


class Classification(BaseModel):
    label: str
    confidence: float
    text: str


class Summary(BaseModel):
    sentences: list[str]


class IndexEntry(BaseModel):
    terms: list[str]


class Publication(BaseModel):
    uri: str
    label: str
    summary: str
    terms: int


@wf.node(retry=Retry(max_attempts=4, interval=1, backoff_rate=2.0, errors=(TransientFetchError,)))
def fetch(params: DocumentParams) -> Document:
    return Document(uri=params.uri, mime_type=params.mime_type, raw=params.content)


@wf.node
def detect(fetch: Document) -> Detection:
    scanned = fetch.mime_type == "application/pdf" and fetch.raw.startswith("%SCAN")
    words = re.findall(r"[a-zäöüß]+", fetch.raw.lower())
    german = sum(w in {"der", "die", "und", "das"} for w in words)
    return Detection(scanned=scanned, language="de" if german > 1 else "en")


@wf.node(when=lambda detect: detect.scanned, timeout=120)
def ocr(fetch: Document) -> OcrText:
    body = fetch.raw.removeprefix("%SCAN").strip()
    return OcrText(text=body, pages=max(1, body.count("\f") + 1))


@wf.node(
    retry=Retry(max_attempts=3, interval=2, backoff_rate=2.0, max_delay=10, jitter="FULL"),
    on_upstream_skipped="run",
)
def classify(
    fetch: Document | None, ocr: OcrText | None, detect: Detection | None
) -> Classification:
    text = ocr.text if ocr is not None else (fetch.raw if fetch else "")
    lowered = text.lower()
    scores = {
        "invoice": lowered.count("invoice") + lowered.count("amount due"),
        "contract": lowered.count("agreement") + lowered.count("party"),
        "report": lowered.count("summary") + lowered.count("findings"),
    }
    label, best = max(scores.items(), key=lambda kv: kv[1])
    total = sum(scores.values())
    return Classification(
        label=label if best else "other", confidence=best / total if total else 0.0, text=text
    )


@wf.node
def summarize(classify: Classification) -> Summary:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", classify.text) if s.strip()]
    return Summary(sentences=sentences[:2])


@wf.node
def index(classify: Classification) -> IndexEntry:
    terms = sorted(set(re.findall(r"[a-z]{4,}", classify.text.lower())))
    return IndexEntry(terms=terms)


@wf.node(when=lambda classify: classify.confidence >= 0.5)
def publish(
    summarize: Summary, index: IndexEntry, classify: Classification, fetch: Document
) -> Publication:
    return Publication(
        uri=fetch.uri,
        label=classify.label,
        summary=" ".join(summarize.sentences),
        terms=len(index.terms),
    )

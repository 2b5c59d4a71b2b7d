"""AWS plumbing: lazy boto3 clients, AWS error translation, the DynamoDB store's S3 offload.

Shared by every AWS-backed part of the runtime -- the DynamoDB store, the Step Functions
launcher (``runtime/stepfunctions.py``), the status recorder.  Nothing here imports
boto3/botocore at module level: the pure core (and the local engine) must import without
the ``aws`` extra, and a Lambda should not pay for a client it never uses.  Clients are
created on first use -- not at import, not in ``__init__`` -- so a store can be built at
module scope of a handler (outside the handler function, to be reused across
invocations) without touching the network or the credential chain.

Offloaded payloads are *content-addressed*: the object key ends in the SHA-256 of the
JSON text.  The store uploads *before* its conditional write (see
``ExecutionStore._offload``), so a writer that then loses the race must never overwrite
the winner's object; with content addressing it cannot -- a different value gets a
different key, the same value the same bytes.  The digest also lets reads detect a
corrupted or swapped object.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from stepdag.core.errors import StoreError
from stepdag.runtime.store import StoreUnavailable

REF_SCHEME: Final = "s3://"
"""Stored values starting with this are references.  JSON text can never start with
``s`` (it starts with ``{ [ " - 0-9 t f n``), so a reference and an inline value cannot be
confused, and no marker attribute is needed."""

# Error codes after which retrying later may succeed (throttling, server-side hiccups).
# botocore already retried them (standard mode); reaching us means the budget ran out.
_UNAVAILABLE_CODES: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionInProgressException",
    }
)
# Per-operation reasons of a cancelled DynamoDB transaction that mean "throttled".
_THROTTLED_REASONS: Final = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_DIGEST_KEY: Final = re.compile(r"/([0-9a-f]{64})\.json$")


class PayloadGone(StoreError):
    """An offloaded object no longer exists (e.g. expired by a bucket lifecycle rule)."""


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (duck-typed: no botocore import)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


def translate(exc: Exception, operation: str) -> StoreError | None:
    """The stepdag error for an AWS/botocore exception, or None if ``exc`` is not one."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
    )

    if isinstance(exc, ClientError):
        code = error_code(exc) or "Unknown"
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or ()}
        if code in _UNAVAILABLE_CODES or reasons & _THROTTLED_REASONS:
            return StoreUnavailable(f"{operation}: {code}: {message}")
        return StoreError(f"{operation} failed: {code}: {message}")
    if isinstance(exc, ConnectionError | HTTPClientError):  # timeouts, refused, reset
        return StoreUnavailable(f"{operation}: {exc}")
    if isinstance(exc, NoCredentialsError):
        return StoreError(f"{operation}: no AWS credentials found ({exc})")
    if isinstance(exc, BotoCoreError):
        return StoreError(f"{operation} failed: {exc}")
    return None


@contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Translate AWS exceptions raised inside into StoreErrors, chained ``from exc``."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        error = translate(exc, operation)
        if error is None:
            raise
        raise error from exc


class LazyClient:
    """A boto3 client created on first :meth:`get` (thread-safe), unless one was given.

    Mirrors Powertools' ``DynamoDBPersistenceLayer`` arguments (``boto3_client``,
    ``boto3_session``, ``boto_config``), but defers the creation: boto3 sessions are not
    thread-safe, hence the lock; the client itself is.
    """

    def __init__(
        self,
        service: str,
        client: Any = None,  # a boto3 client; Any because boto3 ships no type stubs
        *,
        session: Any = None,
        config: Any = None,
    ) -> None:
        self.service = service
        self._client = client
        self._owned = client is None  # close only what we created
        self._session = session
        self._config = config
        self._lock = threading.Lock()

    def get(self) -> Any:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._create()
            return self._client

    def _create(self) -> Any:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        # Standard retry mode: exponential backoff with jitter on throttling, and a
        # bounded budget so a Lambda fails fast instead of sleeping through its timeout.
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        if self._config is not None:
            config = config.merge(self._config)
        session = self._session or boto3.session.Session()
        with aws_errors(f"create {self.service} client"):
            return session.client(self.service, config=config)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._owned:
            client.close()


def is_ref(stored: str) -> bool:
    return stored.startswith(REF_SCHEME)


def parse_ref(ref: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` reference."""
    bucket, sep, key = ref[len(REF_SCHEME) :].partition("/")
    if not is_ref(ref) or not bucket or not sep or not key:
        raise StoreError(f"malformed offload reference {ref!r}")
    return bucket, key


class S3Blobs:
    """Writes JSON blobs to ``s3://bucket/<prefix><location>/<sha256>.json``; reads them back.

    ``bucket`` None: read-only (references name their own bucket, so a store without a
    bucket can still read what another one offloaded).
    """

    def __init__(self, client: LazyClient, bucket: str | None = None, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def put(self, location: str, blob: str) -> str:
        if self.bucket is None:
            raise StoreError("S3 offload needs a bucket")
        data = blob.encode()
        key = f"{self.prefix}{location}/{hashlib.sha256(data).hexdigest()}.json"
        with aws_errors(f"upload s3://{self.bucket}/{key}"):
            self.client.get().put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json"
            )
        return f"{REF_SCHEME}{self.bucket}/{key}"

    def get(self, ref: str) -> str:
        bucket, key = parse_ref(ref)
        with aws_errors(f"download {ref}"):
            try:
                body = self.client.get().get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    # Deleted by a lifecycle rule shorter than the item's retention.
                    raise PayloadGone(f"offloaded payload {ref} is gone") from exc
                raise
            try:
                data: bytes = body.read()
            finally:
                body.close()
        match = _DIGEST_KEY.search(key)
        if match is not None and hashlib.sha256(data).hexdigest() != match.group(1):
            raise StoreError(f"offloaded payload {ref} does not match its digest")
        return data.decode()

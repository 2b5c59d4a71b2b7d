"""Make moto's in-process backend linearizable, like a real server.

moto runs each request in the calling thread and its DynamoDB backend checks a condition
and then writes without a lock, so two threads can both pass the same condition -- a
race no real DynamoDB has (measured: 8 threads racing one ``attribute_not_exists`` put
had several winners in ~7% of rounds; the API tests lost whole execution items from an
index). One lock around request processing restores per-request atomicity; it cannot
hide a race in the store itself, whose read and conditional write are separate
requests. (The concurrency tests also run, without this, against DynamoDB Local.)
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber


def serialize_moto(patch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    patch.setattr(BotocoreStubber, "process_request", process_request)

"""Fixtures for the ASL interpreter tests."""

from __future__ import annotations

import pytest

from stepdag.asl import VirtualClock


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()

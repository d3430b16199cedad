"""Fixtures of the grants tests (the brokers themselves: tests/support/brokers.py)."""

from __future__ import annotations

import pytest

from tests.support.brokers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()

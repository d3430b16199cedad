"""The ledger of takes whose undo could not be sent yet (store/unsettled.py): a read of
the same key sends the undo first or fails; the rest wait for the background retry; an
undo is given up, loudly, once its operation key is gone."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError

from broker.store import StoreError
from broker.store.unsettled import UnsettledTakes


class Master:
    def __init__(self) -> None:
        self.up = False
        self.undone: list[tuple[str, str, list[str]]] = []

    async def undo(self, key: str, op: str, written: list[str]) -> None:
        if not self.up:
            raise ConnectionError("Connection refused")
        self.undone.append((key, op, written))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_read_of_the_key_sends_its_undo_first_or_fails():
    master = Master()
    ledger = UnsettledTakes(master.undo, keep=60, every=3600, clock=Clock())
    ledger.add("code", "op1", ["family"])
    with pytest.raises(StoreError, match="refused"):
        await ledger.settle(["spent", "code"])  # no master yet: the read must not go on
    await ledger.settle(["other"])  # another key's read is not held up
    assert master.undone == [] and ledger
    master.up = True
    await ledger.settle(["spent", "code"])
    assert master.undone == [("code", "op1", ["family"])]
    assert not ledger
    await ledger.settle(["code"])  # sent once
    assert len(master.undone) == 1
    await ledger.aclose()


async def test_the_undo_is_retried_in_the_background():
    master = Master()
    ledger = UnsettledTakes(master.undo, keep=60, every=0.01, clock=Clock())
    ledger.add("code", "op1", [])
    master.up = True
    for _ in range(100):
        if not ledger:
            break
        await asyncio.sleep(0.01)
    assert master.undone == [("code", "op1", [])]
    await ledger.aclose()


async def test_an_undo_is_given_up_with_an_error_once_its_operation_key_is_gone(caplog):
    master, clock = Master(), Clock()
    ledger = UnsettledTakes(master.undo, keep=60, every=3600, clock=clock)
    ledger.add("code", "op1", [])
    clock.now += 59
    with pytest.raises(StoreError):
        await ledger.settle(["code"])
    assert ledger  # still kept
    clock.now += 1
    with caplog.at_level(logging.ERROR), pytest.raises(StoreError):
        await ledger.settle(["code"])
    assert not ledger
    assert "gave up undoing a take" in caplog.text
    master.up = True
    await ledger.settle(["code"])  # nothing left to send: its operation key has expired
    assert master.undone == []
    await ledger.aclose()

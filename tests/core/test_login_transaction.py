"""The login transaction's saves: once per request, never after it has ended."""

from __future__ import annotations

from broker.login_transaction import Transactions
from broker.security import CsrfTokens
from broker.store.memory import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    async def put(self, key, value, ttl):
        self.puts += 1
        await super().put(key, value, ttl)


def transactions(store: CountingStore) -> Transactions:
    return Transactions(store, ttl=600, csrf=CsrfTokens(b"k" * 32))


async def test_a_request_that_changed_nothing_writes_nothing():
    store = CountingStore()
    txns = transactions(store)
    created = await txns.create("rp", {"scope": "openid"})
    txn = await txns.get(created.id)
    before = store.puts
    await txns.save_if_changed(txn)
    assert store.puts == before
    txn.upstream["bankid"] = {"order": {"status": "pending"}}  # a nested change counts
    await txns.save_if_changed(txn)
    assert store.puts == before + 1
    assert (await txns.get(txn.id)).upstream == txn.upstream
    await txns.save_if_changed(txn)  # what it just wrote: nothing more
    assert store.puts == before + 1


async def test_the_binding_is_saved_by_the_save_at_the_end_of_the_request():
    store = CountingStore()
    txns = transactions(store)
    txn = await txns.get((await txns.create("rp", {})).id)
    txns.bind(txn, "browser-digest")
    assert (await txns.get(txn.id)).browser is None  # in memory until then
    await txns.save_if_changed(txn)
    stored = await txns.get(txn.id)
    assert stored.browser == "browser-digest" and stored.expires == txn.expires


async def test_an_ended_transaction_is_not_brought_back():
    store = CountingStore()
    txns = transactions(store)
    txn = await txns.get((await txns.create("rp", {})).id)
    txn.method = "bankid"
    await txns.end(txn)  # the code was issued
    await txns.save_if_changed(txn)
    assert await txns.get(txn.id) is None

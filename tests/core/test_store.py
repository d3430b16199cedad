"""The store's semantics, identical on Redis and in memory."""

import asyncio

import pytest

from broker.store import MemoryStore, open_store
from broker.store.redis import parse_sentinel_url


@pytest.fixture(params=["memory", "redis"])
async def store(request, redis):
    s = MemoryStore() if request.param == "memory" else open_store(redis, prefix="storetest:")
    yield s
    await s.close()


async def test_take_is_once(store):
    await store.put("k", {"v": 1}, 10)
    results = await asyncio.gather(*(store.take("k") for _ in range(20)))
    assert [r for r in results if r] == [{"v": 1}]
    assert await store.get("k") is None


async def test_ttl_and_put_new(store):
    assert await store.put_new("n", {"a": 1}, 1)
    assert not await store.put_new("n", {"a": 2}, 1)
    assert (await store.get("n")) == {"a": 1}
    assert 0 <= (await store.ttl("n")) <= 1
    await asyncio.sleep(1.2)
    assert await store.get("n") is None


async def test_many_members_and_counters(store):
    await store.put_many([("a", {"x": 1}, 10), ("b", {"x": 2}, 10)])
    assert await store.get_many(["a", "missing", "b"]) == [{"x": 1}, None, {"x": 2}]
    await store.add_member("set", "one", 10)
    await store.add_member("set", "two", 10)
    assert await store.members("set") == {"one", "two"}
    assert [await store.incr("c", 10) for _ in range(3)] == [1, 2, 3]
    await store.delete("a", "b")
    assert await store.get_many(["a", "b"]) == [None, None]


def test_sentinel_url():
    opts = parse_sentinel_url("redis+sentinel://:pw@h1:26379,h2:26380/mymaster/2?sentinel_password=sp")
    assert opts["hosts"] == [("h1", 26379), ("h2", 26380)]
    assert (opts["service"], opts["db"], opts["password"], opts["sentinel_password"]) == ("mymaster", 2, "pw", "sp")


async def test_take_and_put_is_atomic_and_once(store):
    await store.put("code", {"c": 1}, 10)
    results = await asyncio.gather(*(
        store.take_and_put("code", [(f"tok{i}", {"i": i}, 10)]) for i in range(10)))
    assert [r for r in results if r] == [{"c": 1}]
    written = [i for i in range(10) if await store.get(f"tok{i}")]
    assert len(written) == 1, "only the winner's records are written"
    assert await store.take_and_put("code", [("late", {}, 10)]) is None
    assert await store.get("late") is None

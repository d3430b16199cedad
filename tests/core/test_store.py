"""The store's semantics, identical on Redis and in memory."""

import asyncio

import pytest

from broker.store import MemoryStore, StoreError, open_store
from broker.store.redis import parse_sentinel_url
from tests.support.redis import free_port, redis_server


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request, redis):
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "redis":
        s = open_store(redis, prefix="storetest:")
    else:
        s = open_store(request.getfixturevalue("redis_cluster_url"), prefix="storetest:")
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


async def test_many_and_counters(store):
    await store.put_many([("a", {"x": 1}, 10), ("b", {"x": 2}, 10)])
    assert await store.get_many(["a", "missing", "b"]) == [{"x": 1}, None, {"x": 2}]
    assert [await store.incr("c", 10) for _ in range(3)] == [1, 2, 3]
    await store.delete("a", "b")
    assert await store.get_many(["a", "b"]) == [None, None]


async def test_index_holds_live_members_only_and_expires_with_the_last(store):
    now = 1_000_000
    await store.index_add("idx", "old", now + 5, now)
    await store.index_add("idx", "new", now + 50, now)
    assert await store.index_members("idx", now) == {"old", "new"}
    assert await store.index_members("idx", now + 10) == {"new"}  # "old" has expired
    await store.index_add("idx", "newer", now + 30, now + 10)  # a write drops the expired
    assert await store.index_members("idx", now) == {"new", "newer"}
    assert 0 < await store.ttl("idx") <= 40  # no longer than its longest-lived member
    await store.index_add("idx", "new", now + 20, now + 10)  # re-dated, not added twice
    assert await store.index_members("idx", now + 25) == {"newer"}
    await store.index_remove("idx", "newer")
    assert await store.index_members("idx", now + 10) == {"new"}


async def test_compare_and_put_lets_exactly_one_of_concurrent_callers_win(store):
    await store.put("{t}state", {"gen": 3, "x": "a"}, 10)
    results = await asyncio.gather(*(
        store.compare_and_put("{t}state", "gen", 3, {"gen": 4, "x": f"w{i}"}, 10,
                              [(f"{{t}}item{i}", {"i": i}, 10)]) for i in range(8)))
    winners = [i for i, (moved, _) in enumerate(results) if moved]
    assert len(winners) == 1
    won = {"gen": 4, "x": f"w{winners[0]}"}
    assert all(current == won for moved, current in results if not moved)
    assert await store.get("{t}state") == won
    assert [i for i in range(8) if await store.get(f"{{t}}item{i}")] == winners
    # Absent expected: only when the key does not exist.
    assert (await store.compare_and_put("{t}fresh", "gen", None, {"gen": 0}, 10)) == (True, None)
    assert (await store.compare_and_put("{t}fresh", "gen", None, {"gen": 9}, 10)) == (False, {"gen": 0})
    assert (await store.compare_and_put("{t}missing", "gen", 1, {"gen": 2}, 10)) == (False, None)


def test_sentinel_url():
    opts = parse_sentinel_url("redis+sentinel://:pw@h1:26379,h2:26380/mymaster/2?sentinel_password=sp")
    assert opts["hosts"] == [("h1", 26379), ("h2", 26380)]
    assert (opts["service"], opts["db"], opts["password"], opts["sentinel_password"]) == ("mymaster", 2, "pw", "sp")


async def test_take_and_put_is_atomic_and_once(store):
    # Keys of one atomic step share a hash tag (Redis Cluster keeps them in one slot).
    await store.put("{t}code", {"c": 1}, 10)
    results = await asyncio.gather(*(
        store.take_and_put("{t}code", [(f"{{t}}tok{i}", {"i": i}, 10)]) for i in range(10)))
    assert results.count(True) == 1
    written = [i for i in range(10) if await store.get(f"{{t}}tok{i}")]
    assert written == [results.index(True)], "only the winner's records are written"
    assert await store.get("{t}code") is None
    assert await store.take_and_put("{t}code", [("{t}late", {}, 10)]) is False
    assert await store.get("{t}late") is None


async def test_concurrent_callers_each_get_their_own_answer(store):
    """Commands of many requests in flight share round trips (Redis); none sees another's."""
    await store.put_many([(f"k{i}", {"i": i}, 10) for i in range(100)])

    async def one(i: int):
        if i % 3 == 0:
            return await store.get(f"k{i}")
        if i % 3 == 1:
            return (await store.get_many([f"k{i}", "missing"]))[0]
        return await store.take(f"k{i}")

    results = await asyncio.gather(*(one(i) for i in range(100)))
    assert results == [{"i": i} for i in range(100)]
    assert [await store.get(f"k{i}") for i in range(2, 100, 3)] == [None] * 33


async def test_a_failing_command_fails_only_its_caller(redis):
    store = open_store(redis, prefix=f"storetest-{id(redis)}:")
    try:
        await store.index_add("a-set", "x", 2e9, 1e9)
        await store.put("plain", {"ok": True}, 10)
        bad, good = await asyncio.gather(store.get("a-set"), store.get("plain"),
                                         return_exceptions=True)
        assert isinstance(bad, StoreError) and "WRONGTYPE" in str(bad)
        assert good == {"ok": True}
    finally:
        await store.close()


async def test_redis_down_is_a_store_error_for_every_caller_and_recovers(tmp_path):
    port = free_port()
    with redis_server(port) as (url, proc):
        store = open_store(url, prefix="down:", timeout=0.5)
        await store.put("k", {"v": 1}, 60)
        proc.terminate()
        proc.wait(10)
        results = await asyncio.wait_for(
            asyncio.gather(*(store.get("k") for _ in range(10)), return_exceptions=True), 10)
        assert all(isinstance(r, StoreError) for r in results), results
    with redis_server(port) as (url, _):
        await store.put("k", {"v": 2}, 60)  # pooled connections were dropped and reopened
        assert await store.get("k") == {"v": 2}
    await store.close()


async def test_a_schedule_gives_each_due_member_to_one_claimer_and_leases_it(store):
    await store.schedule("due", "a", 100)
    await store.schedule("due", "b", 105)
    await store.schedule("due", "later", 500)
    claims = await asyncio.gather(*(store.claim_due("due", 110, 30, 10) for _ in range(5)))
    assert sorted(m for c in claims for m in c) == ["a", "b"]  # each to exactly one claimer
    assert await store.claim_due("due", 120, 30, 10) == []  # leased until 140
    assert sorted(await store.claim_due("due", 141, 30, 10)) == ["a", "b"]  # lease ran out
    await store.schedule("due", "a", 200)  # re-scheduled: moved, not added
    await store.unschedule("due", "b")
    assert await store.scheduled("due") == 2
    assert await store.claim_due("due", 300, 30, 1) == ["a"]  # at most `limit`, oldest first

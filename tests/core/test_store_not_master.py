"""A write refused by a node that is no longer a master keeps its own error, even in a
batch that waits for replicas: the store then looks for the master again at once.

Masked as "not replicated" (as it once was), the write would be resent to the same
demoted node until the store's patience ran out, and on a Redis Cluster the MOVED
redirect that refreshes the slot map was lost with it: after a planned failover, every
request that wrote failed for as long as no read happened to refresh the map."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from broker.store import StoreError, open_store
from broker.store.pipelining import AutoPipeline, NotReplicated, replicated
from broker.store.redis import RedisStore
from tests.support.redis import redis_server


def test_a_refused_write_keeps_its_error_and_a_write_that_ran_is_not_replicated():
    refused = Exception("READONLY You can't write against a read only replica.")
    batch = [(("SET", "a", "1"), None), (("GET", "b"), None), (("SET", "c", "1"), None)]
    out = replicated(batch, [refused, b"x", b"OK", 0], replicas=1)
    assert out[0] is refused and out[1] == b"x" and isinstance(out[2], NotReplicated)


async def test_a_replica_refuses_at_once_with_readonly_not_after_the_patience():
    with redis_server() as (master_url, _), redis_server() as (replica_url, _):
        master = master_url.rsplit(":", 1)[1].split("/")[0]
        admin = aioredis.from_url(replica_url)
        await admin.execute_command("REPLICAOF", "127.0.0.1", master)
        await admin.aclose()
        store = open_store(replica_url, prefix="notmaster:", replicas=1, replica_timeout=1.0)
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match="read only replica"):
                await store.put("k", {"v": 1}, 10)
            assert time.monotonic() - started < 1.0  # the patience is 5 s here
        finally:
            await store.close()


class _BrokenConnection:
    """redis-py's asyncio connection, dropped by another request mid-send."""

    def pack_commands(self, commands):
        return [b"packed"]

    async def send_packed_command(self, packed):
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    async def disconnect(self, nowait=False):
        pass


class _BrokenPool:
    async def get_connection(self):
        return _BrokenConnection()

    async def release(self, connection):
        pass


class _BrokenClient:
    connection_pool = _BrokenPool()


async def test_a_client_failing_mid_send_is_a_lost_reply_not_an_unexpected_error():
    pipeline = AutoPipeline(_BrokenClient(), replicas=1)  # writes go as a pipeline
    with pytest.raises(RedisConnectionError, match="AttributeError"):
        await pipeline.execute("SET", "k", "v")
    # So the store answers its clean 503 (StoreError), never a 500.
    store = RedisStore(_BrokenClient(), replicas=1, replica_timeout=0.01)
    with pytest.raises(StoreError, match="AttributeError"):
        await store.put("k", {"v": 1}, 10)


async def test_a_master_short_of_replicas_is_waited_for_not_refused_at_once():
    """NOREPLICAS (min-replicas-to-write) means "not yet": the write waits, within the
    store's patience, for a replica to come back, as a person's login should."""
    with redis_server() as (master_url, _), redis_server() as (replica_url, _):
        master = aioredis.from_url(master_url)
        await master.config_set("min-replicas-to-write", 1)
        await master.config_set("repl-diskless-sync-delay", 0)  # a replica syncs at once
        # Patience 5 s; refused at once, two tries with their WAITs take about 2 s.
        store = open_store(master_url, prefix="noreplicas:", replicas=1, replica_timeout=1.0)
        replica = aioredis.from_url(replica_url)
        try:
            write = asyncio.ensure_future(store.put("k", {"v": 1}, 10))
            await asyncio.sleep(2.5)
            assert not write.done(), "refused at once instead of waiting for a replica"
            await replica.execute_command("REPLICAOF", "127.0.0.1",
                                          master_url.rsplit(":", 1)[1].split("/")[0])
            await write
            assert await store.get("k") == {"v": 1}
        finally:
            await store.close()
            await master.aclose()
            await replica.aclose()

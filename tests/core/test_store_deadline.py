"""One deadline per exchange with Redis, not a socket timeout per reply.

The store's connections carry no socket timeout (a timer per reply and a task per write
were a sixth of a BankID login's CPU); the pipeline holds each exchange, from taking a
pooled connection to the last reply, to the store's `timeout`. So a Redis that stops
answering still costs a request at most that long, and a reply that comes too late is
never read as the answer to somebody else's command."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.store import StoreError
from broker.store.pipelining import AutoPipeline
from broker.store.redis import RedisStore, connect
from tests.support.proxy import redis_proxy
from tests.support.redis import redis_server


async def test_a_reply_slower_than_the_deadline_is_a_timeout_not_a_wait():
    # WAIT for a replica that does not exist blocks on the server for its own timeout.
    with redis_server() as (url, _):
        client = connect(url, timeout=5.0)
        pipeline = AutoPipeline(client, timeout=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError, match=r"within 0\.3 s"):
                await pipeline.now("WAIT", 1, 3000)
            assert time.monotonic() - started < 1.5
        finally:
            await client.aclose()


async def test_a_late_reply_is_never_read_as_the_next_commands():
    with redis_server() as (url, _):
        client = connect(url, timeout=5.0)
        pipeline = AutoPipeline(client, timeout=0.2)
        try:
            with pytest.raises(RedisTimeoutError):
                await pipeline.now("WAIT", 1, 400)  # its reply, 0, comes at 0.4 s
            await asyncio.sleep(0.4)  # ... and is on the wire now
            assert await pipeline.execute("SET", "k", "v") == b"OK"
            assert await pipeline.execute("GET", "k") == b"v"
        finally:
            await client.aclose()


async def test_a_redis_that_never_answers_costs_a_request_the_deadline_twice_at_most():
    with redis_server() as (url, _), redis_proxy(url) as proxy:
        store = RedisStore.from_url(proxy.url, prefix="deadline:", timeout=0.3)
        try:
            await store.put("k", {"v": 1}, 60)
            proxy.lose_reply_to(b"GET", "hang")
            started = time.monotonic()
            # Its reply swallowed, then the store's one retry on a new connection answers.
            assert await asyncio.wait_for(store.get("k"), 5) == {"v": 1}
            assert proxy.dropped == 1
            assert 0.3 <= time.monotonic() - started < 1.5
            proxy.set_down(True)
            with pytest.raises(StoreError):
                await asyncio.wait_for(store.get("k"), 5)
        finally:
            proxy.set_down(False)
            await store.close()

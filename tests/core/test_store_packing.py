"""The store's connections pack commands with hiredis (bench/: a tenth of a BankID
login's CPU went to redis-py's Python packer): byte for byte what redis-py sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from broker.store.redis import HiredisPacking, connect

COMMANDS = [
    ("SET", "broker:k", b"\x00\xff{\"v\": 1}", "EX", 60),
    ("EVAL", "return redis.call('GET', KEYS[1]) -- åäö", 2, "{a}|k", "{a}|op:x", 60, b"v"),
    ("ZADD", "broker:idx", 1796183175.25, "member"),
    ("ZRANGEBYSCORE", "broker:idx", "-inf", 1.5, "LIMIT", 0, 10),
    ("WAIT", 1, 500),
    ("CLUSTER INFO",),
    (b"CONFIG GET", "maxmemory"),
]


class Packing(HiredisPacking, Connection):
    pass


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_same_bytes_as_redis_py(command):
    ours, theirs = Packing(), Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_the_store_connects_with_it():
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"):
        pool = connect(url).connection_pool
        assert issubclass(pool.connection_class, HiredisPacking), url

"""Redis store: the production store and the way to scale out.

Plain Redis (`redis://`, `rediss://`) and Sentinel (`redis+sentinel://`) share one code path;
only the connection differs. Every key carries the configured prefix so one Redis can serve
several deployments.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError

from . import scripts
from .base import Record, StoreError
from .codec import Codec, PlainCodec
from .pipelining import AutoPipeline


def parse_sentinel_url(url: str) -> dict:
    """Split `redis+sentinel://[user:pass@]h1:26379,h2:26379/service[/db][?opts]`.

    The password in the URL is the master's; `sentinel_password` in the query, when the
    sentinels themselves need one.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        creds, netloc = netloc.rsplit("@", 1)
        if ":" in creds:
            username, password = (unquote(x) or None for x in creds.split(":", 1))
        else:
            password = unquote(creds) or None
    hosts: list[tuple[str, int]] = []
    for hostport in netloc.split(","):
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "26379")
        hosts.append((host.strip("[]"), int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("redis+sentinel URL needs the service name as its path")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "hosts": hosts,
        "service": path[0],
        "db": int(path[1]) if len(path) > 1 else 0,
        "username": username,
        "password": password,
        "sentinel_password": query.get("sentinel_password"),
        "ssl": query.get("ssl", "false").lower() in ("1", "true", "yes"),
    }


def connect(url: str, *, timeout: float = 2.0, max_connections: int = 64) -> aioredis.Redis:
    common = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        # redis-py must not resend on its own: it would resend a whole pipeline, a code
        # redemption included, after a lost reply. RedisStore retries, with operation keys.
        "retry": Retry(NoBackoff(), 0),
    }
    if url.startswith("redis+sentinel://"):
        opts = parse_sentinel_url(url)
        sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if opts["sentinel_password"]:
            sentinel_kwargs["password"] = opts["sentinel_password"]
        sentinel = Sentinel(opts["hosts"], sentinel_kwargs=sentinel_kwargs, **common)
        return sentinel.master_for(
            opts["service"],
            db=opts["db"],
            username=opts["username"],
            password=opts["password"],
            ssl=opts["ssl"],
            max_connections=max_connections,
        )
    return aioredis.Redis.from_url(url, max_connections=max_connections, **common)


# A connection lost or a reply not received in time: the command may or may not have run.
_LOST = (ConnectionError, TimeoutError, OSError)
# How long an operation key remembers its outcome: far longer than one retry takes.
OP_TTL = 60


class RedisStore:
    """Each operation is tried at most twice: once more, after a short pause, when the
    connection was lost or the reply did not come (a restarted Redis, a Sentinel
    fail-over: the reconnect asks the sentinels for the current master, and a demoted
    master's READONLY becomes a connection error in redis-py). More would only hold a
    request, and a readiness probe, longer while Redis is really down; the request then
    gets a clean 503. Operations a second run would not repeat carry an operation key
    (see scripts.py), so the retry returns the first run's outcome."""

    def __init__(self, client: aioredis.Redis, prefix: str = "broker:",
                 retry_pause: float = 0.05, codec: Codec | None = None) -> None:
        self._r = client
        self._p = prefix
        self._codec = codec or PlainCodec()
        self._pause = retry_pause
        # Single commands share a pipeline with those of other requests in flight.
        self._pipeline = AutoPipeline(client)

    @classmethod
    def from_url(cls, url: str, prefix: str = "broker:", timeout: float = 2.0,
                 codec: Codec | None = None) -> RedisStore:
        return cls(connect(url, timeout=timeout), prefix, codec=codec)

    def _k(self, key: str) -> str:
        return self._p + key

    def _op(self, key: str) -> str:
        # Next to the key it guards (same hash tag, so the same cluster slot).
        return f"{self._p}{key}|op:{new_op_id()}"

    def _load(self, raw: bytes | None) -> Record | None:
        if raw is None:
            return None
        try:
            return self._codec.decode(raw)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc

    async def _run(self, *args: Any) -> Any:
        try:
            return await self._pipeline.execute(*args)
        except _LOST:
            await asyncio.sleep(self._pause)
        except RedisError as exc:
            raise StoreError(str(exc)) from exc
        try:
            return await self._pipeline.execute(*args)
        except (RedisError, OSError) as exc:
            raise StoreError(str(exc) or type(exc).__name__) from exc

    async def put(self, key: str, value: Record, ttl: int) -> None:
        await self._run("SET", self._k(key), self._codec.encode(value), "EX", int(ttl))

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        if items:
            await asyncio.gather(*(self.put(key, value, ttl) for key, value, ttl in items))

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        return bool(await self._run("EVAL", scripts.PUT_NEW, 2, self._k(key), self._op(key),
                                    OP_TTL, self._codec.encode(value), int(ttl)))

    async def get(self, key: str) -> Record | None:
        return self._load(await self._run("GET", self._k(key)))

    async def get_many(self, keys: list[str]) -> list[Record | None]:
        if not keys:
            return []
        return [self._load(v) for v in await self._run("MGET", *(self._k(k) for k in keys))]

    def _items(self, items: list[tuple[str, Record, int]]) -> tuple[list[str], list[Any]]:
        keys, args = [], []
        for key, value, ttl in items:
            keys.append(self._k(key))
            args.extend((self._codec.encode(value), int(ttl)))
        return keys, args

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> bool:
        keys, args = self._items(items)
        # One step on the server: of concurrent redemptions exactly one takes the code.
        return bool(await self._run("EVAL", scripts.TAKE_AND_PUT, 2 + len(keys), self._k(key),
                                    self._op(key), *keys, OP_TTL, *args))

    async def compare_and_put(self, key: str, field: str, expected: int | str | None,
                              value: Record, ttl: int,
                              items: list[tuple[str, Record, int]] | None = None,
                              ) -> tuple[bool, Record | None]:
        keys, args = self._items(items or [])
        want = "" if expected is None else str(expected)
        reply = await self._run("EVAL", scripts.COMPARE_AND_PUT, 2 + len(keys), self._k(key),
                                self._op(key), *keys, OP_TTL, field, want, self._codec.encode(value),
                                int(ttl), *args)
        if reply[0] == 1:
            return True, None
        return False, self._load(reply[1] if len(reply) > 1 else None)

    async def take(self, key: str) -> Record | None:
        return self._load(await self._run("EVAL", scripts.TAKE, 2, self._k(key), self._op(key),
                                          OP_TTL))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._run("DEL", *(self._k(k) for k in keys))

    async def index_add(self, key: str, member: str, expires_at: float, now: float) -> None:
        await self._run("EVAL", scripts.INDEX_ADD, 1, self._k(key), member, int(expires_at),
                        int(now))

    async def index_remove(self, key: str, member: str) -> None:
        await self._run("ZREM", self._k(key), member)

    async def index_members(self, key: str, now: float) -> set[str]:
        found = await self._run("ZRANGEBYSCORE", self._k(key), int(now), "+inf")
        return {m.decode() for m in found}

    async def incr(self, key: str, ttl: int) -> int:
        return int(await self._run("EVAL", scripts.INCR, 2, self._k(key), self._op(key),
                                   OP_TTL, int(ttl)))

    async def ttl(self, key: str) -> int | None:
        left = await self._run("TTL", self._k(key))
        return None if left < 0 else int(left)

    def use_codec(self, codec: Codec) -> None:
        self._codec = codec

    async def ping(self) -> None:
        try:
            await self._r.ping()
        except (RedisError, OSError) as exc:
            raise StoreError(str(exc)) from exc

    async def close(self) -> None:
        await self._pipeline.aclose()
        await self._r.aclose()


def new_op_id() -> str:
    return secrets.token_urlsafe(12)

"""Redis store: the production store and the way to scale out.

Plain Redis (`redis://`, `rediss://`) and Sentinel (`redis+sentinel://`) share one code path;
only the connection differs. Every key carries the configured prefix so one Redis can serve
several deployments.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from .base import Record, StoreError
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
        "retry": one_retry(),
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


def one_retry() -> Retry:
    """Retry a command once, after a short pause, on a connection error or timeout.

    Once is enough to get past a pooled connection that died (a Redis restart, or a Sentinel
    fail-over: the reconnect asks the sentinels for the current master, and a demoted
    master's ReadOnlyError is turned into a ConnectionError by redis-py). More retries (the
    library's default backs off for seconds) would only hold a request, and a readiness
    probe, for longer while Redis is really down; the request then gets a clean 503.
    """
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1)


TAKE_AND_PUT = """
local value = redis.call('GETDEL', KEYS[1])
if not value then return false end
for i = 1, #ARGV, 3 do
  redis.call('SET', ARGV[i], ARGV[i + 1], 'EX', tonumber(ARGV[i + 2]))
end
return value
"""

# The set's TTL is re-armed with every member (one step, so no set is ever left without one).
ADD_MEMBER = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
"""

# The first increment of a window arms its TTL; later ones leave it running.
INCR = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return count
"""

# Scripts go as EVAL, not EVALSHA: they are short, Redis caches them by their hash, and a
# fresh master after a fail-over needs no reload.


class RedisStore:
    def __init__(self, client: aioredis.Redis, prefix: str = "broker:") -> None:
        self._r = client
        self._p = prefix
        # Single commands share a pipeline with those of other requests in flight.
        self._pipeline = AutoPipeline(client)
        self._send = self._pipeline.execute

    @classmethod
    def from_url(cls, url: str, prefix: str = "broker:", timeout: float = 2.0) -> RedisStore:
        return cls(connect(url, timeout=timeout), prefix)

    def _k(self, key: str) -> str:
        return self._p + key

    @staticmethod
    def _load(raw: bytes | None) -> Record | None:
        return None if raw is None else orjson.loads(raw)

    async def put(self, key: str, value: Record, ttl: int) -> None:
        try:
            await self._send("SET", self._k(key), orjson.dumps(value), "EX", int(ttl))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        if not items:
            return
        try:
            await asyncio.gather(*(self._send("SET", self._k(key), orjson.dumps(value), "EX", int(ttl))
                                   for key, value, ttl in items))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        try:
            data = orjson.dumps(value)
            return bool(await self._send("SET", self._k(key), data, "EX", int(ttl), "NX"))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def get(self, key: str) -> Record | None:
        try:
            return self._load(await self._send("GET", self._k(key)))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def get_many(self, keys: list[str]) -> list[Record | None]:
        if not keys:
            return []
        try:
            return [self._load(v) for v in await self._send("MGET", *(self._k(k) for k in keys))]
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> Record | None:
        args: list[str | bytes | int] = []
        for k, value, ttl in items:
            args.extend((self._k(k), orjson.dumps(value), int(ttl)))
        try:
            # One step on the server: of concurrent redemptions exactly one takes the code.
            raw = await self._send("EVAL", TAKE_AND_PUT, 1, self._k(key), *args)
        except RedisError as exc:
            raise StoreError(str(exc)) from exc
        return self._load(raw)

    async def take(self, key: str) -> Record | None:
        try:
            return self._load(await self._send("GETDEL", self._k(key)))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._send("DEL", *(self._k(k) for k in keys))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def add_member(self, key: str, member: str, ttl: int) -> None:
        try:
            await self._send("EVAL", ADD_MEMBER, 1, self._k(key), member, int(ttl))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def members(self, key: str) -> set[str]:
        try:
            return {m.decode() for m in await self._send("SMEMBERS", self._k(key))}
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def incr(self, key: str, ttl: int) -> int:
        try:
            return int(await self._send("EVAL", INCR, 1, self._k(key), int(ttl)))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc

    async def ttl(self, key: str) -> int | None:
        try:
            left = await self._send("TTL", self._k(key))
        except RedisError as exc:
            raise StoreError(str(exc)) from exc
        return None if left < 0 else int(left)

    async def ping(self) -> None:
        try:
            await self._r.ping()
        except (RedisError, OSError) as exc:
            raise StoreError(str(exc)) from exc

    async def close(self) -> None:
        await self._pipeline.aclose()
        await self._r.aclose()

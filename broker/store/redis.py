"""Redis store: the production store and the way to scale out.

Plain Redis (`redis://`, `rediss://`) and Sentinel (`redis+sentinel://`) share one code path;
only the connection differs. Every key carries the configured prefix so one Redis can serve
several deployments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential,
)

from . import scripts
from .base import Record, StoreError
from .cluster import CLUSTER_SCHEMES, ClusterAutoPipeline, connect_cluster
from .codec import Codec, PlainCodec
from .pipelining import AutoPipeline, NotReplicated
from .unsettled import UnsettledTakes


def parse_hosts_url(url: str, default_port: int) -> dict:
    """Split `scheme://[user:pass@]h1:port,h2:port/path[?opts]` (Sentinel, Cluster)."""
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
        host, _, port = (hostport.rpartition(":") if ":" in hostport
                         else (hostport, "", str(default_port)))
        hosts.append((host.strip("[]"), int(port or default_port)))
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "hosts": hosts,
        "path": [p for p in parts.path.split("/") if p],
        "username": username,
        "password": password,
        "query": query,
        "ssl": query.get("ssl", "false").lower() in ("1", "true", "yes"),
    }


def parse_sentinel_url(url: str) -> dict:
    """Split `redis+sentinel://[user:pass@]h1:26379,h2:26379/service[/db][?opts]`.

    The password in the URL is the master's; `sentinel_password` in the query, when the
    sentinels themselves need one.
    """
    opts = parse_hosts_url(url, 26379)
    path = opts["path"]
    if not path:
        raise ValueError("redis+sentinel URL needs the service name as its path")
    return {
        "hosts": opts["hosts"],
        "service": path[0],
        "db": int(path[1]) if len(path) > 1 else 0,
        "username": opts["username"],
        "password": opts["password"],
        "sentinel_password": opts["query"].get("sentinel_password"),
        "ssl": opts["ssl"],
    }


def connect(url: str, *, timeout: float = 2.0, max_connections: int = 64) -> aioredis.Redis:
    """The client of a plain Redis or of the master the sentinels name. Its connections
    have no socket timeout: the store's pipeline holds every exchange to one deadline
    (`timeout`) instead of a timer per reply (pipelining.py)."""
    common = {
        "socket_timeout": None,
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
            connection_pool_class=MasterPool,
            connection_class=MasterSSLConnection if opts["ssl"] else MasterConnection,
        )
    client = aioredis.Redis.from_url(url, max_connections=max_connections, **common)
    pool = client.connection_pool
    pool.connection_class = type(pool.connection_class.__name__, (HiredisPacking,
                                                                 pool.connection_class), {})
    return client


log = logging.getLogger(__name__)

class _MasterOnly:
    """A connection the sentinels sent to "the master" asks the node itself (ROLE) before
    its first command: a sentinel that has not yet heard of a switch-over still names the
    old master, which answers reads from stale data while it resyncs (a code just issued
    on the new master would look unknown). Such a connection is refused; the store's retry
    asks again."""

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health)  # type: ignore[misc]
        await self.send_command("ROLE")  # type: ignore[attr-defined]
        role = await self.read_response()  # type: ignore[attr-defined]
        if not role or role[0] not in (b"master", "master"):
            await self.disconnect()  # type: ignore[attr-defined]
            raise ConnectionError("the node the sentinels named is not a master (yet)")


class HiredisPacking:
    """Commands packed by hiredis's C packer, as redis-py's synchronous client does: its
    asyncio connection packs in Python, 6 µs more per command, about 6 % of the broker's
    CPU in a BankID login (bench/README.md). The same bytes; a command name with a space in it
    ("CLUSTER INFO") is split by redis-py's own packer, as before."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if (" " in first) if isinstance(first, str) else (b" " in first):
            return super().pack_command(*args)  # type: ignore[misc]
        return [hiredis.pack_command(args)]


class MasterConnection(HiredisPacking, _MasterOnly, SentinelManagedConnection):
    pass


class MasterSSLConnection(HiredisPacking, _MasterOnly, SentinelManagedSSLConnection):
    pass


class MasterPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, except that learning of a new master drops *every*
    connection to the old one, in use or not: a read from the demoted master (stale while
    it resyncs) would miss what was just written on the new one."""

    async def get_master_address(self):  # type: ignore[no-untyped-def]
        previous = self.master_address
        address = await super().get_master_address()
        if previous is not None and previous != address:
            await self.disconnect(inuse_connections=True)
        return address


# A connection lost or a reply not received in time: the command may or may not have run.
_LOST = (ConnectionError, TimeoutError, OSError)
# Answers of a node that is not (or no longer) a master that can keep a write.
_NOT_MASTER = ("READONLY", "NOREPLICAS", "MASTERDOWN")
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

    def __init__(self, client: aioredis.Redis | RedisCluster, prefix: str = "broker:",
                 retry_pause: float = 0.05, codec: Codec | None = None, replicas: int = 0,
                 replica_timeout: float = 0.5, sentinel: SentinelWatch | None = None,
                 timeout: float = 2.0) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain { or } (Redis Cluster hash tags)")
        self._r = client
        self._cluster = isinstance(client, RedisCluster)
        self._p = prefix
        self._codec = codec or PlainCodec()
        self._pause = retry_pause
        self._replicas = replicas
        # How long a write may keep waiting for its replicas (a fail-over's resync).
        self._patience = 4 * replica_timeout + 1.0
        # Single commands share a pipeline with those of other requests in flight (one per
        # node on a cluster).
        self._pipeline = (ClusterAutoPipeline(client, replicas, int(replica_timeout * 1000))
                          if isinstance(client, RedisCluster)
                          else AutoPipeline(client, replicas, int(replica_timeout * 1000),
                                            timeout=timeout))
        self._sentinel = sentinel
        self._unsettled = UnsettledTakes(self._send_undo, keep=OP_TTL)

    @classmethod
    def from_url(cls, url: str, prefix: str = "broker:", timeout: float = 2.0,
                 codec: Codec | None = None, replicas: int = 0,
                 replica_timeout: float = 0.5) -> RedisStore:
        if url.startswith(CLUSTER_SCHEMES):
            return cls(connect_cluster(url, timeout=timeout), prefix, codec=codec,
                       replicas=replicas, replica_timeout=replica_timeout)
        client = connect(url, timeout=timeout)
        watch = SentinelWatch(client, url) if url.startswith("redis+sentinel://") else None
        return cls(client, prefix, codec=codec, replicas=replicas,
                   replica_timeout=replica_timeout, sentinel=watch, timeout=timeout)

    def _k(self, key: str) -> str:
        return self._p + key

    def _op(self, key: str) -> str:
        """The operation key of one call on `key`, in `key`'s cluster slot: after its own
        hash tag, or the whole key made the tag (which hashes exactly as the key does)."""
        full = self._p + key
        start = full.find("{")
        tagged = start >= 0 and full.find("}", start + 1) > start + 1  # Redis's own rule
        return f"{full if tagged else '{' + full + '}'}|op:{new_op_id()}"

    def _load(self, raw: bytes | None) -> Record | None:
        if raw is None:
            return None
        try:
            return self._codec.decode(raw)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc

    async def _run(self, *args: Any, take: bool = False, patient: bool = True) -> Any:
        """`take`: the operation takes something away (a code, a session) and carries an
        operation key, so a lost reply is resent like an unconfirmed write, until a master
        answers or the patience runs out: through a master's death and the promotion of
        its replica, the resend finds the take's own outcome there (or runs it first).
        `patient=False` (the readiness probe): a master short of replicas is an answer
        now, not something to wait out."""
        if self._sentinel is not None:
            self._sentinel.ensure_started()
        try:
            return await self._pipeline.execute(*args)
        except NotReplicated:
            return await self._until_replicated(args)
        except _LOST:
            if take:
                return await self._until_replicated(args)
            await asyncio.sleep(self._pause)
        except RedisError as exc:
            if patient and "NOREPLICAS" in str(exc):
                # The master refused it (min-replicas-to-write) until its replicas are back:
                # not run, so it waits for them like a write they have not acknowledged.
                return await self._until_replicated(args)
            if not await self._not_a_writable_master(exc):
                raise StoreError(str(exc)) from exc
            # Refused by a node no longer master, so not run: safe to send to the next one.
            await asyncio.sleep(self._pause)
        try:
            return await self._pipeline.execute(*args)
        except NotReplicated:
            return await self._until_replicated(args)
        except (RedisError, OSError) as exc:
            await self._not_a_writable_master(exc)
            raise StoreError(str(exc) or type(exc).__name__) from exc

    async def _until_replicated(self, args: tuple[Any, ...]) -> Any:
        """The master took the write but no replica has it yet (right after a fail-over
        the new master has none until the old one has resynced), or a take's reply was
        lost. Failing now would make the client retry something that may have happened
        (a redemption would then look like a replay), so the write is sent again, with its
        operation key, after a pause that doubles up to 0.4 s (tenacity), until replicas
        acknowledge it or the patience runs out (then a clean 503, and a take is undone).
        A node that refuses writes meanwhile is left at once."""

        async def leave_a_read_only_master(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, Exception) and not isinstance(exc, NotReplicated):
                await self._not_a_writable_master(exc)

        await asyncio.sleep(self._pause)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((NotReplicated, RedisError, OSError)),
            wait=wait_exponential(multiplier=2 * self._pause, max=0.4),
            stop=stop_before_delay(self._patience - self._pause),
            before_sleep=leave_a_read_only_master, reraise=True)
        async def send() -> Any:
            # execute returns the batch's future (a plain call, not a coroutine function):
            # tenacity must be given something to await.
            return await self._pipeline.execute(*args)

        try:
            return await retrying(send)
        except (RedisError, OSError) as exc:  # NotReplicated is a RedisError
            raise StoreError(str(exc) or type(exc).__name__) from exc

    async def _not_a_writable_master(self, exc: Exception) -> bool:
        """A node that refuses writes (a demoted master, one that lost its replicas) is
        left at once: every pooled connection is dropped, so the next command asks the
        sentinels (or the cluster's slot map) for the master again instead of writing where
        nothing survives. True when `exc` said so."""
        if isinstance(exc, ReadOnlyError | MasterDownError) or (
                isinstance(exc, ResponseError) and any(m in str(exc) for m in _NOT_MASTER)):
            await self._forget_masters()
            return True
        return False

    async def _forget_masters(self) -> None:
        if isinstance(self._pipeline, ClusterAutoPipeline):
            self._pipeline.stale()
        else:
            await self._r.connection_pool.disconnect(inuse_connections=True)

    async def put(self, key: str, value: Record, ttl: int) -> None:
        await self._run("SET", self._k(key), self._codec.encode(value), "EX", int(ttl))

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        if items:
            await asyncio.gather(*(self.put(key, value, ttl) for key, value, ttl in items))

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        return bool(await self._run("EVAL", scripts.PUT_NEW, 2, self._k(key), self._op(key),
                                    OP_TTL, self._codec.encode(value), int(ttl)))

    async def get(self, key: str) -> Record | None:
        if self._unsettled:
            await self._unsettled.settle([self._k(key)])
        return self._load(await self._run("GET", self._k(key)))

    async def get_many(self, keys: list[str]) -> list[Record | None]:
        if not keys:
            return []
        full = [self._k(k) for k in keys]
        if self._unsettled:
            await self._unsettled.settle(full)
        if not self._cluster:
            return [self._load(v) for v in await self._run("MGET", *full)]
        # One MGET per slot (a cluster refuses one across slots), all in the same turn.
        by_slot: dict[int, list[int]] = {}
        for i, key in enumerate(full):
            by_slot.setdefault(key_slot(key.encode()), []).append(i)
        groups = list(by_slot.values())
        replies = await asyncio.gather(*(self._run("MGET", *(full[i] for i in g)) for g in groups))
        out: list[Record | None] = [None] * len(keys)
        for group, values in zip(groups, replies, strict=True):
            for i, value in zip(group, values, strict=True):
                out[i] = self._load(value)
        return out

    def _items(self, items: list[tuple[str, Record, int]]) -> tuple[list[str], list[Any]]:
        keys, args = [], []
        for key, value, ttl in items:
            keys.append(self._k(key))
            args.extend((self._codec.encode(value), int(ttl)))
        return keys, args

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> bool:
        keys, args = self._items(items)
        op = self._op(key)
        if self._unsettled:
            await self._unsettled.settle([self._k(key)])
        # One step on the server: of concurrent redemptions exactly one takes the code.
        try:
            return bool(await self._run("EVAL", scripts.TAKE_AND_PUT, 2 + len(keys),
                                        self._k(key), op, *keys, OP_TTL, *args, take=True))
        except StoreError:
            await self._undo_take(key, op, keys)
            raise

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
        op = self._op(key)
        if self._unsettled:
            await self._unsettled.settle([self._k(key)])
        try:
            return self._load(await self._run("EVAL", scripts.TAKE, 2, self._k(key), op, OP_TTL,
                                              take=True))
        except StoreError:
            await self._undo_take(key, op, [])
            raise

    async def _undo_take(self, key: str, op: str, keys: list[str]) -> None:
        """A take whose outcome is unknown (its reply lost, or no replica confirmed it in
        time) is put back before the caller answers 503: a retry is not a replay, so the
        retry must find the code (the login, the session) the take found. Only the run
        recorded under this call's operation key is undone, never another caller's take.
        Sent without waiting for replicas: if the master is lost now, the take it undoes
        most likely went with it. When no master takes it now (one is dying), it is kept
        and sent again (unsettled.py)."""
        try:
            await self._send_undo(self._k(key), op, keys)
        except (RedisError, OSError):
            self._unsettled.add(self._k(key), op, keys)

    async def _send_undo(self, key: str, op: str, keys: list[str]) -> None:
        await self._pipeline.now("EVAL", scripts.UNDO_TAKE, 2 + len(keys), key, op, *keys)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        if self._cluster:
            await asyncio.gather(*(self._run("DEL", self._k(k)) for k in keys))
        else:
            await self._run("DEL", *(self._k(k) for k in keys))

    async def index_add(self, key: str, member: str, expires_at: float, now: float) -> None:
        await self._run("EVAL", scripts.INDEX_ADD, 1, self._k(key), member, int(expires_at),
                        int(now))

    async def index_remove(self, key: str, member: str) -> None:
        await self._run("ZREM", self._k(key), member)

    async def index_members(self, key: str, now: float) -> set[str]:
        found = await self._run("ZRANGEBYSCORE", self._k(key), int(now), "+inf")
        return {m.decode() for m in found}

    async def schedule(self, key: str, member: str, due: float) -> None:
        await self._run("ZADD", self._k(key), float(due), member)

    async def claim_due(self, key: str, now: float, lease: float, limit: int) -> list[str]:
        claimed = await self._run("EVAL", scripts.CLAIM_DUE, 2, self._k(key), self._op(key),
                                  OP_TTL, float(now), float(now + lease), int(limit))
        return [m.decode() if isinstance(m, bytes) else m for m in claimed or []]

    async def unschedule(self, key: str, member: str) -> None:
        await self._run("ZREM", self._k(key), member)

    async def scheduled(self, key: str) -> int:
        return int(await self._run("ZCARD", self._k(key)))

    async def incr(self, key: str, ttl: int) -> int:
        return int(await self._run("EVAL", scripts.INCR, 2, self._k(key), self._op(key),
                                   OP_TTL, int(ttl)))

    async def ttl(self, key: str) -> int | None:
        left = await self._run("TTL", self._k(key))
        return None if left < 0 else int(left)

    def use_codec(self, codec: Codec) -> None:
        self._codec = codec

    async def ping(self) -> None:
        """Ready means: the node we talk to is a master, and a write lands (on the
        replicas too, when `replicas` asks for it). A replica, NOREPLICAS, READONLY or
        an out-of-memory master are all "not ready"."""
        if self._cluster:
            await self._cluster_ok()
        else:
            try:
                role = await self._pipeline.now("ROLE")
            except (RedisError, OSError) as exc:
                raise StoreError(str(exc) or type(exc).__name__) from exc
            if not role or role[0] not in (b"master", "master"):
                await self._forget_masters()
                raise StoreError("the store answers from a replica, not a writable master")
        await self._run("SET", self._k("ready-probe"), b"1", "EX", 10, patient=False)

    async def _cluster_ok(self) -> None:
        """Every slot has a master that answers (a cluster that lost a master without a
        replica to promote refuses commands for a third of the keys)."""
        try:
            info = await self._r.execute_command("CLUSTER INFO")
        except (RedisError, OSError) as exc:
            self._pipeline.stale()  # type: ignore[attr-defined]
            raise StoreError(str(exc) or type(exc).__name__) from exc
        text = info.decode() if isinstance(info, bytes) else str(info)
        if "cluster_state:ok" not in text:
            raise StoreError("the Redis Cluster is not in state ok")

    async def close(self) -> None:
        await self._unsettled.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()
        await self._pipeline.aclose()  # a cluster client is closed by its pipeline
        if not self._cluster:
            await self._r.aclose()


class SentinelWatch:
    """Follows the master actively: subscribed to the sentinels' `+switch-master`, it drops
    every pooled connection the moment they name a new master (a planned switch-over
    demotes the old master only later, and it takes writes until then that the new
    master never sees)."""

    def __init__(self, client: aioredis.Redis, url: str) -> None:
        opts = parse_sentinel_url(url)
        self._client = client
        self._service = opts["service"]
        self._hosts = opts["hosts"]
        self._password = opts["sentinel_password"]
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            for host, port in self._hosts:
                sentinel = aioredis.Redis(host=host, port=port, password=self._password,
                                          socket_connect_timeout=2)
                try:
                    async with sentinel.pubsub() as pubsub:
                        await pubsub.subscribe("+switch-master")
                        async for message in pubsub.listen():
                            await self._on(message)
                except (RedisError, OSError):
                    pass  # that sentinel is gone: listen to the next one
                finally:
                    await sentinel.aclose()
            await asyncio.sleep(1)

    async def _on(self, message: dict) -> None:
        if message.get("type") != "message":
            return
        data = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
        parts = data.split()
        if parts and parts[0] == self._service:
            log.warning("Redis master of %s switched to %s", self._service,
                        ":".join(parts[3:5]) if len(parts) >= 5 else data)
            await self._client.connection_pool.disconnect(inuse_connections=True)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def new_op_id() -> str:
    return secrets.token_urlsafe(12)

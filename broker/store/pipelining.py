"""Automatic pipelining: the commands of one event-loop turn go to Redis together.

Why: a single command through redis-py costs about 40 µs of CPU (pool checkout, timeouts,
retry wrapper, packing) besides the round trip, and on one worker serving many requests
that is a large share of a code redemption. Requests in flight at the same time issue
their commands in the same turn of the loop; sent as one pipeline they cost a third as
much each, and still travel over redis-py's connections (pooling, TLS, AUTH, Sentinel
discovery and its retry). A request awaits each command before it sends the next, so its
own commands keep their order; commands of different requests never depended on one
another's order. Transactions (MULTI) do not go through here.

A batch is sent on a pooled redis-py connection with the connection's own public calls
(write the packed commands, read one reply per command), not through redis-py's Pipeline
class, and under one deadline for the whole exchange rather than a socket timeout per
write and per reply: the Pipeline's bookkeeping, a timer per reply and a task per write
cost as much CPU as the exchange itself, about a sixth of a BankID login (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# Commands that change nothing; every other command the store sends is a write.
READS = frozenset({"GET", "MGET", "TTL", "ZRANGEBYSCORE", "ZCARD", "PING", "ROLE"})


class NotReplicated(RedisConnectionError):
    """A write the master took but not enough replicas acknowledged in time: it may be
    lost in a fail-over, so it is not reported as done (the store retries it once, with
    its operation key, like a lost reply)."""


class AutoPipeline:
    """Queues commands and sends the queue as one non-transactional pipeline per loop turn.

    With `replicas` > 0 every batch that writes ends with `WAIT replicas timeout`, and its
    writes succeed only when that many replicas have them (Redis replicates
    asynchronously: a write only the master had is gone once a replica is promoted).

    `timeout`: how long one exchange (a connection from the pool, connecting if need be,
    the write and every reply) may take before its commands count as lost. The client's
    connections must have no socket timeout of their own (see `connect`)."""

    def __init__(self, client: aioredis.Redis, replicas: int = 0,
                 replica_timeout_ms: int = 500, timeout: float = 2.0) -> None:
        self._client = client
        self._replicas = replicas
        self._wait_ms = replica_timeout_ms
        self._timeout = timeout
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future has its parsed reply or its error."""
        loop = asyncio.get_running_loop()
        if not self._queue:
            loop.call_soon(self._flush)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, future))
        return future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        # A batch whose callers all gave up (cancelled) is not sent at all.
        if any(not future.done() for _, future in batch):
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)  # keep a reference until it is done
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        commands = [args for args, _ in batch]
        writes = self._replicas > 0 and any(args[0] not in READS for args in commands)
        if writes:
            commands.append(("WAIT", self._replicas, self._wait_ms))
        try:
            replies = await self._exchange(commands)
            if writes:
                replies = replicated(batch, replies, self._replicas)
        except BaseException as exc:  # connection lost, timeout, cancelled at shutdown
            for _, future in batch:
                if not future.done():
                    future.set_exception(lost(exc))
            if not isinstance(exc, Exception):
                raise
            return
        settle(batch, replies)

    async def now(self, *args: Any) -> Any:
        """One command on its own, at once, its error raised: commands that must not
        share a batch's trailing WAIT (an undo, the readiness probe's ROLE)."""
        try:
            (reply,) = await self._exchange([args])
        except Exception as exc:
            failure = lost(exc)
            if failure is exc:
                raise
            raise failure from exc
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The commands written at once on one pooled connection, and their replies in
        order (a command's error as its reply). A connection that failed or ran out of
        time mid-exchange is dropped: replies still on their way would be read as the
        next batch's."""
        pool = self._client.connection_pool
        try:
            async with asyncio.timeout(self._timeout):
                conn = await pool.get_connection()
                try:
                    await conn.send_packed_command(conn.pack_commands(commands))
                    replies: list[Any] = []
                    for _ in commands:
                        try:
                            # math.inf: no timer of its own, the exchange's deadline holds.
                            replies.append(await conn.read_response(timeout=math.inf))
                        except ResponseError as exc:
                            replies.append(exc)
                    return replies
                except BaseException:
                    await conn.disconnect(nowait=True)
                    raise
                finally:
                    await pool.release(conn)
        except TimeoutError:
            raise RedisTimeoutError(f"no reply from Redis within {self._timeout:g} s") from None

    async def aclose(self) -> None:
        """Wait for batches already on their way (their callers are still waiting)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)


Batch = list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]


def lost(exc: BaseException) -> Exception:
    """What a caller is told when sending its batch failed: Redis's own errors and socket
    errors as they are; anything else as a lost connection (the commands may or may not
    have run), never as an error the store does not expect. redis-py's asyncio connection
    can fail with AttributeError or RuntimeError when the store drops every connection to
    a demoted master while a request is using one."""
    if isinstance(exc, RedisError | OSError):
        return exc
    if isinstance(exc, Exception):
        log.warning("store client failed while sending (%s: %s): treated as a lost reply",
                    type(exc).__name__, exc, exc_info=exc)
    return RedisConnectionError(f"the store connection failed: {type(exc).__name__}: {exc}")


def replicated(batch: Batch, replies: list[Any], replicas: int) -> list[Any]:
    """The replies of a batch sent with a trailing WAIT: when fewer than `replicas`
    acknowledged, every write of the batch that ran becomes NotReplicated (reads stand). A
    write refused outright keeps its own error: READONLY or MOVED from a node that is no
    longer a master must reach the store, which then looks for the master again (masked
    as NotReplicated it would be resent to the same node until the patience ran out)."""
    acked = replies.pop()
    if isinstance(acked, Exception) or int(acked) < replicas:
        failure = NotReplicated(f"{acked} of {replicas} replicas acknowledged the write")
        return [failure if args[0] not in READS and not isinstance(reply, Exception) else reply
                for (args, _), reply in zip(batch, replies, strict=True)]
    return replies


def settle(batch: Batch, replies: list[Any]) -> None:
    """Hand each caller still waiting its reply (an exception is raised to it)."""
    for (_, future), reply in zip(batch, replies, strict=True):
        if future.done():
            continue
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)

"""Redis Cluster: the connection, and the automatic pipeline split per node.

`redis+cluster://[user:pass@]h1:7000,h2:7001,...[?ssl=true]` names a few nodes; the
client learns the rest and the slot map from them. Every multi-key step of the broker
keeps its keys in one slot (a family's keys share the hash tag `{family}`; an operation key
shares its key's slot), so a Lua script never crosses nodes.

The commands of one loop turn still go out together, as one pipeline per master node on
that node's connection, each ending with `WAIT` when writes must reach replicas (WAIT
counts the writes of its own connection). A slot that moved (MOVED, ASK), a cluster that
is reconfiguring (TRYAGAIN, CLUSTERDOWN) or a node that is gone makes the affected
commands fail like a lost reply: the slot map is read again and the store sends them once
more, with their operation keys, so nothing runs twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from .pipelining import READS, AutoPipeline, lost, replicated, settle

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def connect_cluster(url: str, *, timeout: float = 2.0, max_connections: int = 64) -> RedisCluster:
    from .redis import parse_hosts_url

    opts = parse_hosts_url(url, 6379)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in opts["hosts"]],
        username=opts["username"], password=opts["password"],
        ssl=opts["ssl"] or url.startswith("rediss+cluster://"),
        socket_timeout=timeout, socket_connect_timeout=timeout,
        max_connections=max_connections, require_full_coverage=True,
        # Its own resends are off for the reason they are off for a single Redis.
        retry=Retry(NoBackoff(), 0),
    )


class SlotMoved(RedisConnectionError):
    """The cluster answered that this key's slot lives elsewhere now (or is moving)."""


_MOVED = (MovedError, AskError, TryAgainError, ClusterDownError)
# Commands without a key (the store sends these to one node directly, not through here).
_NO_KEY = frozenset({"PING", "ROLE", "WAIT", "CLUSTER", "INFO"})


def command_slot(args: tuple[Any, ...]) -> int:
    """The slot of a command's (first) key: EVAL's first key, else the first argument."""
    name = args[0]
    key = args[3] if name == "EVAL" else args[1]
    return key_slot(key.encode() if isinstance(key, str) else key)


class ClusterAutoPipeline(AutoPipeline):
    def __init__(self, cluster: RedisCluster, replicas: int = 0,
                 replica_timeout_ms: int = 500) -> None:
        super().__init__(cluster, replicas, replica_timeout_ms)  # type: ignore[arg-type]
        self._cluster = cluster
        self._stale = True  # the slot map must be (re)read before the next batch
        self._first = True
        self._refresh = asyncio.Lock()

    async def _slot_map(self) -> None:
        async with self._refresh:
            if self._stale:
                await self._cluster.initialize()  # connects, the first time only
                if not self._first:
                    await self._cluster.nodes_manager.initialize()  # reads the map again
                self._first = False
                self._stale = False

    def stale(self) -> None:
        self._stale = True

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            await self._slot_map()
            manager = self._cluster.nodes_manager
            by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
            for i, (args, _) in enumerate(batch):
                node = manager.get_node_from_slot(command_slot(args))
                by_node.setdefault(node.name, (node, []))[1].append(i)
        except Exception as exc:  # every caller must hear back (see lost())
            self.stale()
            self._fail(batch, lost(exc))
            return
        await asyncio.gather(*(self._node_batch(node, [batch[i] for i in idx])
                               for node, idx in by_node.values()))

    async def _node_batch(self, node: ClusterNode,
                          batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        writes = self._replicas > 0 and any(args[0] not in READS for args, _ in batch)
        commands = [PipelineCommand(i, *args) for i, (args, _) in enumerate(batch)]
        if writes:
            commands.append(PipelineCommand(len(batch), "WAIT", self._replicas, self._wait_ms))
        try:
            await node.execute_pipeline(commands)
        except Exception as exc:  # every caller must hear back (see lost())
            self.stale()  # a node gone: its slots are (about to be) someone else's
            self._fail(batch, lost(exc))
            return
        results = [c.result for c in commands]
        if writes:
            results = replicated(batch, results, self._replicas)
        if any(isinstance(r, _MOVED) for r in results):
            self.stale()
            results = [SlotMoved(str(r)) if isinstance(r, _MOVED) else r for r in results]
        settle(batch, results)

    async def now(self, *args: Any) -> Any:
        """One command on its own: the cluster client routes it by its key."""
        return await self._cluster.execute_command(*args)

    @staticmethod
    def _fail(batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def aclose(self) -> None:
        await super().aclose()
        with contextlib.suppress(Exception):
            await self._cluster.aclose()

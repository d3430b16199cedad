"""A `Store` decorator that times every operation for the metrics.

It wraps any store (Redis, memory) without either knowing about metrics, so the store
latency histogram covers exactly what the protocol asks of the store, per operation.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .base import Record, Store
from .codec import Codec

if TYPE_CHECKING:
    from ..metrics import Metrics

T = TypeVar("T")


class InstrumentedStore:
    """Delegates to `inner`; observes each call's latency and whether it raised."""

    def __init__(self, inner: Store, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def _timed(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        try:
            result = await call()
        except BaseException:
            # Cancellation (a readiness probe's timeout) counts as a failed operation too.
            self._metrics.observe_store(operation, time.perf_counter() - start, ok=False)
            raise
        self._metrics.observe_store(operation, time.perf_counter() - start, ok=True)
        return result

    async def put(self, key: str, value: Record, ttl: int) -> None:
        await self._timed("put", lambda: self.inner.put(key, value, ttl))

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        await self._timed("put_many", lambda: self.inner.put_many(items))

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        return await self._timed("put_new", lambda: self.inner.put_new(key, value, ttl))

    async def get(self, key: str) -> Record | None:
        return await self._timed("get", lambda: self.inner.get(key))

    async def get_many(self, keys: list[str]) -> list[Record | None]:
        return await self._timed("get_many", lambda: self.inner.get_many(keys))

    async def take(self, key: str) -> Record | None:
        return await self._timed("take", lambda: self.inner.take(key))

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> bool:
        return await self._timed("take_and_put", lambda: self.inner.take_and_put(key, items))

    async def compare_and_put(self, key: str, field: str, expected: int | str | None,
                              value: Record, ttl: int,
                              items: list[tuple[str, Record, int]] | None = None,
                              ) -> tuple[bool, Record | None]:
        return await self._timed("compare_and_put", lambda: self.inner.compare_and_put(
            key, field, expected, value, ttl, items))

    async def delete(self, *keys: str) -> None:
        await self._timed("delete", lambda: self.inner.delete(*keys))

    async def index_add(self, key: str, member: str, expires_at: float, now: float) -> None:
        await self._timed("index_add", lambda: self.inner.index_add(key, member, expires_at, now))

    async def index_remove(self, key: str, member: str) -> None:
        await self._timed("index_remove", lambda: self.inner.index_remove(key, member))

    async def index_members(self, key: str, now: float) -> set[str]:
        return await self._timed("index_members", lambda: self.inner.index_members(key, now))

    async def schedule(self, key: str, member: str, due: float) -> None:
        await self._timed("schedule", lambda: self.inner.schedule(key, member, due))

    async def claim_due(self, key: str, now: float, lease: float, limit: int) -> list[str]:
        return await self._timed("claim_due",
                                 lambda: self.inner.claim_due(key, now, lease, limit))

    async def unschedule(self, key: str, member: str) -> None:
        await self._timed("unschedule", lambda: self.inner.unschedule(key, member))

    async def scheduled(self, key: str) -> int:
        return await self._timed("scheduled", lambda: self.inner.scheduled(key))

    async def incr(self, key: str, ttl: int) -> int:
        return await self._timed("incr", lambda: self.inner.incr(key, ttl))

    async def ttl(self, key: str) -> int | None:
        return await self._timed("ttl", lambda: self.inner.ttl(key))

    def use_codec(self, codec: Codec) -> None:
        self.inner.use_codec(codec)

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the Store interface (a store's own helpers) passes straight through.
        return getattr(self.inner, name)

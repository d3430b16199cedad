"""In-memory store for `broker demo` and tests of a single process.

It keeps the same semantics as Redis (TTLs, atomic take) so that code tested on it behaves
the same in production; it is never shared between processes.
"""

from __future__ import annotations

import time

from .base import Record
from .codec import Codec, PlainCodec


class _Index(dict):
    """An index (member -> expiry), told apart from JSON records stored as dicts."""


class _Schedule(dict):
    """A schedule (member -> due time); it never expires (its members are removed)."""


class MemoryStore:
    def __init__(self, clock=time.monotonic, codec: Codec | None = None) -> None:
        self._clock = clock
        self._codec = codec or PlainCodec()
        # Records are kept encoded, as Redis keeps them: callers never share objects, and
        # sealed fields stay sealed in memory too.
        self._data: dict[str, tuple[float, object]] = {}

    def _live(self, key: str) -> object | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _sweep(self) -> None:
        if len(self._data) % 1024 == 0:
            now = self._clock()
            for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
                del self._data[key]

    async def put(self, key: str, value: Record, ttl: int) -> None:
        self._sweep()
        self._data[key] = (self._clock() + ttl, self._codec.encode(value))

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        for key, value, ttl in items:
            await self.put(key, value, ttl)

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        await self.put(key, value, ttl)
        return True

    def _record(self, value: object) -> Record | None:
        return self._codec.decode(value) if isinstance(value, bytes) else None

    async def get(self, key: str) -> Record | None:
        return self._record(self._live(key))

    async def get_many(self, keys: list[str]) -> list[Record | None]:
        return [await self.get(k) for k in keys]

    async def take(self, key: str) -> Record | None:
        value = self._live(key)
        if value is None:
            return None
        del self._data[key]
        return self._record(value)

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> bool:
        if self._live(key) is None:
            return False
        del self._data[key]
        await self.put_many(items)
        return True

    async def compare_and_put(self, key: str, field: str, expected: int | str | None,
                              value: Record, ttl: int,
                              items: list[tuple[str, Record, int]] | None = None,
                              ) -> tuple[bool, Record | None]:
        current = self._live(key)
        record = self._record(current)
        if expected is None:
            ok = current is None
        else:
            ok = record is not None and str(record.get(field)) == str(expected)
        if not ok:
            return False, record
        await self.put(key, value, ttl)
        await self.put_many(items or [])
        return True, None

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def index_add(self, key: str, member: str, expires_at: float, now: float) -> None:
        current = self._live(key)
        index = dict(current) if isinstance(current, _Index) else {}
        index[member] = expires_at
        index = {m: exp for m, exp in index.items() if exp >= now}
        left = max(index.values(), default=now) - now
        if left > 0:
            self._data[key] = (self._clock() + left, _Index(index))
        else:
            self._data.pop(key, None)

    async def index_remove(self, key: str, member: str) -> None:
        current = self._live(key)
        if isinstance(current, _Index):
            current.pop(member, None)

    async def index_members(self, key: str, now: float) -> set[str]:
        current = self._live(key)
        if not isinstance(current, _Index):
            return set()
        return {m for m, exp in current.items() if exp >= now}

    def _schedule(self, key: str) -> dict[str, float]:
        current = self._live(key)
        if not isinstance(current, _Schedule):
            current = _Schedule()
            self._data[key] = (float("inf"), current)
        return current

    async def schedule(self, key: str, member: str, due: float) -> None:
        self._schedule(key)[member] = due

    async def claim_due(self, key: str, now: float, lease: float, limit: int) -> list[str]:
        schedule = self._schedule(key)
        due = sorted((at, m) for m, at in schedule.items() if at <= now)[:limit]
        for _, member in due:
            schedule[member] = now + lease
        return [m for _, m in due]

    async def unschedule(self, key: str, member: str) -> None:
        self._schedule(key).pop(member, None)

    async def scheduled(self, key: str) -> int:
        return len(self._schedule(key))

    async def incr(self, key: str, ttl: int) -> int:
        current = self._live(key)
        if isinstance(current, int):
            expires = self._data[key][0]
            self._data[key] = (expires, current + 1)
            return current + 1
        self._data[key] = (self._clock() + ttl, 1)
        return 1

    async def ttl(self, key: str) -> int | None:
        if self._live(key) is None:
            return None
        return max(0, int(self._data[key][0] - self._clock()))

    def use_codec(self, codec: Codec) -> None:
        self._codec = codec

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()

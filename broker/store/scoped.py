"""One part's view of the store: its own records only.

A connector keeps a few records of its own (BankID's order completions and collect
throttle, SITHS's single-use references and OCSP verdicts). It gets this view, not the
store: every key it names is put under `<scope>:`, so it can neither read nor overwrite a
login transaction, a session or a grant, and it has only the operations it needs.
"""

from __future__ import annotations

from .base import Record, Store


class ScopedStore:
    def __init__(self, store: Store, scope: str) -> None:
        if not scope or ":" in scope:
            raise ValueError("a scope is one word without ':'")
        self._store = store
        self._prefix = scope + ":"

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> Record | None:
        return await self._store.get(self._k(key))

    async def put(self, key: str, value: Record, ttl: int) -> None:
        await self._store.put(self._k(key), value, ttl)

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        return await self._store.put_new(self._k(key), value, ttl)

    async def take(self, key: str) -> Record | None:
        return await self._store.take(self._k(key))

    async def delete(self, *keys: str) -> None:
        await self._store.delete(*(self._k(k) for k in keys))

    async def incr(self, key: str, ttl: int) -> int:
        return await self._store.incr(self._k(key), ttl)

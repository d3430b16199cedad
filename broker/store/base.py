"""The few atomic operations the protocol needs from its state store.

Everything the broker keeps between requests goes through this interface, so that broker
replicas stay stateless and any of them can finish a login another began. Values are JSON
objects; every record has a TTL so nothing outlives its purpose.
"""

from __future__ import annotations

from typing import Any, Protocol

Record = dict[str, Any]


class StoreError(Exception):
    """The store could not be reached or answered badly."""


class Store(Protocol):
    async def put(self, key: str, value: Record, ttl: int) -> None:
        """Write `value` under `key`, replacing any earlier value; it expires after `ttl` s."""

    async def put_many(self, items: list[tuple[str, Record, int]]) -> None:
        """Write several records, each with its own TTL, in one round trip."""

    async def put_new(self, key: str, value: Record, ttl: int) -> bool:
        """Write only if `key` does not exist yet; True when written (SET NX)."""

    async def get(self, key: str) -> Record | None: ...

    async def get_many(self, keys: list[str]) -> list[Record | None]: ...

    async def take(self, key: str) -> Record | None:
        """Read and delete in one atomic step: of concurrent callers only one gets the value."""

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> Record | None:
        """Take `key` and, only if it was there, write `items`, as one atomic step.

        A code redemption is exactly this: of concurrent callers one gets the code and its
        tokens are written with it; nobody ever sees a spent code without its tokens."""

    async def delete(self, *keys: str) -> None: ...

    async def add_member(self, key: str, member: str, ttl: int) -> None:
        """Add `member` to the set at `key` and (re)arm the set's TTL."""

    async def members(self, key: str) -> set[str]: ...

    async def incr(self, key: str, ttl: int) -> int:
        """Count up a window counter (rate limits); the first increment arms the TTL."""

    async def ttl(self, key: str) -> int | None:
        """Seconds left for `key`, or None when it does not exist."""

    async def ping(self) -> None:
        """Raise StoreError when the store does not answer."""

    async def close(self) -> None: ...

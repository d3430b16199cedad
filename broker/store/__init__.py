"""The state store. Nothing outside this package speaks Redis."""

from __future__ import annotations

from .base import Record, Store, StoreError
from .memory import MemoryStore

__all__ = ["MemoryStore", "Record", "Store", "StoreError", "open_store"]

SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "memory://")


def open_store(url: str, prefix: str = "broker:", timeout: float = 2.0) -> Store:
    """Build the store named by `store.url`."""
    if url.startswith("memory://"):
        return MemoryStore()
    if url.startswith(SCHEMES):
        from .redis import RedisStore

        return RedisStore.from_url(url, prefix=prefix, timeout=timeout)
    raise ValueError(f"unsupported store URL scheme; use one of {', '.join(SCHEMES)}")

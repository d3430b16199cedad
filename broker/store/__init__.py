"""The state store. Nothing outside this package speaks Redis."""

from __future__ import annotations

from .base import Record, Store, StoreError
from .codec import Codec, PlainCodec, SealingCodec
from .memory import MemoryStore

__all__ = ["Codec", "MemoryStore", "PlainCodec", "Record", "SealingCodec", "Store", "StoreError",
           "open_store"]

SCHEMES = ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://", "rediss+cluster://",
           "memory://")


def open_store(url: str, prefix: str = "broker:", timeout: float = 2.0,
               codec: Codec | None = None, replicas: int = 0,
               replica_timeout: float = 0.5) -> Store:
    """Build the store named by `store.url`; `codec` decides how records look at rest,
    `replicas` how many replicas must have a write before it counts."""
    if url.startswith("memory://"):
        return MemoryStore(codec=codec)
    if url.startswith(SCHEMES):
        from .redis import RedisStore

        return RedisStore.from_url(url, prefix=prefix, timeout=timeout, codec=codec,
                                   replicas=replicas, replica_timeout=replica_timeout)
    raise ValueError(f"unsupported store URL scheme; use one of {', '.join(SCHEMES)}")

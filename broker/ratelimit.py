"""Rate limits counted in the store: the one implementation behind the cap on `/authorize`
per client address (`login.authorize_per_address_per_minute`) and BankID's caps on order
starts (`connectors.bankid.rate_limits`).

A fixed window aligned to the clock, one counter per (limit, key, window) in the shared
store, so a cap holds across replicas; a request beyond it is refused with the seconds
until the window ends and stores nothing else. Keys are hashed: a client address is
personal data and need not be readable in Redis.

What one client is: an IPv4 address, or an IPv6 /64 (the block one host or household is
usually given, so cycling through the addresses of one network does not escape a cap),
or a configured network that shares one budget (an office behind one NAT address).

Why ours and not the `limits` package (which has an async Redis storage): its storage is a
Redis client of its own beside the store, so it would bypass what the store does for every
other record - Sentinel and Cluster as `store.url` names them, a resent command that is
never counted twice (`Store.incr` carries an operation key), `StoreError` as a retryable
503, the memory store of the demo, the store's metrics. A window counter is one `incr`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import Protocol


class Counter(Protocol):
    """What a limit needs of a store (`Store`, or a connector's `ScopedStore`)."""

    async def incr(self, key: str, ttl: int) -> int: ...


def address_bucket(address: str, networks: Sequence[str] = ()) -> str:
    """What one client is counted as: the most specific of `networks` holding the address
    (`net:<network>`), else `v4:<address>` or `v6:<its /64>`; anything that is not an
    address counts as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    holding = [ipaddress.ip_network(n, strict=False) for n in networks]
    holding = [n for n in holding if ip in n]
    if holding:
        return f"net:{max(holding, key=lambda n: n.prefixlen)}"
    if isinstance(ip, ipaddress.IPv6Address):
        return f"v6:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"v4:{ip}"


class RateLimit:
    """At most `limit` hits per key in each `window` seconds (the limit is given per hit:
    a configured network has a budget of its own)."""

    def __init__(self, store: Counter, name: str, *, window: int = 60,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.name = name
        self.window = window
        self.clock = clock

    async def hit(self, key: str, limit: int) -> int | None:
        """Count one hit. None when it may go on, else the seconds until the window ends."""
        now = self.clock()
        index = int(now // self.window)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        count = await self.store.incr(f"rate:{self.name}:{digest}:{index}", 2 * self.window)
        if count <= limit:
            return None
        return max(1, self.window - int(now % self.window))

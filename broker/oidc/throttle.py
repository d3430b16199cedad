"""A cap on authorization requests per client address, counted in the shared store.

`/authorize` is unauthenticated, yet every valid request makes the broker keep a login
transaction until it expires; without a cap one address could fill Redis (and under
`noeviction` stop every login). A fixed one-minute window per address, counted in the
store so the cap holds across replicas; the excess is answered 429 with `Retry-After`
and stores nothing. IPv6 addresses count per /64, the block one host or household is
usually given, so cycling through addresses of one network does not escape the cap.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable

from ..store import Store

WINDOW = 60


def address_bucket(address: str) -> str:
    """What one client is counted as: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AddressLimit:
    """At most `per_minute` requests per address bucket per minute."""

    def __init__(self, store: Store, per_minute: int, *, name: str = "authorize",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.per_minute = per_minute
        self.name = name
        self.clock = clock

    async def exceeded(self, address: str) -> int | None:
        """Count one request. None when it may go on, else the seconds to wait."""
        now = self.clock()
        window = int(now // WINDOW)
        # Hashed: client addresses are personal data and need not be readable in Redis.
        bucket = hashlib.sha256(address_bucket(address).encode()).hexdigest()[:32]
        count = await self.store.incr(f"rate:{self.name}:{bucket}:{window}", 2 * WINDOW)
        if count <= self.per_minute:
            return None
        return max(1, WINDOW - int(now % WINDOW))

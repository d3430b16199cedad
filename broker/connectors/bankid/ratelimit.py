"""Caps on how often orders may be started (the counting is `broker.ratelimit`'s).

An order costs the municipality money and lands on a person's phone, so a script must
not be able to start them in bulk: per client address per minute (an IPv4 address, an
IPv6 /64, or a configured network with its own budget, `rate_limits.networks`), and per
login transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from ...ratelimit import Counter, RateLimit, address_bucket
from .settings import RateLimits

Exceeded = Literal["ip", "transaction"]
# A transaction lives at most a few of `login.transaction_ttl` (<= 1 h each): its starts
# are counted per hour.
TRANSACTION_WINDOW = 3600


def start_key(client_ip: str, limits: RateLimits) -> tuple[str, int]:
    """The counter a start from `client_ip` counts against, and that counter's limit."""
    networks = {n.network: n.starts_per_minute for n in limits.networks}
    bucket = address_bucket(client_ip, list(networks))
    limit = networks.get(bucket.removeprefix("net:"), limits.starts_per_ip_per_minute)
    return bucket, limit


class StartLimits:
    """Both caps of one BankID connector, counted in its records."""

    def __init__(self, store: Counter, limits: RateLimits,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.per_address = RateLimit(store, "starts-ip", clock=clock)
        self.per_transaction = RateLimit(store, "starts-txn", window=TRANSACTION_WINDOW,
                                         clock=clock)

    async def exceeded(self, *, client_ip: str, txn_id: str) -> Exceeded | None:
        """Count one order start; which cap it breaks, or None when it may go ahead."""
        bucket, limit = start_key(client_ip, self.limits)
        if await self.per_address.hit(bucket, limit) is not None:
            return "ip"
        if await self.per_transaction.hit(txn_id, self.limits.starts_per_transaction) is not None:
            return "transaction"
        return None


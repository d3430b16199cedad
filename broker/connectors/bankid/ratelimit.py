"""Caps on how often orders may be started.

An order costs the municipality money and lands on a person's phone, so a script must
not be able to start them in bulk: per client address per minute, and per login
transaction. Counted in the shared store so the caps hold across broker replicas.

The address is the unit a person or an office really has: an IPv4 address, or an IPv6
/64 (a client picks any address in its /64, so counting whole IPv6 addresses would be no
limit). A configured network (`rate_limits.networks`) counts as one, with its own budget.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from typing import Any, Literal

from .settings import RateLimits

Exceeded = Literal["ip", "transaction"]


def start_key(client_ip: str, limits: RateLimits) -> tuple[str, int]:
    """The counter a start from `client_ip` counts against, and that counter's limit."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip, limits.starts_per_ip_per_minute  # not an address: count it as given
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    matches = [n for n in limits.networks
               if address in ipaddress.ip_network(n.network, strict=False)]
    if matches:
        best = max(matches, key=lambda n: ipaddress.ip_network(n.network).prefixlen)
        return f"net:{best.network}", best.starts_per_minute
    if isinstance(address, ipaddress.IPv6Address):
        return f"v6:{ipaddress.ip_network(f'{address}/64', strict=False)}", \
            limits.starts_per_ip_per_minute
    return f"v4:{address}", limits.starts_per_ip_per_minute


async def check_start_rate(store: Any, limits: RateLimits, *, client_ip: str, txn_id: str,
                           now: float | None = None) -> Exceeded | None:
    """Count one order start; return which cap it breaks, or None when it may go ahead."""
    minute = int((time.time() if now is None else now) // 60)
    key, limit = start_key(client_ip, limits)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    per_ip = await store.incr(f"bankid:starts:ip:{digest}:{minute}", 120)
    if per_ip > limit:
        return "ip"
    per_txn = await store.incr(f"bankid:starts:txn:{txn_id}", 3600)
    if per_txn > limits.starts_per_transaction:
        return "transaction"
    return None

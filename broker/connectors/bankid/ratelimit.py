"""Caps on how often orders may be started.

An order costs the municipality money and lands on a person's phone, so a script must
not be able to start them in bulk: per client IP per minute, and per login transaction.
Counted in the shared store so the caps hold across broker replicas.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from .settings import RateLimits

Exceeded = Literal["ip", "transaction"]


async def check_start_rate(store: Any, limits: RateLimits, *, client_ip: str, txn_id: str,
                           now: float | None = None) -> Exceeded | None:
    """Count one order start; return which cap it breaks, or None when it may go ahead."""
    minute = int((time.time() if now is None else now) // 60)
    ip_key = hashlib.sha256(client_ip.encode("utf-8")).hexdigest()[:32]
    per_ip = await store.incr(f"bankid:starts:ip:{ip_key}:{minute}", 120)
    if per_ip > limits.starts_per_ip_per_minute:
        return "ip"
    per_txn = await store.incr(f"bankid:starts:txn:{txn_id}", 3600)
    if per_txn > limits.starts_per_transaction:
        return "transaction"
    return None

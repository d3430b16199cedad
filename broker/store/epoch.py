"""Noticing that the store lost its data.

A Redis master without persistence that restarts comes back empty (and its replica then
copies the emptiness): every session, code and grant is gone at once. Nothing fails, so
nothing would say so. The broker keeps a marker record from its first start; a readiness
check that finds it missing says loudly that the data was lost (error log, metric) and
puts it back. Readiness itself stays green: the store works, it just forgot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .base import Store

log = logging.getLogger(__name__)

KEY = "store-epoch"
TTL = 400 * 86400  # rewritten by every check; maxmemory-policy noeviction keeps it


class StoreEpoch:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def mark(self) -> None:
        """At start-up: the first replica ever writes the marker; the others find it."""
        await self.store.put_new(KEY, {"since": int(self.clock())}, TTL)

    async def check(self) -> bool:
        """True when the marker is gone (the store lost its data since it was written)."""
        if await self.store.get(KEY) is not None:
            return False
        log.error("the state store has lost its data: every SSO session, code and refresh "
                  "family is gone and people must log in again (a Redis master without "
                  "persistence restarted? see docs/operations.md, Redis)")
        await self.mark()
        return True

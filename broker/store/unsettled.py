"""Takes whose outcome is unknown and whose undo has not reached Redis yet.

A master killed while it runs a redemption leaves the broker not knowing whether the code
was taken (the script may have run and reached the replica that is promoted next). The
request answers 503; its retry must not find the code spent, or it would be refused as a
replay and the family revoked. The undo (see `RedisStore._undo_take`) cannot be sent while
there is no master, so it is kept here and sent again until a master takes it: in the
background, and before any read or take of the same key in this process, so the client's
retry sees the code as the first attempt found it. An entry lives as long as the take's
operation key (after that the undo has nothing left to go by) and is then given up with
an error-level log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from .base import StoreError

log = logging.getLogger(__name__)

# Sends one undo: (key, operation key, the keys the take wrote); raises when it cannot.
Undo = Callable[[str, str, list[str]], Awaitable[None]]


@dataclass(slots=True)
class _Pending:
    op: str
    written: list[str]
    until: float


class UnsettledTakes:
    def __init__(self, undo: Undo, keep: float, every: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._undo = undo
        self._keep = keep
        self._every = every
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._task: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, key: str, op: str, written: list[str]) -> None:
        self._pending[key] = _Pending(op, written, self._clock() + self._keep)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._retry())

    async def settle(self, keys: Iterable[str]) -> None:
        """Send the undo of every pending take among `keys` first; StoreError if one still
        cannot be sent (the caller's own operation would read a state not yet repaired)."""
        for key in keys:
            if key in self._pending:
                await self._send(key, raise_on_failure=True)

    async def _send(self, key: str, *, raise_on_failure: bool) -> None:
        entry = self._pending.get(key)
        if entry is None:
            return
        try:
            await self._undo(key, entry.op, entry.written)
        except (RedisError, OSError) as exc:
            if self._clock() >= entry.until:
                self._pending.pop(key, None)
                log.error("store: gave up undoing a take whose outcome is unknown (%s); a "
                          "retry of it will be refused as a replay", str(exc) or type(exc).__name__)
            if raise_on_failure:
                raise StoreError(str(exc) or type(exc).__name__) from exc
            return
        self._pending.pop(key, None)

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(self._every)
            for key in list(self._pending):
                await self._send(key, raise_on_failure=False)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

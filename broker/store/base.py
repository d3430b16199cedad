"""The few atomic operations the protocol needs from its state store.

Everything the broker keeps between requests goes through this interface, so that broker
replicas stay stateless and any of them can finish a login another began. Values are JSON
objects; every record has a TTL so nothing outlives its purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .codec import Codec

Record = dict[str, Any]


class StoreError(Exception):
    """The store could not be reached or answered badly."""


class Store(Protocol):
    """Every operation is safe to retry: a store that resends a command after a lost
    reply (Redis) makes sure the resend returns what the first run did, so a retry is
    never mistaken for a replay (a code taken twice, a counter counted twice)."""

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

    async def take_and_put(self, key: str, items: list[tuple[str, Record, int]]) -> bool:
        """Delete `key` and, only if it was there, write `items`, as one atomic step;
        True when this call took it.

        A code redemption is exactly this: of concurrent callers one takes the code and its
        tokens are written with it; nobody ever sees a spent code without its tokens."""

    async def compare_and_put(self, key: str, field: str, expected: int | str | None,
                              value: Record, ttl: int,
                              items: list[tuple[str, Record, int]] | None = None,
                              ) -> tuple[bool, Record | None]:
        """Replace the record at `key` with `value` (and write `items`) only if its
        `field` still equals `expected` (None: only if `key` does not exist), as one
        atomic step. Returns (True, None) when written, else (False, the current record).
        `field` must hold an integer or a string. A refresh rotation is exactly this."""

    async def delete(self, *keys: str) -> None: ...

    async def index_add(self, key: str, member: str, expires_at: float, now: float) -> None:
        """Add (or re-date) `member` in the index at `key`, live until `expires_at`; drop
        members already expired; the index itself expires with its last member."""

    async def index_remove(self, key: str, member: str) -> None: ...

    async def index_members(self, key: str, now: float) -> set[str]:
        """The members still live at `now`."""

    async def schedule(self, key: str, member: str, due: float) -> None:
        """Put `member` in the schedule at `key`, due at `due` (re-scheduling moves it)."""

    async def claim_due(self, key: str, now: float, lease: float, limit: int) -> list[str]:
        """Take up to `limit` members due by `now` and move each `lease` seconds on, as one
        step: of workers claiming at once each member goes to one; a member whose worker
        died is due again when its lease runs out."""

    async def unschedule(self, key: str, member: str) -> None: ...

    async def scheduled(self, key: str) -> int:
        """How many members the schedule holds (due or not)."""

    async def incr(self, key: str, ttl: int) -> int:
        """Count up a window counter (rate limits); the first increment arms the TTL."""

    async def ttl(self, key: str) -> int | None:
        """Seconds left for `key`, or None when it does not exist."""

    def use_codec(self, codec: Codec) -> None:
        """How records look at rest from now on (the app factory seals personal data with
        a key of the keys directory); called before the first record is written."""

    async def ping(self) -> None:
        """Raise StoreError when the store does not answer."""

    async def close(self) -> None: ...

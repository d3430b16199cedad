"""The login transaction: one validated authorization request on its way to a code.

It lives in the store (10 min by default) so any replica can continue it, and it belongs
to the browser that first opened it: every later step checks the browser binding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..ids import new_id
from ..store import Store


@dataclass
class LoginTransaction:
    id: str
    client_id: str
    params: dict[str, str]
    created: int
    expires: int
    csrf: str
    browser: str | None = None
    method: str | None = None
    identity: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)
    assignment: dict[str, Any] | None = None
    from_session: bool = False
    upstream: dict[str, Any] = field(default_factory=dict)

    @property
    def prompts(self) -> set[str]:
        return set(self.params.get("prompt", "").split())

    def to_record(self) -> dict[str, Any]:
        # Shallow: the fields already hold plain JSON values, and the store serialises
        # (Redis) or copies (memory) at once; asdict's deep copy of the user's assignments
        # was a fifth of a login's CPU.
        return dict(vars(self))


class Transactions:
    def __init__(self, store: Store, ttl: int) -> None:
        self.store = store
        self.ttl = ttl

    async def create(self, client_id: str, params: dict[str, str]) -> LoginTransaction:
        now = int(time.time())
        txn = LoginTransaction(
            id=new_id(18), client_id=client_id, params=params, created=now,
            expires=now + self.ttl, csrf=new_id(18),
        )
        await self.store.put(f"txn:{txn.id}", txn.to_record(), self.ttl)
        return txn

    async def get(self, txn_id: str) -> LoginTransaction | None:
        if not (8 <= len(txn_id) <= 64):
            return None
        record = await self.store.get(f"txn:{txn_id}")
        return LoginTransaction(**record) if record else None

    async def save(self, txn: LoginTransaction) -> None:
        left = txn.expires - int(time.time())
        if left > 0:
            await self.store.put(f"txn:{txn.id}", txn.to_record(), left)

    async def end(self, txn: LoginTransaction) -> None:
        await self.store.delete(f"txn:{txn.id}")

"""The login transaction: one validated authorization request on its way to a code.

A neutral module: the provider (`broker.oidc`) creates and ends transactions, and the
connectors (`broker.connectors`) run their upstream login inside one, so both import it
and neither imports the other.

It lives in the store so any replica can continue it, and it belongs to the browser that
first opened it: every later step checks the browser binding. Until a browser binds it,
it is what an unauthenticated request may make us keep, so it is small (the endpoint caps
the parameters it holds) and short-lived (`UNBOUND_TTL`: the browser follows the 303 at
once); binding gives it the full `login.transaction_ttl`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .secret_ids import new_id
from .security import CsrfTokens
from .store import Store

UNBOUND_TTL = 120


@dataclass
class LoginTransaction:
    id: str
    client_id: str
    params: dict[str, str]
    created: int
    expires: int
    # The token of this login's forms: `CsrfTokens.token(login_binding(id))`. Checked by
    # recomputing it (`LoginFlow.form`); kept in the record so that the pages can show it
    # and a replica of the previous version, which compared with the stored value, can
    # still continue a login during a rolling upgrade.
    csrf: str
    browser: str | None = None
    method: str | None = None
    identity: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)
    assignment: dict[str, Any] | None = None
    from_session: bool = False
    upstream: dict[str, Any] = field(default_factory=dict)
    # The `sub` the request names (id_token_hint, or a `sub` value in `claims`), as this
    # client knows it: only that person's session or login may answer (OIDC Core 3.1.2.2).
    subject: str | None = None
    # What the store holds of it, as last read or written in this request (`Transactions`):
    # bookkeeping, never part of the record.
    _stored: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _ended: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def prompts(self) -> set[str]:
        return set(self.params.get("prompt", "").split())

    def to_record(self) -> dict[str, Any]:
        # Shallow: the fields already hold plain JSON values, and the store serialises
        # (Redis) or copies (memory) at once; asdict's deep copy of the user's assignments
        # was a fifth of a login's CPU. No `subject` key when there is none, so a replica
        # of the previous version can still read the record during a rolling upgrade.
        record = dict(vars(self))
        record.pop("_stored", None)
        record.pop("_ended", None)
        if record["subject"] is None:
            del record["subject"]
        return record


def login_binding(txn_id: str) -> str:
    """What a login's CSRF token is bound to (security.CsrfTokens)."""
    return "login|" + txn_id


class Transactions:
    def __init__(self, store: Store, ttl: int, csrf: CsrfTokens,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl = ttl
        self.csrf = csrf
        self.clock = clock

    async def create(self, client_id: str, params: dict[str, str],
                     subject: str | None = None) -> LoginTransaction:
        now = int(self.clock())
        ttl = min(UNBOUND_TTL, self.ttl)
        txn_id = new_id(18)
        txn = LoginTransaction(
            id=txn_id, client_id=client_id, params=params, created=now,
            expires=now + ttl, csrf=self.csrf.token(login_binding(txn_id)), subject=subject,
        )
        await self.store.put(f"txn:{txn.id}", txn.to_record(), ttl)
        return txn

    def bind(self, txn: LoginTransaction, browser: str) -> None:
        """The first browser to open the login owns it, for the full transaction time.
        In memory: the request that binds saves the transaction once at its end
        (`save_if_changed`), with whatever else it changed."""
        txn.browser = browser
        txn.expires = int(self.clock()) + self.ttl

    async def get(self, txn_id: str) -> LoginTransaction | None:
        if not (8 <= len(txn_id) <= 64):
            return None
        record = await self.store.get(f"txn:{txn_id}")
        if not record:
            return None
        txn = LoginTransaction(**record)
        txn._stored = orjson.dumps(txn.to_record())
        return txn

    async def save(self, txn: LoginTransaction) -> None:
        left = txn.expires - int(self.clock())
        if left > 0:
            record = txn.to_record()
            await self.store.put(f"txn:{txn.id}", record, left)
            txn._stored = orjson.dumps(record)

    async def save_if_changed(self, txn: LoginTransaction) -> None:
        """Save unless the store already holds exactly this (a connector saved it on the
        way) or the transaction has ended (saving would bring it back). A login's first
        page saved the same transaction three times before: its binding, its method, its
        BankID order."""
        if not txn._ended and orjson.dumps(txn.to_record()) != txn._stored:
            await self.save(txn)

    async def end(self, txn: LoginTransaction) -> None:
        await self.store.delete(f"txn:{txn.id}")
        txn._ended = True

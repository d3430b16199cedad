"""Back-Channel Logout 1.0: the logout token, and an outbox that delivers it for sure.

On a shared care workstation an RP that never hears of a logout stays logged in for the
next person, so a notification is not sent "best effort" after the response: ending a
session writes one outbox entry per RP into the store first (`enqueue`), and delivery
happens from there. Every replica runs a `Courier` that claims due entries (each goes to
one replica; one whose replica died is due again after its lease), POSTs a freshly signed
logout token, and on failure puts the entry back with a growing pause, until the RP has
it or `backchannel.deadline` passes (then an error-level log line: somebody must act).
Entries survive restarts and crashes of every replica. The RP must accept a repeat
(Back-Channel Logout 1.0 2.7; each token has its own `jti`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from ..secret_ids import new_id
from .claims import subject_for

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..config import BackchannelSettings, Settings
    from ..metrics import Metrics
    from ..session import SsoSession
    from ..store import Store
    from .clients import Client, ClientRegistry
    from .signer import Signer

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
DUE = "bcl-due"  # the schedule of entries, by when each is due


def entry_key(entry_id: str) -> str:
    return "bcl:" + entry_id


@dataclass(slots=True)
class Notification:
    """One RP to tell that one session ended."""

    id: str
    client_id: str
    sid: str
    user_id: str
    created: int
    deadline: int
    attempts: int = 0

    def to_record(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_record(cls, record: dict) -> Notification:
        return cls(**record)


class LogoutTokens(Protocol):
    def __call__(self, notification: Notification, client: Client) -> str: ...


def logout_token_maker(settings: Settings, signer: Signer) -> Callable[[Notification, Client], str]:
    """Back-Channel Logout 1.0 2.4: signed like the client's ID tokens, typ logout+jwt,
    `sid` and `sub` as in its ID tokens, the logout event, never a nonce; made at each
    attempt, so a late delivery still carries a token that is valid when it arrives."""

    def make(notification: Notification, client: Client) -> str:
        now = int(time.time())
        return signer.sign({
            "iss": settings.issuer, "aud": client.client_id, "iat": now, "exp": now + 120,
            "jti": new_id(), "sid": notification.sid,
            "sub": subject_for(notification.user_id, client.settings, settings.pairwise_salt),
            "events": {BACKCHANNEL_EVENT: {}},
        }, client.settings.id_token_signed_response_alg, typ="logout+jwt")

    return make


class Outbox:
    """The store side: what is waiting, and the steps of one delivery."""

    def __init__(self, store: Store, clients: ClientRegistry, settings: BackchannelSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clients = clients
        self.settings = settings
        self.clock = clock

    async def enqueue(self, session: SsoSession) -> list[str]:
        """One entry per client of the session that registered a back-channel URI,
        written before anyone is told that the logout happened."""
        now = int(self.clock())
        ids = []
        for client_id in sorted(session.clients):
            client = self.clients.get(client_id)
            if client is None or not client.settings.backchannel_logout_uri:
                continue
            entry = Notification(new_id(), client_id, session.sid, session.user["id"], now,
                                 now + self.settings.deadline)
            await self.store.put(entry_key(entry.id), entry.to_record(),
                                 self.settings.deadline + self.settings.lease * 2)
            await self.store.schedule(DUE, entry.id, now)
            ids.append(entry.id)
        return ids

    async def claim(self, limit: int) -> list[Notification]:
        ids = await self.store.claim_due(DUE, self.clock(), self.settings.lease, limit)
        return await self.load(ids)

    async def load(self, ids: list[str]) -> list[Notification]:
        records = await self.store.get_many([entry_key(i) for i in ids]) if ids else []
        out = []
        for entry_id, record in zip(ids, records, strict=True):
            if record is None:  # delivered or given up elsewhere meanwhile
                await self.store.unschedule(DUE, entry_id)
                continue
            out.append(Notification.from_record(record))
        return out

    async def done(self, entry: Notification) -> None:
        await self.store.delete(entry_key(entry.id))
        await self.store.unschedule(DUE, entry.id)

    async def again(self, entry: Notification) -> float:
        """Back in the queue after a failed attempt; returns the pause until the next."""
        entry.attempts += 1
        pause = min(float(self.settings.max_backoff), 2.0 ** (entry.attempts - 1))
        await self.store.put(entry_key(entry.id), entry.to_record(),
                             max(1, entry.deadline - int(self.clock())) + self.settings.lease * 2)
        await self.store.schedule(DUE, entry.id, self.clock() + pause)
        return pause

    async def pending(self) -> int:
        return await self.store.scheduled(DUE)


class Courier:
    """Delivers what the outbox holds: in a loop on every replica (`run`), or for some
    entries right away (`deliver_now`, the admin CLI that wants to report the outcome)."""

    POLL = 1.0  # how often a quiet courier looks for entries another replica enqueued

    def __init__(self, outbox: Outbox, http: httpx.AsyncClient, make_token: LogoutTokens,
                 audit: AuditLog, metrics: Metrics | None = None) -> None:
        self.outbox = outbox
        self.http = http
        self.make_token = make_token
        self.audit = audit
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Something was enqueued: look now, not at the next poll."""
        self._wake.set()

    async def deliver_due(self) -> int:
        """One round: claim what is due and deliver it; returns how many were claimed."""
        entries = await self.outbox.claim(self.outbox.settings.concurrency)
        if entries:
            await asyncio.gather(*(self._deliver(e) for e in entries))
        if self.metrics is not None:
            self.metrics.backchannel_pending(await self.outbox.pending())
        return len(entries)

    async def deliver_now(self, ids: list[str]) -> dict[str, bool]:
        """Try these entries once, now; client -> delivered. What fails stays queued for
        the replicas' couriers (a repeat is allowed, so racing them does no harm)."""
        entries = await self.outbox.load(ids)
        results = await asyncio.gather(*(self._deliver(e) for e in entries))
        return {e.client_id: ok for e, ok in zip(entries, results, strict=True)}

    async def _deliver(self, entry: Notification) -> bool:
        client = self.outbox.clients.get(entry.client_id)
        uri = client.settings.backchannel_logout_uri if client else None
        if client is None or not uri:
            await self.outbox.done(entry)  # the client is gone from the config
            return False
        outcome, detail = await self._post(client, uri, entry)
        if outcome == "delivered":
            await self.outbox.done(entry)
            self._count("delivered")
            self.audit.event("backchannel_logout", sid=entry.sid, client=entry.client_id,
                             delivered=True, attempts=entry.attempts + 1)
            return True
        if outcome == "refused" or self.outbox.clock() >= entry.deadline:
            await self.outbox.done(entry)
            self._count("given_up")
            log.error("back-channel logout to %s given up after %d attempts (%s): the RP "
                      "may still hold session %s", entry.client_id, entry.attempts + 1, detail,
                      entry.sid)
            self.audit.event("backchannel_logout", sid=entry.sid, client=entry.client_id,
                             delivered=False, attempts=entry.attempts + 1, reason=detail)
            return False
        pause = await self.outbox.again(entry)
        self._count("retried")
        log.warning("back-channel logout to %s failed (%s); retry %d in %.0f s",
                    entry.client_id, detail, entry.attempts, pause)
        return False

    async def _post(self, client: Client, uri: str, entry: Notification) -> tuple[str, str]:
        try:
            resp = await self.http.post(uri, data={"logout_token": self.make_token(entry, client)},
                                        timeout=self.outbox.settings.timeout,
                                        headers={"Cache-Control": "no-store"})
        except httpx.HTTPError as exc:
            return "failed", type(exc).__name__
        if resp.status_code in (200, 204):
            return "delivered", str(resp.status_code)
        if resp.status_code < 500 and resp.status_code != 429:
            # The RP rejected the token (or redirects): sending it again will not help.
            return "refused", f"HTTP {resp.status_code}"
        return "failed", f"HTTP {resp.status_code}"

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.backchannel(outcome)

    # -- the loop every replica runs -----------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        while True:
            try:
                claimed = await self.deliver_due()
            except Exception as exc:  # the store is away: keep the loop, try again later
                log.warning("back-channel outbox unavailable: %s", exc)
                claimed = 0
            if claimed:
                continue  # there may be more due right now
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.POLL)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

"""SSO sessions and which relying parties each one has been used for.

The browser holds only a random cookie value; the store keys its hash. The `sid` that goes
into ID tokens and logout tokens is a separate public id, so a leaked ID token never
reveals the cookie.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .secret_ids import digest, new_id
from .store import Store

SSO_COOKIE = "broker_sso"
# How long the broker remembers that a session ended (refresh tokens issued under it check
# this) and which sessions a user had (admin revoke): the longest a refresh token may live.
REMEMBER = 30 * 86400


def user_key(user_id: str) -> str:
    """The index of a user's live sessions."""
    return "sso-user:" + user_id


def user_revoked_key(user_id: str) -> str:
    """The marker that stops every grant the user had before it was written."""
    return "user-revoked:" + user_id


def ended_key(sid: str) -> str:
    """The marker that stops every refresh token issued under `sid`."""
    return "sid-ended:" + sid


@dataclass
class SsoSession:
    sid: str
    user: dict[str, Any]
    identity: dict[str, Any]
    auth_time: int
    created: int
    last_seen: int
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignment: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        # Shallow: the fields already hold plain JSON values, and the store serialises
        # (Redis) or copies (memory) at once; asdict's deep copy of the user's assignments
        # was a fifth of a login's CPU.
        return dict(vars(self))


class Sessions:
    """Server-side SSO sessions: `sso:<hash of cookie>` holds the session, `sso-sid:<sid>`
    finds it by its public id, `sso-user:<user>` indexes a user's live sids for admin
    revoke (each entry expires with its session, so the index never grows past the
    sessions a user really has). Both timeouts are enforced here and by the record's TTL
    (idle, capped by absolute)."""

    def __init__(self, store: Store, idle: int, absolute: int, remember: int = REMEMBER,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.idle = idle
        self.absolute = absolute
        self.remember = max(remember, absolute)
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    def _ttl(self, session: SsoSession, now: int) -> int:
        return max(1, min(self.idle, session.created + self.absolute - now))

    async def load(self, cookie: str | None) -> SsoSession | None:
        if not cookie or len(cookie) > 64:
            return None
        record = await self.store.get("sso:" + digest(cookie))
        if not record:
            return None
        session = SsoSession(**record)
        now = self._now()
        if now - session.last_seen > self.idle or now - session.created > self.absolute:
            return None
        return session

    async def create(self, user: dict[str, Any], identity: dict[str, Any], *,
                     clients: dict[str, dict[str, Any]] | None = None,
                     assignment: dict[str, Any] | None = None) -> tuple[str, SsoSession]:
        """A new session (a fresh cookie value at every real login: no fixation), written
        with the client it is created for."""
        now = self._now()
        cookie = new_id(24)
        session = SsoSession(sid=new_id(16), user=user, identity=identity,
                             auth_time=int(identity["auth_time"]), created=now, last_seen=now,
                             clients=dict(clients or {}), assignment=assignment)
        await self._write(cookie, session, now)  # a new sid cannot have been ended yet
        return cookie, session

    async def reauthenticate(self, old_cookie: str, session: SsoSession, user: dict[str, Any],
                             identity: dict[str, Any]) -> str | None:
        """The same person logged in upstream again (prompt=login, max_age, a new method):
        keep the session's sid and its clients, so a later logout still reaches them, but
        record the new login time and give the browser a fresh cookie value (no fixation).
        None when the session ended meanwhile."""
        cookie = new_id(24)
        session.user = user
        session.identity = identity
        session.auth_time = int(identity["auth_time"])
        if not await self.save(cookie, session):
            return None
        await self.store.delete("sso:" + digest(old_cookie))
        return cookie

    async def save(self, cookie: str, session: SsoSession) -> bool:
        """Write the session (and extend its idle time). False, writing nothing, when the
        session was ended meanwhile: a login finishing in one tab must not bring back a
        session that was logged out or revoked in another."""
        if await self.store.get(ended_key(session.sid)):
            return False
        await self._write(cookie, session, self._now())
        return True

    async def _write(self, cookie: str, session: SsoSession, now: int) -> None:
        session.last_seen = now
        ttl = self._ttl(session, now)
        await asyncio.gather(
            self.store.put_many([
                ("sso:" + digest(cookie), session.to_record(), ttl),
                ("sso-sid:" + session.sid, {"key": digest(cookie), "user": session.user["id"]},
                 ttl),
            ]),
            self.store.index_add(user_key(session.user["id"]), session.sid, now + ttl, now))

    async def end(self, sid: str) -> SsoSession | None:
        """End by public sid (logout, admin revoke, withdrawal). The ended-marker is written
        first, so refresh tokens of the session stop and a concurrent `save` cannot revive
        it, even when the session itself had already expired. Returns what was ended, or
        None when nothing was live (no one to tell over the back-channel)."""
        await self.store.put(ended_key(sid), {"at": self._now()}, self.remember)
        ref = await self.store.take("sso-sid:" + sid)
        if not ref:
            return None
        await self.store.index_remove(user_key(ref["user"]), sid)
        record = await self.store.take("sso:" + ref["key"])
        return SsoSession(**record) if record else None

    async def revoke_user(self, user_id: str) -> None:
        """Stop every grant of the user issued until now, also those of sessions that
        have already expired (their refresh tokens outlive an idle session); new logins
        are not affected."""
        await self.store.put(user_revoked_key(user_id), {"at": self._now()}, self.remember)

    async def get(self, sid: str) -> SsoSession | None:
        """A live session by its public sid (admin listing), without touching it."""
        ref = await self.store.get("sso-sid:" + sid)
        if not ref:
            return None
        record = await self.store.get("sso:" + ref["key"])
        return SsoSession(**record) if record else None

    async def sids_of_user(self, user_id: str) -> set[str]:
        """The sids of the user's live sessions."""
        return await self.store.index_members(user_key(user_id), self._now())

    async def of_user(self, user_id: str) -> list[SsoSession]:
        """The user's live sessions, oldest first."""
        found = [await self.get(sid) for sid in sorted(await self.sids_of_user(user_id))]
        return sorted((s for s in found if s is not None), key=lambda s: s.created)

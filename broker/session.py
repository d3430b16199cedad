"""SSO sessions and which relying parties each one has been used for.

The browser holds only a random cookie value; the store keys its hash. The `sid` that goes
into ID tokens and logout tokens is a separate public id, so a leaked ID token never
reveals the cookie.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .oidc.tokens import digest, new_id
from .store import Store

SSO_COOKIE = "broker_sso"


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
        return asdict(self)


class Sessions:
    def __init__(self, store: Store, idle: int, absolute: int) -> None:
        self.store = store
        self.idle = idle
        self.absolute = absolute

    def _ttl(self, session: SsoSession, now: int) -> int:
        return max(1, min(self.idle, session.created + self.absolute - now))

    async def load(self, cookie: str | None) -> SsoSession | None:
        if not cookie or len(cookie) > 64:
            return None
        record = await self.store.get("sso:" + digest(cookie))
        if not record:
            return None
        session = SsoSession(**record)
        now = int(time.time())
        if now - session.last_seen > self.idle or now - session.created > self.absolute:
            return None
        return session

    async def create(self, user: dict[str, Any], identity: dict[str, Any]) -> tuple[str, SsoSession]:
        """A new session (a fresh cookie value at every real login: no fixation)."""
        now = int(time.time())
        cookie = new_id(24)
        session = SsoSession(sid=new_id(16), user=user, identity=identity,
                             auth_time=int(identity["auth_time"]), created=now, last_seen=now)
        await self.save(cookie, session)
        await self.store.add_member(f"sso-user:{user['id']}", session.sid, self.absolute)
        return cookie, session

    async def save(self, cookie: str, session: SsoSession) -> None:
        now = int(time.time())
        session.last_seen = now
        ttl = self._ttl(session, now)
        await self.store.put_many([
            ("sso:" + digest(cookie), session.to_record(), ttl),
            ("sso-sid:" + session.sid, {"key": digest(cookie), "user": session.user["id"]}, ttl),
        ])

    async def end(self, sid: str) -> SsoSession | None:
        """End by public sid (logout, admin revoke). Returns what was ended."""
        ref = await self.store.take("sso-sid:" + sid)
        if not ref:
            return None
        record = await self.store.take("sso:" + ref["key"])
        return SsoSession(**record) if record else None

    async def sids_of_user(self, user_id: str) -> set[str]:
        return await self.store.members(f"sso-user:{user_id}")

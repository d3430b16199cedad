"""The SSO session record in real Redis: idle and absolute limits, the cookie it hides
behind, and that an ended session cannot be revived by a login finishing elsewhere."""

from __future__ import annotations

import secrets
import time

import pytest
from starlette.responses import Response

from broker.security import Cookies
from broker.session import SSO_COOKIE, Sessions, ended_key
from broker.store import open_store

USER = {"id": "u-test", "given_name": "Test"}


@pytest.fixture
async def sessions(redis):
    store = open_store(redis, f"sess{secrets.token_hex(4)}:")
    yield Sessions(store, idle=600, absolute=3600)
    await store.close()


def identity(auth_time: int | None = None) -> dict:
    return {"method": "test", "auth_time": auth_time or int(time.time())}


async def test_idle_and_absolute_timeouts(sessions):
    cookie, session = await sessions.create(USER, identity())
    assert (await sessions.load(cookie)).sid == session.sid
    ttl = await sessions.store.ttl("sso:" + _digest(cookie))
    assert 0 < ttl <= 600  # the record itself lapses after the idle time

    session.last_seen = int(time.time()) - 601  # idle too long
    await sessions.store.put("sso:" + _digest(cookie), session.to_record(), 60)
    assert await sessions.load(cookie) is None

    cookie2, s2 = await sessions.create(USER, identity())
    s2.created = int(time.time()) - 3590  # 10 s of its absolute lifetime left
    assert await sessions.save(cookie2, s2)
    assert await sessions.store.ttl("sso:" + _digest(cookie2)) <= 10  # use cannot extend it
    s2.created = int(time.time()) - 3601
    await sessions.store.put("sso:" + _digest(cookie2), s2.to_record(), 60)
    assert await sessions.load(cookie2) is None


async def test_an_ended_session_is_not_revived_by_a_late_save(sessions):
    cookie, session = await sessions.create(USER, identity())
    ended = await sessions.end(session.sid)
    assert ended is not None and ended.sid == session.sid
    assert await sessions.store.get(ended_key(session.sid))  # refresh tokens stop
    assert not await sessions.save(cookie, session)
    assert await sessions.load(cookie) is None
    assert await sessions.end(session.sid) is None  # nothing live to tell anyone about


async def test_reauthentication_keeps_sid_and_rotates_the_cookie(sessions):
    cookie, session = await sessions.create(USER, identity(int(time.time()) - 100))
    session.clients["lifecare"] = {"since": 1}
    assert await sessions.save(cookie, session)
    new_cookie = await sessions.reauthenticate(cookie, session, USER, identity())
    assert new_cookie and new_cookie != cookie
    assert await sessions.load(cookie) is None  # the old cookie value is worthless
    again = await sessions.load(new_cookie)
    assert again.sid == session.sid and "lifecare" in again.clients
    assert again.auth_time >= int(time.time()) - 1
    assert [s.sid for s in await sessions.of_user("u-test")] == [session.sid]


def test_cookie_is_host_prefixed_secure_httponly_lax_on_https():
    response = Response()
    Cookies(secure=True).set(response, SSO_COOKIE, "v" * 32)
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-broker_sso=")
    lowered = header.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
    assert "path=/" in lowered and "domain" not in lowered
    plain = Response()
    Cookies(secure=False).set(plain, SSO_COOKIE, "v" * 32)  # http://localhost development
    assert plain.headers["set-cookie"].startswith("broker_sso=")


def _digest(cookie: str) -> str:
    from broker.secret_ids import digest

    return digest(cookie)


async def test_the_user_index_holds_live_sessions_only_over_a_thousand_logins(redis):
    """A nurse logging in every few minutes for weeks: the index of her sessions never
    grows past the sessions that can still be alive, and never outlives them."""
    import redis.asyncio as aioredis

    class Clock:
        now = float(int(time.time()))

        def __call__(self) -> float:
            return self.now

    clock, prefix = Clock(), f"idx{secrets.token_hex(4)}:"
    store = open_store(redis, prefix)
    sessions = Sessions(store, idle=600, absolute=3600, clock=clock)
    raw = aioredis.Redis.from_url(redis)
    try:
        live: list[str] = []
        for _ in range(1000):
            _, session = await sessions.create(USER, identity(int(clock.now)))
            live.append(session.sid)
            clock.now += 120  # a new login every two minutes; each session idles out
        key = f"{prefix}sso-user:{USER['id']}"
        # Idle timeout 600 s, a login every 120 s: at most 5 sessions can still be live.
        assert await raw.zcard(key) <= 6
        assert len(await sessions.sids_of_user(USER["id"])) <= 5
        assert set(await sessions.sids_of_user(USER["id"])) <= set(live[-6:])
        # The index expires with its last session (600 s after the last write at most).
        assert 0 < await raw.ttl(key) <= 600
        # Ending a session takes it out of the index at once.
        await sessions.end(live[-1])
        assert live[-1] not in await sessions.sids_of_user(USER["id"])
    finally:
        await raw.aclose()
        await store.close()

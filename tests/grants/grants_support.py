"""What the grants tests do as an RP: log in, refresh, call UserInfo, look into Redis."""

from __future__ import annotations

import json

import httpx
import redis as redis_sync

from tests.support.rp import FakeRP


def login(b, client: str = "rp-basic", **extra) -> tuple[FakeRP, dict]:
    rp = b.rp(client)
    with b.browser() as browser:
        code = rp.login(browser, **extra)
    resp = rp.token(code)
    assert resp.status_code == 200, resp.text
    return rp, resp.json()


def refresh(rp: FakeRP, token: str) -> httpx.Response:
    """One refresh on a connection of its own (safe from many threads at once)."""
    data, auth = rp.client_auth()
    data.update({"grant_type": "refresh_token", "refresh_token": token})
    return httpx.post(rp.issuer + "/token", data=data, auth=auth, timeout=20)


def userinfo(rp: FakeRP, access_token: str) -> int:
    return rp.http.get("/userinfo", headers={"Authorization": "Bearer " + access_token}).status_code


def family_gen(redis_url: str, b, token: str) -> int:
    """The family's live generation, read straight from Redis."""
    family = token.split(".")[0]
    raw = redis_sync.Redis.from_url(redis_url).get(
        f"{b.broker.settings.store.prefix}fam-state:{{{family}}}")
    return json.loads(raw)["gen"]

"""What the grants tests do as an RP: log in, refresh, call UserInfo, look into Redis."""

from __future__ import annotations

import httpx

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


def generation(tokens: dict) -> int:
    """The family generation a token response is at: its refresh token says so (the family
    state moves to it in the same atomic step that issued it)."""
    return int(tokens["refresh_token"].split(".")[1])

"""Client assertions (RFC 7523 and its update for OAuth servers) at every endpoint that
authenticates clients, and introspection that always agrees with UserInfo."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from joserfc import jwt

from tests.conftest import BACKENDS, _store_url
from tests.grants.grants_support import login, refresh, userinfo
from tests.support.brokers import running_broker

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(b, **claims) -> str:
    now = int(time.time())
    body = {"iss": "rp-jwt", "sub": "rp-jwt", "aud": b.issuer + "/token", "iat": now,
            "exp": now + 60, "jti": secrets.token_urlsafe(12), **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": b.jwt_key.kid}, body, b.jwt_key)


def post(b, path: str, client_assertion: str, **fields) -> httpx.Response:
    return httpx.post(b.issuer + path, data={"client_assertion_type": ASSERTION_TYPE,
                                             "client_assertion": client_assertion, **fields})


@pytest.fixture(scope="module", params=BACKENDS)
def jwt_broker(request, tmp_path_factory):
    with running_broker(_store_url(request, request.param),
                        tmp_path_factory.mktemp("assertions")) as b:
        yield b


def test_an_assertion_authenticates_once_at_every_endpoint(jwt_broker):
    b = jwt_broker
    _, tokens = login(b, "rp-jwt")
    for jti in ("short", "x" * 600):  # any length is recorded
        once = assertion(b, jti=f"{jti}-{secrets.token_hex(4)}")
        assert post(b, "/introspect", once, token=tokens["access_token"]).json()["active"] is True
        for path, fields in (("/introspect", {"token": tokens["access_token"]}),
                             ("/revoke", {"token": "unknown"}),
                             ("/token", {"grant_type": "refresh_token",
                                         "refresh_token": tokens["refresh_token"]})):
            again = post(b, path, once, **fields)
            assert again.status_code == 400, (path, again.text)  # no Authorization header
            assert again.json()["error"] == "invalid_client"
    # Spent at /token first, then refused at the others.
    first = assertion(b)
    assert post(b, "/token", first, grant_type="refresh_token",
                refresh_token=tokens["refresh_token"]).status_code == 200
    assert post(b, "/revoke", first, token="unknown").json()["error"] == "invalid_client"


def test_the_audience_must_be_this_server_only(jwt_broker):
    b = jwt_broker
    _, tokens = login(b, "rp-jwt")
    for aud in (b.issuer, b.issuer + "/token", [b.issuer], [b.issuer, b.issuer + "/token"]):
        ok = post(b, "/introspect", assertion(b, aud=aud), token=tokens["access_token"])
        assert ok.status_code == 200, (aud, ok.text)
    for aud in ([b.issuer, "https://other.example"], "https://other.example", [], None):
        refused = post(b, "/introspect", assertion(b, aud=aud), token=tokens["access_token"])
        assert refused.json()["error"] == "invalid_client", (aud, refused.text)


def test_an_assertion_lives_five_minutes_at_most(jwt_broker):
    b = jwt_broker
    _, tokens = login(b, "rp-jwt")
    now = int(time.time())
    ok = post(b, "/introspect", assertion(b, iat=now, exp=now + 300), token=tokens["access_token"])
    assert ok.status_code == 200
    for claims in ({"iat": now, "exp": now + 301}, {"iat": now, "exp": now + 10 * 365 * 86400},
                   {"iat": None, "exp": now + 3600}):
        refused = post(b, "/introspect", assertion(b, **claims), token=tokens["access_token"])
        assert refused.json()["error"] == "invalid_client", (claims, refused.text)


def test_introspection_agrees_with_userinfo_after_logout_revocation_and_withdrawal(jwt_broker):
    b = jwt_broker
    basic = b.rp()

    def introspect(token: str) -> dict:
        return basic.endpoint("/introspect", token=token).json()

    def agree(tokens: dict, active: bool) -> None:
        assert introspect(tokens["access_token"])["active"] is active
        assert (userinfo(basic, tokens["access_token"]) == 200) is active
        assert introspect(tokens["refresh_token"])["active"] is active

    # RP-initiated logout ends the session: every token of it is inactive.
    with b.browser() as browser:
        tokens = basic.token(basic.login(browser)).json()
        agree(tokens, True)
        id_token = tokens["id_token"]
        bye = browser.get("/logout", params={"id_token_hint": id_token})
        assert bye.status_code == 200
    agree(tokens, False)

    # The client revokes its refresh token: the family's access tokens go with it.
    _, tokens = login(b)
    assert basic.endpoint("/revoke", token=tokens["refresh_token"]).status_code == 200
    agree(tokens, False)

    # The authorization source withdraws: the refresh finds out and ends it all.
    _, tokens = login(b)
    b.source.withdraw("u-anna")
    try:
        assert refresh(basic, tokens["refresh_token"]).json()["error"] == "invalid_grant"
        agree(tokens, False)
    finally:
        from tests.support.fakes import default_users

        b.source.users = {u.id: u for u in default_users(("rp-basic", "rp-post", "rp-jwt",
                                                          "rp-flat"))}


def test_a_rotated_refresh_token_is_not_active(jwt_broker):
    b = jwt_broker
    rp, tokens = login(b)
    rotated = refresh(rp, tokens["refresh_token"]).json()
    assert rp.endpoint("/introspect", token=tokens["refresh_token"]).json() == {"active": False}
    assert rp.endpoint("/introspect", token=rotated["refresh_token"]).json()["active"] is True
    # The access token of the first generation lives out its own lifetime.
    assert rp.endpoint("/introspect", token=tokens["access_token"]).json()["active"] is True


def test_introspection_answers_in_full_for_access_and_refresh_tokens(jwt_broker):
    """RFC 7662 2.2 as the broker fills it: the same facts the token itself stands for."""
    b = jwt_broker
    basic = b.rp()
    with b.browser() as browser:
        tokens = basic.token(basic.login(browser, scope="openid profile")).json()
    claims = basic.verify(tokens["id_token"])
    access = basic.endpoint("/introspect", token=tokens["access_token"]).json()
    assert access == {
        "active": True, "client_id": "rp-basic", "token_type": "Bearer",
        "scope": "openid profile", "sub": claims["sub"], "iss": b.issuer, "aud": "rp-basic",
        "iat": access["iat"], "exp": access["iat"] + tokens["expires_in"],
        "auth_time": claims["auth_time"], "sid": claims["sid"]}
    assert abs(access["iat"] - claims["iat"]) <= 1
    refresh_info = basic.endpoint("/introspect", token=tokens["refresh_token"],
                                  token_type_hint="refresh_token").json()
    assert refresh_info["token_type"] == "refresh_token" and refresh_info["active"] is True
    assert refresh_info["exp"] - refresh_info["iat"] == 8 * 3600  # the family's whole life
    assert refresh_info["scope"] == "openid profile" and refresh_info["sid"] == claims["sid"]

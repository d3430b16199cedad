"""Every token ends when it should, alone or with its family, on a clock the test moves:
an access token after its own lifetime (its family lives on), a family after
refresh_token_ttl, one access token revoked by the client (RFC 7009), and the grace
window to the second."""

from __future__ import annotations

import json

import redis as redis_sync

from tests.grants.grants_support import login, refresh, userinfo
from tests.support.brokers import running_broker


def introspect(rp, token: str) -> bool:
    return rp.endpoint("/introspect", token=token).json()["active"]


def test_an_access_token_ends_after_its_lifetime_and_its_family_lives_on(store_url, tmp_path,
                                                                         clock):
    with running_broker(store_url, tmp_path, clock=clock) as b:
        rp, tokens = login(b)
        clock.advance(599)
        assert userinfo(rp, tokens["access_token"]) == 200
        assert introspect(rp, tokens["access_token"])
        clock.advance(1)  # access_token_ttl: 600 s
        assert userinfo(rp, tokens["access_token"]) == 401
        assert not introspect(rp, tokens["access_token"])
        fresh = refresh(rp, tokens["refresh_token"])
        assert fresh.status_code == 200
        assert userinfo(rp, fresh.json()["access_token"]) == 200


def test_a_family_ends_after_refresh_token_ttl_however_often_it_rotates(store_url, tmp_path,
                                                                        clock):
    with running_broker(store_url, tmp_path, clock=clock) as b:
        rp, tokens = login(b)
        for _ in range(7):
            clock.advance(3600)
            tokens = refresh(rp, tokens["refresh_token"]).json()
        clock.advance(3599)  # 8 h less a second after the login
        last = refresh(rp, tokens["refresh_token"])
        assert last.status_code == 200
        # Rotation never extends the family: its access token ends with it, early.
        assert last.json()["expires_in"] == 1
        clock.advance(1)
        assert refresh(rp, last.json()["refresh_token"]).json()["error"] == "invalid_grant"
        assert userinfo(rp, last.json()["access_token"]) == 401


def test_revoking_one_access_token_leaves_the_rest_of_the_grant(store_url, tmp_path):
    with running_broker(store_url, tmp_path) as b:
        rp, tokens = login(b)
        assert rp.endpoint("/revoke", token=tokens["access_token"],
                           token_type_hint="access_token").status_code == 200
        assert userinfo(rp, tokens["access_token"]) == 401
        assert not introspect(rp, tokens["access_token"])
        assert refresh(rp, tokens["refresh_token"]).status_code == 200


def test_the_grace_window_to_the_second(store_url, tmp_path, clock):
    with running_broker(store_url, tmp_path, clock=clock, tokens={"refresh_grace": 1}) as b:
        rp, first = login(b)
        refresh(rp, first["refresh_token"])
        clock.advance(1)  # exactly refresh_grace later: still a retry
        assert refresh(rp, first["refresh_token"]).status_code == 200
        clock.advance(1)  # a second more: a reuse
        assert refresh(rp, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_revocation_is_remembered_as_long_as_its_family_and_says_why(redis, tmp_path, clock):
    with running_broker(redis, tmp_path, clock=clock) as b:
        rp, first = login(b)
        clock.advance(3600)
        refresh(rp, first["refresh_token"])  # a rotation, an hour into an 8 h family
        clock.advance(60)
        refresh(rp, first["refresh_token"])  # a reuse, a minute later
        family = first["refresh_token"].split(".")[0]
        raw = redis_sync.Redis.from_url(redis)
        key = f"{b.broker.settings.store.prefix}fam-revoked:{{{family}}}"
        record = json.loads(raw.get(key))
        assert record == {"at": int(clock()), "reason": "refresh_reuse"}
        assert 7 * 3600 - 120 <= raw.ttl(key) <= 7 * 3600 - 60  # as long as the family
        state = f"{b.broker.settings.store.prefix}fam-state:{{{family}}}"
        assert 7 * 3600 - 60 <= raw.ttl(state) <= 7 * 3600  # rotation set it to what was left


def test_a_reuse_revokes_the_grant_not_the_person_s_session_and_the_audit_says_why(
        store_url, tmp_path, clock):
    """Theft of one RP's refresh token ends that grant (RFC 9700 4.14.2); the person's SSO
    session is not ended for it. A withdrawal does end it. The audit log says which grant
    ended and why."""
    with running_broker(store_url, tmp_path, clock=clock) as b:
        rp = b.rp()
        with b.browser() as browser:
            tokens = rp.token(rp.login(browser)).json()
            refresh(rp, tokens["refresh_token"])
            clock.advance(60)
            assert refresh(rp, tokens["refresh_token"]).json()["error"] == "invalid_grant"
            again = rp.callback(rp.authorize(browser, prompt="none"))
            assert "code" in again  # the session lives on
            second = rp.token(again["code"]).json()
            b.source.withdraw("u-anna")
            assert refresh(rp, second["refresh_token"]).json()["error"] == "invalid_grant"
            assert rp.callback(rp.authorize(browser, prompt="none"))["error"] == "login_required"
        events = [json.loads(line) for line in
                  (tmp_path / "audit.log").read_text().splitlines() if line.strip()]
        revoked = [e for e in events if e.get("audit") == "grant_revoked"]
        assert [e["reason"] for e in revoked] == ["refresh_reuse", "withdrawn"]
        assert revoked[0]["family"] == tokens["refresh_token"].split(".")[0]
        assert revoked[1]["family"] == second["refresh_token"].split(".")[0]

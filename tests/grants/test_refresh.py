"""Refresh rotation as RPs, second tabs and thieves exercise it: one rotation per use,
the same answer to a retry inside the grace window, a reuse punished for the family's
whole life, and races that really happen (the store holds them at the atomic step)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.grants.grants_support import generation, login, refresh, userinfo
from tests.support.brokers import Gate, running_broker
from tests.support.rp import FakeRP


def test_a_retry_inside_the_grace_window_gets_the_very_same_response(store_url, tmp_path, clock):
    with running_broker(store_url, tmp_path, clock=clock, tokens={"refresh_grace": 10}) as b:
        rp, first = login(b)
        rotated = refresh(rp, first["refresh_token"])
        assert rotated.status_code == 200
        clock.advance(9)
        again = refresh(rp, first["refresh_token"])
        assert again.status_code == 200
        # Not a second chain: every byte of the first rotation's answer, ID token included.
        assert again.json() == rotated.json()
        assert generation(rotated.json()) == 1
        # The chain goes on from there, once.
        third = refresh(rp, rotated.json()["refresh_token"]).json()
        assert third["refresh_token"] != rotated.json()["refresh_token"]
        assert generation(third) == 2


def test_grace_answers_of_es256_and_jwt_access_tokens_carry_the_same_claims(store_url, tmp_path, clock):
    with running_broker(store_url, tmp_path, clock=clock) as b:
        rp, first = login(b, "rp-jwt")
        a = refresh(rp, first["refresh_token"]).json()
        clock.advance(1)
        b2 = refresh(rp, first["refresh_token"]).json()
        assert a["refresh_token"] == b2["refresh_token"]
        # ECDSA signatures differ each time; what they sign does not (only at_hash, the
        # hash of the re-signed access token, follows its token).
        first_id, second_id = rp.verify(a["id_token"]), rp.verify(b2["id_token"])
        assert first_id.pop("at_hash") != second_id.pop("at_hash")
        assert first_id == second_id
        assert rp.verify(a["access_token"]) == rp.verify(b2["access_token"])
        assert userinfo(rp, b2["access_token"]) == 200


def test_reuse_after_the_grace_window_revokes_the_family_and_its_access_tokens(store_url, tmp_path, clock):
    with running_broker(store_url, tmp_path, clock=clock, tokens={"refresh_grace": 10}) as b:
        rp, first = login(b)
        second = refresh(rp, first["refresh_token"]).json()
        clock.advance(11)
        reuse = refresh(rp, first["refresh_token"])
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        assert refresh(rp, second["refresh_token"]).json()["error"] == "invalid_grant"
        assert userinfo(rp, second["access_token"]) == 401
        assert userinfo(rp, first["access_token"]) == 401


def test_reuse_is_detected_for_the_whole_life_of_the_family(store_url, tmp_path, clock):
    """A thief who rotated a stolen token first is found out however long the rightful
    client waits before it uses its (now spent) token: 7 h here, of an 8 h family."""
    with running_broker(store_url, tmp_path, clock=clock) as b:
        rp, first = login(b)
        thief = refresh(rp, first["refresh_token"]).json()
        clock.advance(3 * 3600)
        thief = refresh(rp, thief["refresh_token"]).json()
        clock.advance(4 * 3600)
        rightful = refresh(rp, first["refresh_token"])
        assert rightful.json()["error"] == "invalid_grant"
        # The thief's live chain is dead too.
        assert refresh(rp, thief["refresh_token"]).json()["error"] == "invalid_grant"
        assert userinfo(rp, thief["access_token"]) == 401


def test_a_made_up_token_with_a_known_family_id_revokes_nothing(store_url, tmp_path):
    """Family ids travel in access tokens; knowing one must not let anyone end a grant."""
    with running_broker(store_url, tmp_path) as b:
        rp, first = login(b)
        family = first["refresh_token"].split(".")[0]
        for forged in (f"{family}.0.{'A' * 43}", f"{family}.5.{'A' * 43}", f"{family}.x.y"):
            assert refresh(rp, forged).json()["error"] == "invalid_grant"
        assert refresh(rp, first["refresh_token"]).status_code == 200


def test_eight_concurrent_refreshes_make_one_rotation_and_one_answer(store_url, tmp_path):
    with running_broker(store_url, tmp_path, wrap=lambda s: Gate(s, "compare_and_put", 8)) as b:
        rp, first = login(b)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: refresh(rp, first["refresh_token"]), range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        bodies = [a.json() for a in answers]
        assert all(body == bodies[0] for body in bodies)
        assert generation(bodies[0]) == 1  # one rotation: a second would have made gen 2
        assert userinfo(rp, bodies[0]["access_token"]) == 200


def test_concurrent_refreshes_without_a_grace_window_are_a_reuse(store_url, tmp_path):
    with running_broker(store_url, tmp_path, tokens={"refresh_grace": 0},
                        wrap=lambda s: Gate(s, "compare_and_put", 8)) as b:
        rp, first = login(b)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: refresh(rp, first["refresh_token"]), range(8)))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] + [400] * 7
        won = next(a.json() for a in answers if a.status_code == 200)
        assert generation(won) == 1
        # The losers' reuse revoked the family: the winner's tokens are dead as well.
        assert userinfo(rp, won["access_token"]) == 401
        assert refresh(rp, won["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_client_without_refresh_tokens_gets_none(store_url, tmp_path):
    no_refresh = {"client_id": "rp-norefresh", "client_name": "Utan förnyelse",
                  "client_secret": "n" * 32, "redirect_uris": ["https://rp.example/cb"],
                  "refresh_tokens": False}
    with running_broker(store_url, tmp_path, extra_clients=[no_refresh]) as b:
        rp = FakeRP(b.issuer, "rp-norefresh", "https://rp.example/cb", "n" * 32)
        with b.browser() as browser:
            tokens = rp.token(rp.login(browser)).json()
        assert "refresh_token" not in tokens and tokens["access_token"]
        # Even a genuine refresh token of another client's kind is refused for it.
        _, other = login(b)
        refused = refresh(rp, other["refresh_token"])
        assert refused.status_code == 400
        assert refused.json()["error"] in ("unauthorized_client", "invalid_grant")

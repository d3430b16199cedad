"""Single sign-on across Lifecare and MCSS, and logout that reaches both."""

from __future__ import annotations

import time

from sso_support import wait_until


def test_second_client_signs_in_without_a_new_upstream_login(sso):
    with sso.browser() as browser:
        before = sso.logins
        first = sso.visit(browser, sso.lifecare)
        assert "Inloggad i Lifecare" in first.text, first.text[:300]
        assert sso.logins == before + 1
        lc = sso.lifecare.last.claims
        time.sleep(1.1)  # a reused session must not look like a new login
        second = sso.visit(browser, sso.mcss)
        assert "Inloggad i MCSS" in second.text, second.text[:300]
        assert sso.logins == before + 1, "MCSS caused a second upstream login"
        mc = sso.mcss.last.claims
    assert mc["auth_time"] == lc["auth_time"]
    assert mc["sid"] == lc["sid"]
    assert lc["sub"] == "u-anna" and mc["sub"] != lc["sub"]  # MCSS has pairwise subjects


def test_logout_at_one_rp_reaches_both_backchannels_and_ends_the_session(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        sso.visit(browser, mcss)
        sid = lifecare.last.claims["sid"]
        lc_refresh = lifecare.last.tokens["refresh_token"]
        mc_refresh = mcss.last.tokens["refresh_token"]
        assert sso.refresh(lifecare, lc_refresh).status_code == 200  # works before logout
        lc_refresh = lifecare.logins[-1].tokens["refresh_token"]

        page = browser.get(lifecare.url + "/logout")
        assert str(page.url).startswith(lifecare.bye_uri), page.url
        assert "Utloggad från Lifecare" in page.text and "bye-lifecare" in page.text

        wait_until(lambda: lifecare.valid_logouts(sid) and mcss.valid_logouts(sid),
                   what="a verified logout_token at both RPs")
        assert [r.problems for r in lifecare.received + mcss.received if not r.ok] == []
        token = mcss.valid_logouts(sid)[-1]
        assert token.header["alg"] == "ES256" and token.claims["sub"] == mcss.last.claims["sub"]

        # The session is gone: prompt=none now needs a login, for both RPs.
        again = sso.visit(browser, mcss, prompt="none")
        assert "Fel: login_required" in again.text
    # Refresh tokens issued under the ended session stop working.
    for rp, token in ((lifecare, lc_refresh), (mcss, mc_refresh)):
        resp = sso.refresh(rp, token)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant", resp.text


def test_logout_without_a_valid_return_address_says_du_ar_utloggad(sso):
    lifecare = sso.lifecare
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        hint = lifecare.last.tokens["id_token"]
        sid = lifecare.last.claims["sid"]
        # An unregistered return address: never redirected to, but the person is logged out.
        bad = browser.get(sso.issuer + "/logout", params={
            "id_token_hint": hint, "post_logout_redirect_uri": lifecare.url + "/bye?x=1"},
            follow_redirects=False)
        assert bad.status_code == 400 and "location" not in bad.headers
        assert "Du är utloggad" in bad.text
        wait_until(lambda: lifecare.valid_logouts(sid), what="back-channel logout")
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text

        sso.visit(browser, lifecare)
        plain = browser.get(sso.issuer + "/logout",
                            params={"id_token_hint": lifecare.last.tokens["id_token"]})
        assert plain.status_code == 200 and "Du är utloggad" in plain.text
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text


def test_a_dead_backchannel_endpoint_does_not_hold_up_logout(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    dead = sso.dead_rp()
    with sso.browser() as browser:
        # The hanging client joins the session first, so a sequential sender would
        # reach the live RPs only after it gave up.
        browser.follow_redirects, browser.base_url = False, sso.issuer
        dead.login(browser)
        browser.follow_redirects = True
        sso.visit(browser, lifecare)
        sso.visit(browser, mcss)
        sid = mcss.last.claims["sid"]

        started = time.monotonic()
        page = browser.get(lifecare.url + "/logout")
        took = time.monotonic() - started
        assert "Utloggad från Lifecare" in page.text
        assert took < 1.0, f"logout page took {took:.2f} s: it waited for the back-channel"

        # The next request of the same browser is not held up either.
        started = time.monotonic()
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text
        assert time.monotonic() - started < 1.0

        # The live RPs hear about it at once, while the dead one is still being tried.
        wait_until(lambda: lifecare.valid_logouts(sid) and mcss.valid_logouts(sid),
                   timeout=1.2, what="the live RPs' logout tokens")


def test_a_backchannel_refused_once_is_delivered_on_retry(sso):
    lifecare = sso.lifecare
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        sid = lifecare.last.claims["sid"]
        lifecare.refuse = 1
        try:
            browser.get(lifecare.url + "/logout")
            wait_until(lambda: lifecare.valid_logouts(sid), what="the logout_token after a 503")
        finally:
            lifecare.refuse = 0
    assert lifecare.refused == 1 and len(lifecare.valid_logouts(sid)) == 1

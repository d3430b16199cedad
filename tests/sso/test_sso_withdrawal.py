"""At every refresh the authorization source is asked again; a withdrawn or expired
authorization ends the refresh, the SSO session and the RPs' sessions (back-channel)."""

from __future__ import annotations

from sso_support import expire, wait_until


def _logged_in_both(sso, browser):
    sso.visit(browser, sso.lifecare)
    sso.visit(browser, sso.mcss)
    return sso.lifecare.last, sso.mcss.last


def test_withdrawn_authorization_ends_refresh_session_and_backchannels(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        lc, mc = _logged_in_both(sso, browser)
        sid = lc.claims["sid"]
        ok = sso.refresh(lifecare, lc.tokens["refresh_token"])
        assert ok.status_code == 200, ok.text

        sso.source.withdraw("u-anna")
        gone = sso.refresh(lifecare, ok.json()["refresh_token"])
        assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
        wait_until(lambda: lifecare.valid_logouts(sid) and mcss.valid_logouts(sid),
                   what="back-channel logout after withdrawal")
        assert "Fel: login_required" in sso.visit(browser, mcss, prompt="none").text
    # MCSS's refresh token belonged to the same session: it stops too.
    assert sso.refresh(mcss, mc.tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_authorization_ends_the_session_too(sso):
    lifecare = sso.lifecare
    with sso.browser() as browser:
        lc, _ = _logged_in_both(sso, browser)
        expire(sso.source, "u-anna")
        assert sso.refresh(lifecare, lc.tokens["refresh_token"]).json()["error"] == "invalid_grant"
        wait_until(lambda: lifecare.valid_logouts(lc.claims["sid"]), what="back-channel logout")
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text


def test_an_unavailable_source_is_a_retryable_503_that_keeps_grant_and_session(sso):
    """An outage is not a revocation: no token, but nothing ends either; once the source
    answers again the very same refresh token works."""
    lifecare = sso.lifecare
    with sso.browser() as browser:
        lc, _ = _logged_in_both(sso, browser)
        sso.source.down = True
        for _ in range(3):
            refused = sso.refresh(lifecare, lc.tokens["refresh_token"])
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "temporarily_unavailable"
            assert int(refused.headers["retry-after"]) > 0
        sso.source.down = False
        assert sso.refresh(lifecare, lc.tokens["refresh_token"]).status_code == 200
        assert "Inloggad i Lifecare" in sso.visit(browser, lifecare, prompt="none").text
        assert not lifecare.valid_logouts(lc.claims["sid"])

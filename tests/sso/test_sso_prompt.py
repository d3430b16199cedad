"""prompt, max_age and id_token_hint against a live SSO session."""

from __future__ import annotations

import time

from sso_support import DORA_PNR, wait_until


def test_prompt_none_before_during_and_after_logout(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        assert "Fel: login_required" in sso.visit(browser, mcss, prompt="none").text
        sso.visit(browser, lifecare)
        logins = sso.logins
        silent = sso.visit(browser, mcss, prompt="none")
        assert "Inloggad i MCSS" in silent.text and sso.logins == logins
        browser.get(lifecare.url + "/logout")
        assert "Fel: login_required" in sso.visit(browser, mcss, prompt="none").text
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text


def test_prompt_login_forces_a_new_upstream_login_in_the_same_session(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        first = lifecare.last.claims
        time.sleep(1.1)
        logins = sso.logins
        sso.visit(browser, mcss, prompt="login")
        assert sso.logins == logins + 1
        again = mcss.last.claims
        assert again["auth_time"] > first["auth_time"]
        # Still one session: a logout reaches Lifecare too, which joined before the re-login.
        assert again["sid"] == first["sid"]
        browser.get(mcss.url + "/logout")
        wait_until(lambda: lifecare.valid_logouts(first["sid"]) and mcss.valid_logouts(first["sid"]),
                   what="logout at both RPs after a re-login")


def test_max_age(sso):
    lifecare = sso.lifecare
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        t0 = lifecare.last.claims["auth_time"]
        logins = sso.logins
        sso.visit(browser, lifecare, max_age="10000")
        assert sso.logins == logins and lifecare.last.claims["auth_time"] == t0

        time.sleep(2.1)
        sso.visit(browser, lifecare, max_age="1")
        assert sso.logins == logins + 1, "max_age=1 did not force a new login"
        t1 = lifecare.last.claims["auth_time"]
        assert t1 > t0

        sso.visit(browser, lifecare, max_age="0")  # at once: 0 means "authenticate now"
        assert sso.logins == logins + 2, "max_age=0 did not force a new login"
        assert lifecare.last.claims["auth_time"] >= t1
        # prompt=none cannot satisfy max_age=0 without interaction.
        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none", max_age="0").text


def test_id_token_hint_must_match_the_session_user(sso):
    lifecare = sso.lifecare
    with sso.browser() as dora, sso.browser() as anna:
        picked = sso.pick(dora, sso.visit(dora, lifecare, login_hint=DORA_PNR), "d-lc-chef")
        assert "Inloggad i Lifecare" in picked.text
        sso.visit(anna, lifecare)
        anna_hint = lifecare.last.tokens["id_token"]
        anna_sub = lifecare.last.claims["sub"]

        # The same person's hint with prompt=none: silent, same sub.
        silent = sso.visit(anna, lifecare, prompt="none", id_token_hint=anna_hint)
        assert "Inloggad i Lifecare" in silent.text and lifecare.last.claims["sub"] == anna_sub

        # Anna's hint in Dora's browser: prompt=none must not answer with Dora.
        wrong = sso.visit(dora, lifecare, prompt="none", id_token_hint=anna_hint)
        assert "Fel: login_required" in wrong.text

        # Without prompt=none it is a fresh login; Anna logs in and Dora's session ends
        # everywhere (a shared workstation changes hands).
        dora_sid = next(s for s, sub in lifecare.sids.items() if sub == "u-dora")
        logins = sso.logins
        fresh = sso.visit(dora, lifecare, id_token_hint=anna_hint)
        assert "Inloggad i Lifecare" in fresh.text and sso.logins == logins + 1
        assert lifecare.last.claims["sub"] == anna_sub
        assert lifecare.last.claims["sid"] != dora_sid
        wait_until(lambda: lifecare.valid_logouts(dora_sid), what="Dora's back-channel logout")

"""The role and unit chosen in one system carry over to the next one when valid there;
otherwise the picker asks again (never silently a different role)."""

from __future__ import annotations

from sso_support import DORA_PNR, ERIK_PNR

from tests.support.fakes import default_users

BERTIL_PNR = default_users(())[1].personal_identity_number


def test_chosen_role_and_unit_carry_over_to_the_second_client(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        picker = sso.visit(browser, lifecare, login_hint=BERTIL_PNR)
        assert "Inloggad" in sso.pick(browser, picker, "a-b-2").text
        logins = sso.logins
        second = sso.visit(browser, mcss)
        assert "Inloggad i MCSS" in second.text, "the picker asked again for a valid choice"
        assert mcss.last.claims["commissionHsaId"] == "a-b-2"
        assert sso.logins == logins
        # prompt=select_account shows the picker again, still without a new login.
        switch = sso.visit(browser, mcss, prompt="select_account")
        assert "Inloggad" in sso.pick(browser, switch, "a-b-1").text
        assert mcss.last.claims["commissionHsaId"] == "a-b-1" and sso.logins == logins


def test_same_role_and_unit_under_another_assignment_id_carries_over(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        picker = sso.visit(browser, lifecare, login_hint=DORA_PNR)
        assert "Inloggad" in sso.pick(browser, picker, "d-lc-hl").text
        second = sso.visit(browser, mcss)
        assert "Inloggad i MCSS" in second.text, second.text[:300]
        assert mcss.last.claims["commissionHsaId"] == "d-mc-hl"


def test_a_choice_not_valid_for_the_second_client_asks_again(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        picker = sso.visit(browser, lifecare, login_hint=ERIK_PNR)
        assert "Inloggad" in sso.pick(browser, picker, "e-lc").text
        logins = sso.logins
        # Silently: the broker may not choose for him.
        assert "Fel: interaction_required" in sso.visit(browser, mcss, prompt="none").text
        again = sso.visit(browser, mcss)
        assert "Välj roll och enhet" in again.text and "e-lc" not in again.text
        assert "Inloggad" in sso.pick(browser, again, "e-mc").text
        assert mcss.last.claims["commissionHsaId"] == "e-mc" and sso.logins == logins

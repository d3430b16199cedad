"""A request that names its subject (id_token_hint, a `sub` value in `claims`) is answered
only for that person: another person's session is not used (OIDC Core 3.1.2.2, 5.5.1)."""

from __future__ import annotations

import json

from tests.oidc.conftest import ERIK


def id_token(stack, rp, browser, pnr: str) -> str:
    code = rp.login(browser, login_hint=pnr, prompt="login")
    return rp.token(code).json()["id_token"]


def test_prompt_none_with_another_subjects_hint_is_login_required(stack):
    for client_id in ("required", "pairwise"):
        rp = stack.rp(client_id)
        with stack.browser() as erik_browser:
            erik = id_token(stack, rp, erik_browser, ERIK)
        with stack.browser() as browser:
            anna = id_token(stack, rp, browser, "199001012385")  # Anna's session here
            result = rp.callback(rp.authorize(browser, prompt="none", id_token_hint=erik))
            assert result["error"] == "login_required", (client_id, result)
            # Her own hint is answered from her session.
            same = rp.callback(rp.authorize(browser, prompt="none", id_token_hint=anna))
            assert "code" in same, (client_id, same)


def test_claims_sub_value_is_honoured(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        rp.login(browser, prompt="login")  # Anna
        wanted = {"id_token": {"sub": {"value": "u-erik"}}}
        result = rp.callback(rp.authorize(browser, prompt="none", claims=json.dumps(wanted)))
        assert result["error"] == "login_required"
        wanted = {"id_token": {"sub": {"value": "u-anna"}}}
        result = rp.callback(rp.authorize(browser, prompt="none", claims=json.dumps(wanted)))
        assert "code" in result


def test_a_fresh_login_by_someone_else_gets_no_code(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        erik = id_token(stack, rp, browser, ERIK)
    with stack.browser() as browser:
        # The RP expects Erik; Anna logs in on this browser: no token for Anna.
        resp = rp.authorize(browser, id_token_hint=erik, login_hint="199001012385")
        result = rp.callback(resp)
    assert result["error"] == "login_required" and "code" not in result


def test_hints_that_are_not_ours_or_not_for_this_client_are_refused(stack):
    rp, other = stack.rp("required"), stack.rp("optional")
    with stack.browser() as browser:
        for_other = other.token(other.login(browser, prompt="login")).json()["id_token"]
        result = rp.callback(rp.authorize(browser, id_token_hint=for_other))
        assert result["error"] == "invalid_request" and "another client" in result["error_description"]
        result = rp.callback(rp.authorize(browser, id_token_hint="e30.e30.sig"))
        assert result["error"] == "invalid_request"


def test_another_subjects_session_means_a_fresh_login_as_the_one_named(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        erik = id_token(stack, rp, browser, ERIK)
    with stack.browser() as browser:
        id_token(stack, rp, browser, "199001012385")  # Anna's session in this browser
        before = stack.connector.logins
        code = rp.login(browser, id_token_hint=erik, login_hint=ERIK)
        assert stack.connector.logins == before + 1  # her session was not used
    assert rp.verify(rp.token(code).json()["id_token"])["sub"] == "u-erik"

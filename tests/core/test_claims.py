"""What relying parties receive: claims by scope and `claims` request, essential claims,
preselection, flat strings, and access tokens ending with the session."""

import json
import re

from tests.support.rp import FakeRP


def bearer(rp: FakeRP, token: str):
    return rp.http.get("/userinfo", headers={"Authorization": "Bearer " + token})


def test_essential_claim_that_cannot_be_delivered_fails_the_login(broker_server):
    rp = broker_server.rp("rp-post")  # its registration covers `email`
    claims = {"userinfo": {"email": {"essential": True}}}
    with broker_server.browser() as browser:
        # Bertil has no e-mail address in the authorization source.
        picker = rp.authorize(browser, login_hint="198505152384", claims=json.dumps(claims))
        action = re.search(r'action="(/login/[^"]+/select)"', picker.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', picker.text).group(1)
        result = rp.callback(browser.post(action, data={"csrf": csrf, "assignment": "a-b-1"}))
    assert result["error"] == "unmet_authentication_requirements"
    assert "email" in result["error_description"]
    # Anna has one: the same request succeeds and delivers it.
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, claims=json.dumps(claims), prompt="login")).json()
    assert bearer(rp, tokens["access_token"]).json()["email"] == "anna@example.se"


def test_claims_request_value_preselects_the_assignment(broker_server):
    rp = broker_server.rp()
    wanted = {"id_token": {"healthCareUnitHsaId": {"value": "U2"}}}
    with broker_server.browser() as browser:
        code = rp.login(browser, login_hint="198505152384", claims=json.dumps(wanted))
    claims = rp.verify(rp.token(code).json()["id_token"])
    assert claims["commissionHsaId"] == "a-b-2" and claims["unitId"] == "U2"


def test_identity_claims_only_when_asked(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid", prompt="login")).json()
    info = bearer(rp, tokens["access_token"]).json()
    claims = rp.verify(tokens["id_token"])
    for released in (info, claims):
        assert "https://id.oidc.se/claim/personalIdentityNumber" not in released
        assert "given_name" not in released and "assignments" not in released
        assert "commissionName" not in released  # the role too: scope `assignments`
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid assignments", prompt="login")).json()
    assert rp.verify(tokens["id_token"])["commissionName"] == "Sjukskoterska"


def test_flat_claims_for_clients_that_need_strings(broker_server):
    rp = broker_server.rp("rp-flat")
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid assignments", prompt="login")).json()
    info = bearer(rp, tokens["access_token"]).json()
    assert info["assignments"] == "sjukskoterska@SE2321000016-ABCD"
    assert isinstance(rp.verify(tokens["id_token"])["amr"], list)  # protocol claims unchanged


def test_access_tokens_end_with_the_session(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, prompt="login")).json()
        assert bearer(rp, tokens["access_token"]).status_code == 200
        out = browser.get("/logout", params={"id_token_hint": tokens["id_token"]})
        assert out.status_code == 200
    assert bearer(rp, tokens["access_token"]).status_code == 401

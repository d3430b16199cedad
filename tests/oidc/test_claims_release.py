"""Claims as requested, within the client's registration: the ID token carries what the
scope and `claims` ask for; a `claims` request (or request object) never reaches past the
client's registered scopes; `email_verified` comes with `email`, from the source."""

from __future__ import annotations

import json
from dataclasses import replace

from joserfc import jwt

from broker.oidc.claims import ASSIGNMENT_CLAIMS, PIN

EVERYTHING = {name: {"essential": True} for name in
              (PIN, "name", "given_name", "family_name", "email", "email_verified",
               "assignments", "https://id.oidc.se/claim/deviceIp", *ASSIGNMENT_CLAIMS)}


def userinfo(rp, token: str) -> dict:
    resp = rp.http.get("/userinfo", headers={"Authorization": "Bearer " + token})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_scope_limited_client_gets_nothing_beyond_its_scopes(stack):
    rp = stack.rp("narrow")  # registered with scopes: [openid]
    claims = json.dumps({"id_token": EVERYTHING, "userinfo": EVERYTHING})
    scope = "openid profile email assignments https://id.oidc.se/scope/naturalPersonNumber"
    with stack.browser() as browser:
        tokens = rp.token(rp.login(browser, scope=scope, claims=claims)).json()
    assert tokens["scope"] == "openid"
    id_claims, info = rp.verify(tokens["id_token"]), userinfo(rp, tokens["access_token"])
    for released in (id_claims, info):
        assert not set(EVERYTHING) & set(released), released
        assert "199001012385" not in json.dumps(released)
    assert info["sub"] == id_claims["sub"] == "u-anna"


def test_a_request_object_cannot_reach_past_the_registration_either(stack):
    rp = stack.rp("jar")  # registered with the default scopes
    params = rp.params(scope="openid")
    body = {**params, "iss": "jar", "aud": stack.issuer,
            "claims": {"id_token": {PIN: {"essential": True}, "not-a-claim": None}}}
    request = jwt.encode({"alg": "ES256", "kid": stack.jar_key.kid}, body, stack.jar_key)
    with stack.browser() as browser:
        result = rp.callback(rp.follow(browser, browser.get(
            "/authorize", params={"client_id": "jar", "request": request})))
    id_claims = rp.verify(rp.token(result["code"]).json()["id_token"])
    assert id_claims[PIN] == "199001012385"  # naturalPersonNumber is among them
    assert "not-a-claim" not in id_claims


def test_id_token_carries_what_was_asked_for(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        bare = rp.token(rp.login(browser, scope="openid", prompt="login")).json()
    id_claims = rp.verify(bare["id_token"])
    assert not set(id_claims) & {*ASSIGNMENT_CLAIMS, "name", "email", PIN, "assignments"}
    assert not set(userinfo(rp, bare["access_token"])) - {"sub"}

    with stack.browser() as browser:
        full = rp.token(rp.login(browser, scope="openid assignments", prompt="login")).json()
    id_claims, info = rp.verify(full["id_token"]), userinfo(rp, full["access_token"])
    for released in (id_claims, info):
        assert released["commissionHsaId"] == "a-anna-1"
        assert released["healthCareUnitHsaId"] == "SE2321000016-ABCD"
        assert released["employeeHsaId"] == "SE2321000016-1234"
    assert "assignments" not in id_claims and info["assignments"][0]["id"] == "a-anna-1"

    one = json.dumps({"id_token": {"commissionHsaId": None}})
    with stack.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid", claims=one, prompt="login")).json()
    id_claims = rp.verify(tokens["id_token"])
    assert id_claims["commissionHsaId"] == "a-anna-1" and "commissionName" not in id_claims


def test_email_verified_comes_with_email_from_the_source(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid email", prompt="login")).json()
    info = userinfo(rp, tokens["access_token"])
    assert info["email"] == "anna@example.se" and info["email_verified"] is False
    anna = stack.source.users["u-anna"]
    stack.source.users["u-anna"] = replace(anna, email_verified=True)
    try:
        with stack.browser() as browser:
            tokens = rp.token(rp.login(browser, scope="openid email", prompt="login")).json()
    finally:
        stack.source.users["u-anna"] = anna
    info = userinfo(rp, tokens["access_token"])
    assert info["email"] == "anna@example.se" and info["email_verified"] is True
    # Erik has no address: neither claim.
    with stack.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid email", login_hint="198112189876",
                                   prompt="login")).json()
    assert not {"email", "email_verified"} & set(userinfo(rp, tokens["access_token"]))


def test_authentication_information_by_scope(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid authn_info", prompt="login")).json()
    assert rp.verify(tokens["id_token"])["https://id.oidc.se/claim/deviceIp"] == "192.0.2.7"

"""Request objects (RFC 9101, OIDC Core 6.1): parameters from inside when absent outside,
JAR-only requests, differing values refused, the object's state on every error."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey

from tests.oidc.conftest import REDIRECT


def signed(stack, claims: dict, key=None) -> str:
    key = key or stack.jar_key
    body = {"iss": "jar", "aud": stack.issuer, "client_id": "jar", **claims}
    return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key)


def inner_params(rp, **extra) -> dict:
    """A full authorization request as request object members."""
    p = rp.params()
    p.update(extra)
    return {k: v for k, v in p.items() if v is not None}


def answer(rp, browser, outer: dict):
    return rp.follow(browser, browser.get("/authorize", params=outer))


def test_redirect_uri_state_and_numeric_max_age_only_inside(stack):
    rp = stack.rp("jar")
    with stack.browser() as browser:
        rp.login(browser)  # an SSO session
        before = stack.connector.logins
        inner = inner_params(rp, max_age=0)
        outer = {"client_id": "jar", "response_type": "code", "scope": "openid",
                 "request": signed(stack, inner)}
        result = rp.callback(answer(rp, browser, outer))
    assert result["state"] == inner["state"]
    # max_age 0 as a JSON number is honoured: a fresh login, not the SSO session.
    assert stack.connector.logins == before + 1
    claims = rp.verify(rp.token(result["code"]).json()["id_token"])
    assert claims["nonce"] == inner["nonce"] and claims["auth_time"] >= int(time.time()) - 5


def test_jar_only_request(stack):
    rp = stack.rp("jar")
    inner = inner_params(rp, scope="openid profile")
    with stack.browser() as browser:
        result = rp.callback(answer(rp, browser, {"client_id": "jar",
                                                  "request": signed(stack, inner)}))
    assert result["state"] == inner["state"] and "code" in result
    claims = rp.verify(rp.token(result["code"]).json()["id_token"])
    assert claims["nonce"] == inner["nonce"]


def test_outer_values_that_differ_from_the_object_are_refused(stack):
    rp = stack.rp("jar")
    for name, outside in (("nonce", "other-nonce"), ("redirect_uri", "https://rp.example/other"),
                          ("max_age", "10"), ("prompt", "login"),
                          ("claims", '{"id_token":{"email":null}}'), ("scope", "openid email")):
        inner = inner_params(rp, max_age=60, prompt="consent",
                             claims={"id_token": {"given_name": None}})
        outer = {"client_id": "jar", "response_type": "code", "scope": "openid",
                 "redirect_uri": REDIRECT, "request": signed(stack, inner), name: outside}
        with stack.browser() as browser:
            resp = browser.get("/authorize", params=outer)
        if name == "redirect_uri":
            assert resp.status_code == 400 and "location" not in resp.headers  # never redirected
            continue
        result = rp.callback(resp)
        assert result["error"] == "invalid_request", (name, result)
        assert name in result["error_description"]
        assert result["state"] == inner["state"]  # the object's state
    # The same values outside and inside are fine, and so is `scope=openid` as the marker.
    inner = inner_params(rp, scope="openid profile", max_age=60)
    outer = {**{k: str(v) for k, v in inner.items()}, "scope": "openid",
             "request": signed(stack, inner)}
    with stack.browser() as browser:
        assert "code" in rp.callback(answer(rp, browser, outer))


def test_errors_after_the_object_carry_its_state(stack):
    rp = stack.rp("jar")
    inner = inner_params(rp, prompt="bogus")
    with stack.browser() as browser:
        result = rp.callback(browser.get("/authorize", params={
            "client_id": "jar", "request": signed(stack, inner)}))
    assert result["error"] == "invalid_request" and result["state"] == inner["state"]
    inner = inner_params(rp, max_age=True)
    with stack.browser() as browser:
        result = rp.callback(browser.get("/authorize", params={
            "client_id": "jar", "response_type": "code", "scope": "openid",
            "redirect_uri": REDIRECT, "request": signed(stack, inner)}))
    assert result["error"] == "invalid_request_object" and result["state"] == inner["state"]
    # A forged object: the error goes to the outer (registered) redirect URI with its state.
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    inner = inner_params(rp)
    with stack.browser() as browser:
        resp = browser.get("/authorize", params={
            "client_id": "jar", "response_type": "code", "scope": "openid",
            "redirect_uri": REDIRECT, "request": signed(stack, inner, stranger)})
    result = rp.callback(resp)
    assert result["error"] == "invalid_request_object" and result["state"] == inner["state"]
    assert "code" not in result


def test_an_unverifiable_jar_only_request_is_never_redirected(stack):
    rp = stack.rp("jar")
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    with stack.browser() as browser:
        resp = browser.get("/authorize", params={
            "client_id": "jar", "request": signed(stack, inner_params(rp), stranger)})
    assert resp.status_code == 400 and "location" not in resp.headers
    # Nor is a verified object whose redirect_uri is not registered.
    with stack.browser() as browser:
        resp = browser.get("/authorize", params={
            "client_id": "jar",
            "request": signed(stack, inner_params(rp, redirect_uri="https://evil.example/cb"))})
    assert resp.status_code == 400 and "location" not in resp.headers


def test_the_objects_state_and_response_mode_shape_the_error(stack):
    rp = stack.rp("jar")
    inner = inner_params(rp, response_mode="form_post", prompt="bogus")
    with stack.browser() as browser:
        page = browser.get("/authorize", params={"client_id": "jar",
                                                 "request": signed(stack, inner)})
    assert page.status_code == 200 and f'value="{inner["state"]}"' in page.text
    assert 'value="invalid_request"' in page.text

"""The authorization code flow end to end against a running broker with real Redis."""

import base64
import hashlib
import json

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt

from tests.conftest import REDIRECT


def at_hash(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16]).rstrip(b"=").decode()


@pytest.mark.parametrize("client_id", ["rp-basic", "rp-post", "rp-jwt"])
def test_code_flow_with_each_client_auth_method(broker_server, client_id):
    rp = broker_server.rp(client_id)
    with broker_server.browser() as browser:
        code = rp.login(browser)
    resp = rp.token(code)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"] and body["access_token"]
    header = json.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[0] + "=="))
    assert header["alg"] == ("ES256" if client_id == "rp-jwt" else "RS256")
    assert header["kid"]
    claims = rp.verify(body["id_token"])
    assert claims["iss"] == broker_server.issuer
    assert claims["aud"] == client_id
    assert claims["nonce"] == rp.last["nonce"]
    assert claims["exp"] - claims["iat"] <= 300
    assert claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    assert claims["sid"] and claims["auth_time"] <= claims["iat"]
    assert claims["at_hash"] == at_hash(body["access_token"])
    # sub is never the personal number; pairwise differs from public.
    assert "199001012385" not in json.dumps(claims)
    if client_id == "rp-post":
        assert claims["sub"] != "u-anna" and len(claims["sub"]) >= 40
    else:
        assert claims["sub"] == "u-anna"


def test_real_oidc_client_library_completes_the_flow(broker_server):
    """Authlib's client as a second RP: PKCE S256, state, token exchange, ID token check."""
    issuer = broker_server.issuer
    meta = httpx.get(issuer + "/.well-known/openid-configuration").json()
    client = OAuth2Client("rp-basic", "s" * 32, scope="openid profile", redirect_uri=REDIRECT,
                          code_challenge_method="S256")
    verifier = "v" * 64
    url, state = client.create_authorization_url(meta["authorization_endpoint"],
                                                 code_verifier=verifier, nonce="n-123")
    with httpx.Client(follow_redirects=False) as browser:
        resp = browser.get(url)
        while resp.headers.get("location", "").startswith("/login"):
            resp = browser.get(issuer + resp.headers["location"])
    assert f"state={state}" in resp.headers["location"]
    token = client.fetch_token(meta["token_endpoint"], authorization_response=resp.headers["location"],
                               code_verifier=verifier)
    jwks = httpx.get(meta["jwks_uri"]).json()
    from joserfc.jwk import KeySet

    claims = jwt.decode(token["id_token"], KeySet.import_key_set(jwks)).claims
    assert claims["nonce"] == "n-123" and claims["sub"] == "u-anna"
    info = client.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == "u-anna" and info["given_name"] == "Anna"


def test_authorize_by_post_and_form_post_response_mode(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        page = rp.authorize(browser, method="POST", response_mode="form_post")
    assert page.status_code == 200
    assert f'action="{REDIRECT}"' in page.text
    assert 'name="code"' in page.text and 'name="iss"' in page.text
    assert "<script>" not in page.text  # the submit script is an external file (CSP)


def test_pkce_is_required_s256_only(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        missing = rp.callback(rp.authorize(browser, code_challenge=None, code_challenge_method=None))
        plain = rp.callback(rp.authorize(browser, code_challenge_method="plain"))
        implicit_plain = rp.callback(rp.authorize(browser, code_challenge_method=None))
    for result in (missing, plain, implicit_plain):
        assert result["error"] == "invalid_request"
        assert result["state"] == rp.last["state"] or result["state"]
    assert "S256" in plain["error_description"]
    with broker_server.browser() as browser:
        code = rp.login(browser)
    wrong = rp.token(code, verifier="w" * 50)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    absent = rp.token(code, verifier=None)
    assert absent.status_code == 400 and absent.json()["error"] == "invalid_request"
    # The failed attempts changed nothing: the right verifier still redeems the code.
    assert rp.token(code).status_code == 200


def test_unregistered_redirect_uri_gets_a_page_never_a_redirect(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        for uri in ("https://evil.example/cb", REDIRECT + "?x=1", REDIRECT + "/", None):
            resp = browser.get("/authorize", params=rp.params(redirect_uri=uri))
            assert resp.status_code == 400, uri
            assert "location" not in resp.headers
            assert 'data-error="error_invalid_redirect"' in resp.text
        resp = browser.get("/authorize", params=rp.params(client_id="nobody"))
        assert resp.status_code == 400 and "location" not in resp.headers
        assert 'data-error="error_invalid_client"' in resp.text


def test_other_errors_redirect_with_error_description_and_state(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        token_type = rp.callback(rp.authorize(browser, response_type="token"))
        no_openid = rp.callback(rp.authorize(browser, scope="profile"))
        bad_prompt = rp.callback(rp.authorize(browser, prompt="none login"))
        bad_claims = rp.callback(rp.authorize(browser, claims="{not json"))
        request_uri = rp.callback(rp.authorize(browser, request_uri="https://rp.example/r"))
        unmet = rp.callback(rp.authorize(browser, claims=json.dumps(
            {"id_token": {"acr": {"essential": True, "values": ["http://id.elegnamnden.se/loa/1.0/loa4"]}}})))
    assert token_type["error"] == "unsupported_response_type"
    assert no_openid["error"] == "invalid_scope"
    assert bad_prompt["error"] == "invalid_request"
    assert bad_claims["error"] == "invalid_request"
    assert request_uri["error"] == "request_uri_not_supported"
    assert unmet["error"] == "unmet_authentication_requirements"
    for result in (token_type, no_openid, bad_prompt, bad_claims, unmet):
        assert result["state"] and result["error_description"]
        assert result["iss"] == broker_server.issuer


def test_code_is_single_use_and_replay_revokes_its_tokens(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        code = rp.login(browser)
    first = rp.token(code).json()
    replay = rp.token(code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # What the first redemption produced is now revoked.
    assert rp.http.get("/userinfo", headers={"Authorization": "Bearer " + first["access_token"]}).status_code == 401
    assert rp.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_code_is_bound_to_client_and_redirect_uri(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        code = rp.login(browser)
    other = broker_server.rp("rp-post")
    other.verifier = rp.verifier
    assert other.token(code).json()["error"] == "invalid_grant"
    assert rp.token(code, redirect_uri="https://rp.example/other").json()["error"] == "invalid_grant"
    assert rp.token(code).status_code == 200


def test_refresh_rotation_reuse_detection_and_grace(redis, tmp_path):
    from tests.support.brokers import FakeClock, running_broker

    clock = FakeClock()
    with running_broker(redis, tmp_path, clock=clock, tokens={"refresh_grace": 2}) as b:
        rp = b.rp()
        with b.browser() as browser:
            tokens = rp.token(rp.login(browser)).json()
        first_rt = tokens["refresh_token"]
        rotated = rp.refresh(first_rt)
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refresh_token"] != first_rt
        assert rp.verify(second["id_token"])["sub"] == "u-anna"
        # Inside the grace window a concurrent tab may use the spent token once more.
        assert rp.refresh(first_rt).status_code == 200
        clock.advance(3)
        # Outside it, reuse of a spent token revokes the whole family.
        reuse = rp.refresh(first_rt)
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        assert rp.refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
        assert rp.http.get("/userinfo", headers={"Authorization": "Bearer " + second["access_token"]}).status_code == 401


def test_refresh_token_of_another_client_is_refused(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser)).json()
    other = broker_server.rp("rp-post")
    assert other.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert rp.refresh(tokens["refresh_token"]).status_code == 200


def test_revocation_and_introspection(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser)).json()
    info = rp.endpoint("/introspect", token=tokens["access_token"]).json()
    assert info["active"] is True and info["client_id"] == "rp-basic" and info["sub"] == "u-anna"
    # Another client learns nothing about it.
    assert broker_server.rp("rp-post").endpoint("/introspect", token=tokens["access_token"]).json() == {"active": False}
    # Unauthenticated introspection is refused.
    assert httpx.post(broker_server.issuer + "/introspect", data={"token": tokens["access_token"]}).status_code == 401
    assert rp.endpoint("/revoke", token=tokens["refresh_token"]).status_code == 200
    assert rp.endpoint("/introspect", token=tokens["access_token"]).json() == {"active": False}
    assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    # Revoking an unknown token is not an error (RFC 7009).
    assert rp.endpoint("/revoke", token="nonsense").status_code == 200


def test_userinfo_plain_and_signed(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, scope="openid profile https://id.oidc.se/scope/naturalPersonNumber assignments")).json()
    for request in (
        lambda: rp.http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}),
        lambda: rp.http.post("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}),
        lambda: rp.http.post("/userinfo", data={"access_token": tokens["access_token"]}),
    ):
        resp = request()
        assert resp.status_code == 200
        info = resp.json()
        assert info["sub"] == "u-anna" and info["family_name"] == "Andersson"
        assert info["https://id.oidc.se/claim/personalIdentityNumber"] == "199001012385"
        assert info["healthCareUnitHsaId"] == "SE2321000016-ABCD"
    claims = rp.verify(tokens["id_token"])
    assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == "199001012385"
    assert "family_name" not in claims  # profile claims are UserInfo claims
    assert claims["commissionName"] == "Sjukskoterska" and claims["roleCode"] == "sjukskoterska"

    jrp = broker_server.rp("rp-jwt")
    with broker_server.browser() as browser:
        jt = jrp.token(jrp.login(browser, scope="openid profile assignments")).json()
    resp = jrp.http.get("/userinfo", headers={"Authorization": "Bearer " + jt["access_token"]})
    assert resp.headers["content-type"] == "application/jwt"
    signed = jrp.verify(resp.text)
    assert signed["aud"] == "rp-jwt" and signed["iss"] == broker_server.issuer
    assert signed["role"] == "Sjukskoterska" and "healthCareUnitName" not in signed  # client mapping
    at = jrp.verify(jt["access_token"])  # RFC 9068 JWT access token for this client
    assert at["client_id"] == "rp-jwt"
    bad = rp.http.get("/userinfo", headers={"Authorization": "Bearer nope.nope"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]


def test_claims_parameter_and_request_object(broker_server):
    rp = broker_server.rp("rp-jwt")
    claims = {"id_token": {"given_name": {"essential": True}},
              "userinfo": {"https://id.oidc.se/claim/deviceIp": None}}
    with broker_server.browser() as browser:
        tokens = rp.token(rp.login(browser, claims=json.dumps(claims))).json()
    id_claims = rp.verify(tokens["id_token"])
    assert id_claims["given_name"] == "Anna"
    info = rp.verify(rp.http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).text)
    assert info["https://id.oidc.se/claim/deviceIp"] == "192.0.2.7"

    # A request object signed with the client's registered key carries the parameters.
    params = rp.params()
    inner = {k: v for k, v in params.items()}
    inner.update({"iss": "rp-jwt", "aud": broker_server.issuer, "nonce": "from-object",
                  "claims": {"id_token": {"family_name": None}}})
    request_object = jwt.encode({"alg": "ES256", "kid": rp.key.kid}, inner, rp.key)
    outer = {"client_id": "rp-jwt", "response_type": "code", "redirect_uri": REDIRECT,
             "scope": "openid", "request": request_object}
    with broker_server.browser() as browser:
        resp = rp.follow(browser, browser.get("/authorize", params=outer))
    result = rp.callback(resp)
    assert result["state"] == params["state"]
    id_claims = rp.verify(rp.token(result["code"]).json()["id_token"])
    assert id_claims["nonce"] == "from-object" and id_claims["family_name"] == "Andersson"

    # Signed by a key the client never registered: refused and redirected.
    from joserfc.jwk import ECKey

    stranger = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode({"alg": "ES256", "kid": stranger.kid}, inner, stranger)
    with broker_server.browser() as browser:
        resp = browser.get("/authorize", params={**outer, "request": forged})
    assert resp.status_code in (302, 303, 400)
    if resp.status_code != 400:
        assert "error=invalid_request_object" in resp.headers["location"]
    # Unsigned (alg none) request objects are refused.
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + "." + \
        base64.urlsafe_b64encode(json.dumps(inner).encode()).rstrip(b"=").decode() + "."
    with broker_server.browser() as browser:
        resp = browser.get("/authorize", params={**outer, "request": unsigned})
    assert "code=" not in resp.headers.get("location", "")

"""Bad input of every kind gets the right OAuth error and changes nothing; logout;
the web hygiene every response carries."""

import httpx

from tests.conftest import REDIRECT


def count_keys(broker_server) -> int:
    import redis

    r = redis.Redis.from_url(broker_server.broker.settings.store.url)
    # Rate-limit counters count bad requests too (that is their job); nothing else may appear.
    prefix = broker_server.broker.settings.store.prefix
    return len([k for k in r.keys(prefix + "*") if not k.startswith((prefix + "rate:").encode())])


def test_token_endpoint_bad_input(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        code = rp.login(browser)
    before = count_keys(broker_server)
    url = broker_server.issuer + "/token"
    auth = ("rp-basic", "s" * 32)
    cases = [
        (httpx.post(url, json={"grant_type": "authorization_code", "code": code}, auth=auth), 400, "invalid_request"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                               "code_verifier": rp.verifier}, auth=("rp-basic", "wrong" * 8)), 401, "invalid_client"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                               "code_verifier": rp.verifier}, auth=("nobody", "x" * 32)), 401, "invalid_client"),
        (httpx.post(url, data={"grant_type": "password", "username": "a"}, auth=auth), 400, "unsupported_grant_type"),
        (httpx.post(url, content=f"grant_type=authorization_code&code={code}&code={code}",
                    headers={"content-type": "application/x-www-form-urlencoded"}, auth=auth), 400, "invalid_request"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": "x" * 9000}, auth=auth), 400, "invalid_request"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": "unknown",
                               "redirect_uri": REDIRECT, "code_verifier": rp.verifier}, auth=auth), 400, "invalid_grant"),
        (httpx.post(url, data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                               "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                               "client_assertion": "not.a.jwt"}), 400, "invalid_client"),
        (httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": "garbage"}, auth=auth), 400, "invalid_grant"),
    ]
    for resp, status, error in cases:
        assert resp.status_code == status, (resp.status_code, resp.text)
        assert resp.json()["error"] == error, resp.text
        assert resp.headers["cache-control"] == "no-store"
    assert count_keys(broker_server) == before, "a rejected request changed state"
    assert rp.token(code).status_code == 200  # the code survived every bad attempt


def test_private_key_jwt_assertion_is_single_use(broker_server):
    rp = broker_server.rp("rp-jwt")
    with broker_server.browser() as browser:
        code = rp.login(browser)
    data, _ = rp.client_auth()
    first = rp.http.post("/token", data={**data, "grant_type": "authorization_code", "code": code,
                                         "redirect_uri": REDIRECT, "code_verifier": rp.verifier})
    assert first.status_code == 200
    with broker_server.browser() as browser:
        code2 = rp.login(browser)
    again = rp.http.post("/token", data={**data, "grant_type": "authorization_code", "code": code2,
                                         "redirect_uri": REDIRECT, "code_verifier": rp.verifier})
    assert again.status_code in (400, 401) and again.json()["error"] == "invalid_client", again.text


def test_authorize_bad_input_pages(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        before = count_keys(broker_server)
        long = browser.get("/authorize", params=rp.params(state="x" * 5000))
        assert long.status_code == 400 and "location" not in long.headers
        repeated = browser.get("/authorize?client_id=rp-basic&client_id=rp-post&redirect_uri=" + REDIRECT)
        assert repeated.status_code == 400
        ctype = browser.post("/authorize", content=b'{"client_id": "rp-basic"}',
                             headers={"content-type": "application/json"})
        assert ctype.status_code == 415
        huge = browser.post("/authorize", content=b"a=" + b"x" * 70000,
                            headers={"content-type": "application/x-www-form-urlencoded"})
        assert huge.status_code == 413
        bad_jwt = browser.get("/authorize", params={**rp.params(), "request": "abc.def"})
        assert bad_jwt.status_code in (303, 400)
        assert count_keys(broker_server) == before
        expired = browser.get("/login/doesnotexist123")
        assert expired.status_code == 410 and "Traceback" not in expired.text


def test_login_is_bound_to_the_browser_that_started_it(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as alice, broker_server.browser() as mallory:
        first = alice.get("/authorize", params=rp.params())
        login_url = first.headers["location"]
        # Alice's browser opens the login first and so owns it ...
        owner = alice.get(login_url)
        assert owner.status_code in (302, 303)
        # ... and another browser cannot continue it.
        stolen = mallory.get(login_url)
        assert stolen.status_code in (403, 410)


def test_security_headers_on_every_response(broker_server):
    for path in ("/.well-known/openid-configuration", "/jwks", "/authorize", "/nope"):
        resp = httpx.get(broker_server.issuer + path)
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert "Traceback" not in resp.text


def test_sso_session_prompt_none_and_logout(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        none_first = rp.callback(rp.authorize(browser, prompt="none"))
        assert none_first["error"] == "login_required"
        logins = broker_server.connector.logins
        tokens = rp.token(rp.login(browser)).json()
        assert broker_server.connector.logins == logins + 1
        # SSO: a second client gets in without a new upstream login, same auth_time.
        mcss = broker_server.rp("rp-post")
        second = mcss.token(mcss.login(browser)).json()
        assert broker_server.connector.logins == logins + 1
        c1, c2 = rp.verify(tokens["id_token"]), mcss.verify(second["id_token"])
        assert c1["auth_time"] == c2["auth_time"] and c1["sid"] == c2["sid"]
        silent = rp.callback(rp.authorize(browser, prompt="none"))
        assert "code" in silent
        # prompt=login forces a new upstream login.
        rp.login(browser, prompt="login")
        assert broker_server.connector.logins == logins + 2

        # RP-initiated logout with id_token_hint and a registered post_logout_redirect_uri.
        fresh = rp.token(rp.login(browser)).json()
        bad = browser.get("/logout", params={"id_token_hint": fresh["id_token"],
                                             "post_logout_redirect_uri": "https://evil.example/"})
        assert bad.status_code == 400 and "location" not in bad.headers
        out = browser.get("/logout", params={"id_token_hint": fresh["id_token"], "state": "s1",
                                             "post_logout_redirect_uri": "https://rp.example/bye"})
        assert out.status_code == 303
        assert out.headers["location"] == "https://rp.example/bye?state=s1"
        after = rp.callback(rp.authorize(browser, prompt="none"))
        assert after["error"] == "login_required"
        # Refresh tokens issued under the ended session stop working.
        assert rp.refresh(fresh["refresh_token"]).json()["error"] == "invalid_grant"
        # Without a valid post_logout_redirect_uri the person sees "Du är utloggad".
        page = browser.get("/logout")
        assert page.status_code == 200 and "Du är utloggad" in page.text


def test_logout_without_hint_asks_for_confirmation(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        rp.login(browser)
        confirm = browser.get("/logout")
        assert "Logga ut?" in confirm.text
        forged = browser.post("/logout", data={"confirm": "yes", "csrf": "forged"})
        assert "Logga ut?" in forged.text  # still logged in: CSRF token checked
        import re

        token = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
        done = browser.post("/logout", data={"confirm": "yes", "csrf": token})
        assert "Du är utloggad" in done.text
        assert rp.callback(rp.authorize(browser, prompt="none"))["error"] == "login_required"


def test_assignments_deny_and_picker(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        denied = rp.authorize(browser, login_hint="197212127797")
        assert denied.status_code == 403 and "Du saknar behörighet" in denied.text
        import re

        action = re.search(r'action="(/login/[^"]+/deny)"', denied.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', denied.text).group(1)
        back = browser.post(action, data={"csrf": csrf})
        assert rp.callback(back)["error"] == "access_denied"

    with broker_server.browser() as browser:
        picker = rp.authorize(browser, login_hint="198505152384")
        assert "Välj roll och enhet" in picker.text
        assert "a-b-old" not in picker.text  # expired assignments do not count
        action = re.search(r'action="(/login/[^"]+/select)"', picker.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', picker.text).group(1)
        chosen = rp.callback(browser.post(action, data={"csrf": csrf, "assignment": "a-b-2"}))
        claims = rp.verify(rp.token(chosen["code"]).json()["id_token"])
        assert claims["commissionHsaId"] == "a-b-2" and claims["sub"] == "u-bertil"

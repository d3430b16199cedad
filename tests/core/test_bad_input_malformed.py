"""Malformed headers, credentials and parameter names get the OAuth error (or a 400 page)
they deserve, never a 500, and change nothing. Each case was a 500 once (issue 13)."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, urlencode

import pytest

from broker.security import equal_secrets
from tests.conftest import REDIRECT
from tests.hardening.rawhttp import RawResponse, request

FORM = (b"Content-Type", b"application/x-www-form-urlencoded")
ALLOWED = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")  # RFC 6749 §5.2 error_description


def keys(broker_server) -> dict:
    import redis

    r = redis.Redis.from_url(broker_server.broker.settings.store.url)
    prefix = broker_server.broker.settings.store.prefix
    # The /authorize rate counters count bad requests too (that is their job).
    return {k: r.dump(k) for k in r.scan_iter(match=prefix + "*")
            if not k.startswith((prefix + "rate:").encode())}


def basic(raw: bytes) -> tuple[bytes, bytes]:
    return b"Authorization", b"Basic " + base64.b64encode(raw)


def oauth_error(response: RawResponse, status: int, error: str) -> dict:
    assert response.status == status, (response.status, response.body[:300])
    body = json.loads(response.body)
    assert body["error"] == error, body
    assert ALLOWED.match(body.get("error_description", "")), body
    return body


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize("header", [
    (b"Authorization", b"Bearer "),             # a scheme with nothing after it
    (b"Authorization", b"Basic "),
    basic(b"\xff\xfe:\xff"),                   # credentials that are not UTF-8
    basic(b"rp-basic"),                        # no colon
])
def test_malformed_client_credentials_are_invalid_client(broker_server, path, header):
    before = keys(broker_server)
    body = b"grant_type=authorization_code&code=x&token=x"
    response = request(broker_server.issuer, "POST", path, [FORM, header], body)
    oauth_error(response, 401, "invalid_client")
    assert response.header("www-authenticate").startswith("Basic ")
    assert keys(broker_server) == before


@pytest.mark.parametrize("secret", ["s" * 31 + "é", "\u202e" * 32])
def test_a_client_secret_outside_ascii_is_just_wrong(broker_server, secret):
    url = broker_server.issuer
    for headers, body in [
        ([FORM, basic(f"rp-basic:{quote(secret)}".encode())], b"grant_type=refresh_token&refresh_token=x"),
        ([FORM], urlencode({"grant_type": "refresh_token", "refresh_token": "x",
                            "client_id": "rp-post", "client_secret": secret}).encode()),
    ]:
        oauth_error(request(url, "POST", "/token", headers, body), 401, "invalid_client")
    assert not equal_secrets("abc", "åbc") and equal_secrets("åbc", "åbc")


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
@pytest.mark.parametrize("name", ["\x00", "\u202e", 'a"b\\c', "x" * 300])
def test_parameter_names_are_not_echoed(broker_server, path, name):
    before = keys(broker_server)
    auth = basic(b"rp-basic:" + b"s" * 32)
    encoded = quote(name, safe="")
    for body in (f"token=x&{encoded}=1&{encoded}=2",           # repeated
                 f"token=x&{encoded}=" + "v" * 9000):          # over-long
        response = request(broker_server.issuer, "POST", path, [FORM, auth], body.encode())
        description = oauth_error(response, 400, "invalid_request")["error_description"]
        assert name not in description and len(description) < 100
    # A plain name is still named, so a developer sees what was wrong.
    response = request(broker_server.issuer, "POST", path, [FORM, auth], b"token=x&token=y")
    assert oauth_error(response, 400, "invalid_request")["error_description"] == \
        "repeated parameter: token"
    assert keys(broker_server) == before


def test_authorize_answers_hostile_values_without_a_crash(broker_server):
    rp = broker_server.rp()
    before = keys(broker_server)
    for response_type in ['code"', "code\u202e", "co\\de", "\x00"]:
        response = request(broker_server.issuer, "GET",
                           "/authorize?" + urlencode(rp.params(response_type=response_type)))
        assert response.status == 303
        assert response.header("location").startswith(REDIRECT + "?error=unsupported_response_type")
    long_name = request(broker_server.issuer, "GET", "/authorize?" + urlencode(
        {**rp.params(), "\u202e" * 10: "x" * 5000}))
    assert long_name.status == 400 and "\u202e" not in long_name.body.decode()
    assert keys(broker_server) == before


def test_a_request_object_redirect_uri_is_never_echoed(broker_server):
    from joserfc import jwt

    rp = broker_server.rp("rp-jwt")
    key = broker_server.jwt_key
    params = rp.params()
    inner = {**params, "iss": "rp-jwt", "aud": broker_server.issuer,
             "redirect_uri": 'https://rp.example/cb"\u202e'}
    params["request"] = jwt.encode({"alg": "ES256", "kid": key.kid}, inner, key)
    response = request(broker_server.issuer, "GET", "/authorize?" + urlencode(params))
    assert response.status == 303, response.body[:300]
    assert response.header("location").startswith(REDIRECT + "?error=invalid_request")


def test_a_csrf_token_outside_ascii_is_refused(broker_server):
    before = keys(broker_server)
    response = request(broker_server.issuer, "POST", "/logout",
                       [FORM, (b"Cookie", b"broker_b=" + b"b" * 32)],
                       b"confirm=yes&csrf=%C3%A9&client_id=rp-basic")
    assert response.status == 200, response.body[:300]
    assert keys(broker_server) == before

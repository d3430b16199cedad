"""No input makes a 5xx, and a request that is refused changes nothing.

Hypothesis builds requests for every endpoint people and relying parties reach (/authorize,
/token, /introspect, /revoke, /userinfo, /logout, the login pages, the BankID pages) with
hostile parameter names and values (U+0000, U+202E, quotes, backslashes, invalid UTF-8 and
percent escapes, repeats, great lengths), malformed Authorization headers (empty Bearer,
Basic credentials that are not base64 or not UTF-8), content types and cookies, and sends
them as raw bytes to a real broker (uvicorn, real Redis). For each answer it checks:

- the status is below 500 (the crash handler in broker/app.py is a last resort only);
- an OAuth error's `error_description` holds only the characters RFC 6749 §5.2 allows and
  is short (parameter names are not echoed raw);
- a redirect goes to a path on this site, the issuer or a registered redirect URI;
- when the answer is an error, every Redis key of the broker's prefix is as it was.

Bounded: about 25 s on a quiet machine, and never more than 60 s (`FUZZ_SECONDS`).
"""

from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import quote, urlencode

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.app import bankid_connector, create_app
from broker.config import parse_settings
from broker.store import open_store
from tests.conftest import REDIRECT, base_config
from tests.hardening.rawhttp import RawResponse, request
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

FUZZ_SECONDS = 60  # for the whole module, server start included
EXPIRY_SLACK_MS = 5000
_DESCRIPTION_OK = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")
CLIENTS = ("rp-basic", "rp-post", "rp-jwt", "rp-flat")


class Target:
    """The running broker and the real state the fuzzer aims at."""

    def __init__(self, issuer: str, app, store_url: str, prefix: str) -> None:
        self.issuer = issuer
        self.app = app
        self.redis = redis_lib.Redis.from_url(store_url)
        self.prefix = prefix
        self.started = time.monotonic()

    def snapshot(self) -> dict[bytes, tuple[bytes | None, int]]:
        """Every key of the prefix: its serialized value and milliseconds left."""
        keys = sorted(self.redis.scan_iter(match=self.prefix + "*", count=1000))
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
        out = pipe.execute()
        return {key: (out[2 * i], out[2 * i + 1]) for i, key in enumerate(keys)}

    @staticmethod
    def changed(before: dict, after: dict) -> list[bytes]:
        """Keys added, changed or deleted; not those that merely expired (a short-lived
        throttle key such as the BankID collect lock may run out between the snapshots)."""
        out = []
        for key in before.keys() | after.keys():
            if key not in after and 0 < before[key][1] <= EXPIRY_SLACK_MS:
                continue
            if b":rate:authorize:" in key:
                continue  # the per-address /authorize counter counts bad requests too
            if (before.get(key) or (None,))[0] != (after.get(key) or (None,))[0]:
                out.append(key)
        return sorted(out)


@pytest.fixture(scope="module")
def target(redis, tmp_path_factory):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("fuzz")
    rp_key = ECKey.generate_key("P-256", auto_kid=True)  # rp-jwt's: it signs request objects
    data = base_config(issuer, tmp / "keys", redis, rp_key)
    # Long lifetimes, so nothing expires during the run and only requests change the store.
    # No /authorize limit in reach: every example must get past it to the checks behind it.
    data.update(tokens={"code_ttl": 600, "refresh_grace": 2},
                login={"transaction_ttl": 3600, "authorize_per_address_per_minute": 100000},
                connectors={"bankid": {"environment": "simulator"}})
    settings_ = parse_settings(data, str(tmp / "broker.yaml"))
    app = create_app(settings_, store=open_store(redis, settings_.store.prefix),
                     source=FakeSource(default_users(CLIENTS)),
                     connectors={"test": FakeConnector, "bankid": bankid_connector()})
    with serve(app, port):
        t = Target(issuer, app, redis, settings_.store.prefix)
        t.material = _material(issuer)  # type: ignore[attr-defined]
        t.rp_key = rp_key  # type: ignore[attr-defined]
        yield t


def _material(issuer: str) -> dict[str, list[str]]:
    """Genuine values to mix in, so requests get past the first checks: a login in progress
    (with its browser cookie and CSRF token), a code, access and refresh tokens."""
    import httpx

    rp = FakeRP(issuer, "rp-basic", REDIRECT, "s" * 32)
    with httpx.Client(base_url=issuer, timeout=10) as browser:
        first = browser.get("/authorize", params=rp.params(scope="openid profile"))
        txn = first.headers["location"].rsplit("/", 1)[1]
        page = browser.get(first.headers["location"])
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    with httpx.Client(base_url=issuer, timeout=10) as browser:
        code = rp.login(browser, authnProvider="test")
        tokens = rp.token(code).json()
    with httpx.Client(base_url=issuer, timeout=10) as browser:
        spare = rp.login(browser, authnProvider="test")  # a code nobody redeems
    return {"txn": [txn], "csrf": [csrf], "cookie": [cookie], "code": [spare],
            "token": [tokens["access_token"], tokens["refresh_token"]],
            "id_token": [tokens["id_token"]]}


# -- strategies ------------------------------------------------------------------------------

NASTY = ["\x00", "\u202e", "\u200f", '"', "\\", "'", "<", ">", "&", "%", "\r", "\n", "\t",
         "\ufeff", "\ud7ff", "\U0001f600", "é", " ", "=", ";", ","]
KNOWN = ["client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
         "code_challenge", "code_challenge_method", "response_mode", "prompt", "max_age",
         "acr_values", "claims", "request", "request_uri", "login_hint", "ui_locales",
         "id_token_hint", "post_logout_redirect_uri", "grant_type", "code", "code_verifier",
         "refresh_token", "token", "token_type_hint", "client_secret", "client_assertion",
         "client_assertion_type", "access_token", "csrf", "method", "assignment", "device",
         "personal_number", "beacon", "lang", "nonce", "ref", "result",
         "https://id.oidc.se/param/authnProvider"]

_any = st.text(alphabet=st.one_of(st.sampled_from(NASTY), st.characters(codec="utf-8")),
               max_size=20)
# Always at least one character that needs care (Hypothesis likes plain "0" otherwise).
text = st.builds(lambda a, nasty, b: a + nasty + b, _any, st.sampled_from(NASTY), _any)
long_text = st.builds(lambda c, n: c * n, st.sampled_from(["a", "\u202e", "\x00", '"', "%"]),
                      st.sampled_from([300, 5000, 9000]))


def once_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws. Not `integers(0, n - 1) == 0`: Hypothesis favours the
    simplest value (0, False, the first element), which would make the rare branch common
    and starve the rest; here the simplest value is the common branch."""
    return st.sampled_from([False] * (n - 1) + [True])


def names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(KNOWN), text, long_text)


def values(t: Target) -> st.SearchStrategy[str]:
    real = [v for vs in t.material.values() for v in vs]  # type: ignore[attr-defined]
    plain = [*CLIENTS, REDIRECT, "code", "openid", "authorization_code", "refresh_token",
             "test", "bankid", "S256", "form_post", "none"]
    return st.one_of(text, text, st.sampled_from(real + plain), long_text)


@st.composite
def request_objects(draw, t: Target) -> str:
    """A request object signed with rp-jwt's key: genuine claims, some fuzzed."""
    claims: dict = {"iss": "rp-jwt", "aud": t.issuer, "client_id": "rp-jwt",
                    "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
                    "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    fuzzable = sorted([*claims, "claims", "prompt", "nonce", "max_age", "acr_values"])
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(fuzzable))
        claims[name] = draw(st.one_of(st.integers(), st.lists(text, max_size=2),
                                      st.dictionaries(text, text, max_size=2))) \
            if draw(once_in(4)) else draw(text)
    return jwt.encode({"alg": "ES256", "kid": t.rp_key.kid}, claims, t.rp_key)  # type: ignore[attr-defined]


def encode_pairs(ps: list[tuple[str, str]], raw: bool) -> bytes:
    if raw:  # unescaped bytes and broken escapes, as a hostile client sends them
        return "&".join(f"{k}={v}" for k, v in ps).encode("utf-8", "surrogatepass") + b"&%zz=%FF%"
    return urlencode(ps, quote_via=quote).encode("utf-8", "surrogatepass")


def authorization(t: Target) -> st.SearchStrategy[bytes | None]:
    secret = base64.b64encode(b"rp-basic:" + b"s" * 32)
    b64 = st.binary(max_size=40).map(base64.b64encode)
    return st.one_of(
        st.none(),
        st.sampled_from([b"Bearer ", b"Bearer", b"Basic ", b"Basic", b"Basic !!!", b"Basic =",
                         b"Basic " + secret, b"Bearer \xff\xfe", b"Digest x", b"\xff"]),
        b64.map(lambda v: b"Basic " + v),
        st.binary(max_size=30).map(lambda v: b"Basic " + base64.b64encode(b"rp-basic:" + v)),
        st.binary(max_size=30).map(lambda v: b"Basic " + base64.b64encode(v + b":" + b"s" * 32)),
        st.sampled_from(t.material["token"]).map(lambda v: b"Bearer " + v.encode()),  # type: ignore[attr-defined]
        text.map(lambda v: b"Bearer " + v.encode("utf-8", "surrogatepass")),
    )


CONTENT_TYPES = [b"application/x-www-form-urlencoded", b"application/x-www-form-urlencoded; charset=utf-8",
                 b"application/json", b"multipart/form-data", b"multipart/form-data; boundary=x",
                 b"text/plain", b"application/x-www-form-urlencoded\xff", None]


# Each endpoint with the methods it serves and the genuine parameters of a request to it
# ("@name" draws from the material), so that most requests get past the first checks and
# the fuzzed part lands deep inside.
SHAPES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "/authorize": (("GET", "POST"), {"client_id": "rp-basic", "redirect_uri": REDIRECT,
                                     "response_type": "code", "scope": "openid",
                                     "code_challenge": "x" * 43, "code_challenge_method": "S256"}),
    "/token": (("POST",), {"grant_type": "authorization_code", "code": "@code",
                           "redirect_uri": REDIRECT, "code_verifier": "v" * 43}),
    "/introspect": (("POST",), {"token": "@token"}),
    "/revoke": (("POST",), {"token": "@token", "token_type_hint": "refresh_token"}),
    "/userinfo": (("GET", "POST"), {"access_token": "@token"}),
    "/logout": (("GET", "POST"), {"id_token_hint": "@id_token", "client_id": "rp-basic",
                                  "post_logout_redirect_uri": "https://rp.example/bye"}),
    "/login/{txn}": (("GET",), {"lang": "en"}),
    "/login/{txn}/method": (("POST",), {"csrf": "@csrf", "method": "test"}),
    "/login/{txn}/select": (("POST",), {"csrf": "@csrf", "assignment": "a-b-1"}),
    "/login/{txn}/deny": (("POST",), {"csrf": "@csrf"}),
    "/login/bankid/{txn}/start": (("POST",), {"csrf": "@csrf", "device": "other"}),
    "/login/bankid/{txn}/wait": (("GET",), {"nonce": "x"}),
    "/login/bankid/{txn}/status": (("GET",), {}),
    "/login/bankid/{txn}/finish": (("GET",), {}),
    "/login/bankid/{txn}/cancel": (("POST",), {"csrf": "@csrf", "beacon": "1"}),
    "/login/siths/return": (("GET",), {"result": "x" * 43}),
}
CREDENTIALS = ("/token", "/introspect", "/revoke")
OAUTH = ("/authorize", "/token", "/introspect", "/revoke", "/userinfo", "/logout")


@st.composite
def params(draw, t: Target, genuine: dict[str, str]) -> list[tuple[str, str]]:
    """The genuine parameters with one to three mutations: a value fuzzed, a parameter
    dropped or repeated, or an extra parameter with a fuzzed name."""
    m = t.material  # type: ignore[attr-defined]
    fields = [(k, draw(st.sampled_from(m[v[1:]])) if v.startswith("@") else v)
              for k, v in genuine.items()]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "extra", "drop", "repeat"]))
        if kind == "extra" or not fields:
            fields.append((draw(names()), draw(values(t))))
            continue
        i = draw(st.integers(0, len(fields) - 1))
        if kind == "value":
            fields[i] = (fields[i][0], draw(values(t)))
        elif kind == "drop":
            del fields[i]
        else:
            fields.append((fields[i][0], draw(values(t))))
    return fields


@st.composite
def requests(draw, t: Target, templates: tuple[str, ...]
             ) -> tuple[str, bytes, list[tuple[bytes, bytes]], bytes]:
    m = t.material  # type: ignore[attr-defined]
    template = draw(st.sampled_from(templates))
    methods, genuine = SHAPES[template]
    txn = draw(st.one_of(st.sampled_from(m["txn"]), text.map(lambda v: quote(v, safe=""))))
    path = template.replace("{txn}", txn)
    method = draw(st.sampled_from(["GET", "POST", "PUT"])) if draw(once_in(6)) else \
        draw(st.sampled_from(methods))
    fields = draw(params(t, genuine))
    if template == "/authorize" and draw(once_in(4)):
        fields = [(k, "rp-jwt" if k == "client_id" else v) for k, v in fields]
        fields.append(("request", draw(request_objects(t))))
    headers: list[tuple[bytes, bytes]] = []
    auth = draw(authorization(t)) if template in CREDENTIALS or draw(once_in(5)) \
        else None
    if auth is not None:
        headers.append((b"Authorization", auth))
    if template.startswith("/login") and not draw(once_in(4)):
        headers.append((b"Cookie", m["cookie"][0].encode()))
    elif draw(once_in(5)):
        headers.append((b"Cookie", draw(text).encode("utf-8", "surrogatepass")))
    if draw(once_in(5)):
        headers.append((b"Accept-Language", draw(text).encode("utf-8", "surrogatepass")))
    raw = draw(once_in(4))
    body = b""
    if method == "GET":
        target = path.encode() + (b"?" + encode_pairs(fields, raw) if fields else b"")
    else:
        target = path.encode()
        if draw(once_in(4)):
            target += b"?" + encode_pairs(draw(st.lists(st.tuples(names(), values(t)),
                                                        max_size=3)), raw)
        ctype = draw(st.sampled_from(CONTENT_TYPES)) if draw(once_in(4)) \
            else b"application/x-www-form-urlencoded"
        if ctype is not None:
            headers.append((b"Content-Type", ctype))
        body = draw(st.binary(max_size=200)) if draw(once_in(6)) else encode_pairs(fields, raw)
    # Header values cannot hold CR or LF: that would be another request, not a bad header.
    headers = [(k, v.replace(b"\r", b"").replace(b"\n", b"")) for k, v in headers]
    return method, target, headers, body


# -- what every answer must satisfy -----------------------------------------------------------

def is_error(path: bytes, response: RawResponse) -> bool:
    if response.status >= 400:
        return True
    location = response.header("location") or ""
    return path.startswith(b"/authorize") and "error=" in location


def check_answer(t: Target, target: bytes, response: RawResponse) -> None:
    assert response.status < 500, (response.status, response.body[:300])
    if response.header("content-type", ) == "application/json" and response.status >= 400:
        body = json.loads(response.body)
        description = body.get("error_description", "")
        assert _DESCRIPTION_OK.match(description) and len(description) <= 200, description
    location = response.header("location")
    if location is not None:
        local = location.startswith("/") and not location.startswith(("//", "/\\"))
        assert local or location.startswith((t.issuer + "/", REDIRECT, "https://rp.example/bye")), \
            location


FUZZ = settings(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def exchange(t: Target, data: st.DataObject, templates: tuple[str, ...]) -> None:
    """One fuzzed request and the checks on its answer (module docstring)."""
    if time.monotonic() - t.started > FUZZ_SECONDS - 5:
        return  # the time bound: a loaded machine runs fewer examples, never longer
    method, path, headers, body = data.draw(requests(t, templates))
    before = t.snapshot()
    response = request(t.issuer, method, path, headers, body)
    check_answer(t, path, response)
    if is_error(path, response):
        after = t.snapshot()
        changed = t.changed(before, after)
        assert not changed, (response.status, changed)


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_authorize(target, data):
    exchange(target, data, ("/authorize",))


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_token_revoke_introspect(target, data):
    exchange(target, data, CREDENTIALS)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_userinfo_and_logout(target, data):
    exchange(target, data, ("/userinfo", "/logout"))


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_login_pages(target, data):
    exchange(target, data, tuple(sorted(p for p in SHAPES if p.startswith("/login"))))

"""A fake relying party (httpx) that walks the browser side of a login by hand."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class FakeRP:
    def __init__(self, issuer: str, client_id: str, redirect_uri: str, secret: str | None = None,
                 auth: str = "client_secret_basic", key=None) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.secret = secret
        self.auth = auth
        self.key = key
        self.http = httpx.Client(base_url=issuer, timeout=10)

    def params(self, **extra) -> dict[str, str]:
        verifier, challenge = pkce()
        p = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
             "scope": "openid assignments", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
             "code_challenge": challenge, "code_challenge_method": "S256"}
        p.update({k: v for k, v in extra.items() if v is not None})
        for k in [k for k, v in extra.items() if v is None]:
            p.pop(k, None)
        self.verifier = verifier
        self.last = p
        return p

    def follow(self, browser: httpx.Client, response: httpx.Response, limit: int = 10) -> httpx.Response:
        """Follow the broker's redirects; stop at the RP's redirect URI or at a page."""
        for _ in range(limit):
            if response.status_code not in (302, 303):
                return response
            location = response.headers["location"]
            if location.startswith(self.redirect_uri) or not (
                    location.startswith("/") or location.startswith(self.issuer)):
                return response
            response = browser.get(location)
        return response

    def authorize(self, browser: httpx.Client, method: str = "GET", **extra) -> httpx.Response:
        params = self.params(**extra)
        if method == "GET":
            first = browser.get("/authorize?" + urlencode(params))
        else:
            first = browser.post("/authorize", data=params)
        return self.follow(browser, first)

    def callback(self, response: httpx.Response) -> dict[str, str]:
        assert response.status_code in (302, 303), response.text[:500]
        location = response.headers["location"]
        assert location.startswith(self.redirect_uri), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def login(self, browser: httpx.Client, **extra) -> str:
        result = self.callback(self.authorize(browser, **extra))
        assert result.get("state") == self.last["state"], result
        assert "code" in result, result
        return result["code"]

    def client_auth(self) -> tuple[dict, tuple | None]:
        if self.auth == "client_secret_basic":
            return {}, (self.client_id, self.secret)
        if self.auth == "client_secret_post":
            return {"client_id": self.client_id, "client_secret": self.secret}, None
        now = int(time.time())
        assertion = jwt.encode({"alg": "ES256", "kid": self.key.kid},
                               {"iss": self.client_id, "sub": self.client_id,
                                "aud": self.issuer + "/token", "iat": now, "exp": now + 60,
                                "jti": secrets.token_urlsafe(12)}, self.key)
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion}, None

    def token(self, code: str, verifier: str | None = "", **extra) -> httpx.Response:
        data, auth = self.client_auth()
        data.update({"grant_type": "authorization_code", "code": code,
                     "redirect_uri": self.redirect_uri})
        if verifier == "":
            verifier = self.verifier
        if verifier is not None:
            data["code_verifier"] = verifier
        data.update(extra)
        return self.http.post("/token", data=data, auth=auth)

    def refresh(self, refresh_token: str) -> httpx.Response:
        data, auth = self.client_auth()
        data.update({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self.http.post("/token", data=data, auth=auth)

    def endpoint(self, path: str, **fields) -> httpx.Response:
        data, auth = self.client_auth()
        data.update(fields)
        return self.http.post(path, data=data, auth=auth)

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(self.http.get("/jwks").json())

    def verify(self, token: str, algs=("RS256", "ES256")) -> dict:
        decoded = jwt.decode(token, self.jwks(), algorithms=list(algs))
        return dict(decoded.claims)

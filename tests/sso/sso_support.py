"""Relying parties for the SSO and logout tests: small Starlette apps under uvicorn on
loopback ports, each with a real callback (`/cb`), a logout link, a post-logout page and a
back-channel endpoint that verifies every logout_token against the broker's JWKS the way
Back-Channel Logout 1.0 section 2.6 tells an RP to."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ANNA_PNR = "199001012385"
DORA_PNR = "196403273813"
ERIK_PNR = "197802022389"


@dataclass
class Received:
    """One POST to the back-channel endpoint and what the RP found wrong with it."""

    claims: dict[str, Any]
    header: dict[str, Any]
    problems: list[str]
    at: float

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Login:
    claims: dict[str, Any]
    tokens: dict[str, Any]


@dataclass
class RelyingParty:
    """A confidential client (client_secret_basic) with PKCE, state and nonce."""

    name: str
    client_id: str
    secret: str
    issuer: str
    port: int
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    sids: dict[str, str] = field(default_factory=dict)  # sid -> sub, from our ID tokens
    jtis: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: int = 0  # answer this many back-channel POSTs with 503 (a restarting RP)
    refused: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return self.url + "/cb"

    @property
    def bye_uri(self) -> str:
        return self.url + "/bye"

    @property
    def backchannel_uri(self) -> str:
        return self.url + "/backchannel"

    def client_config(self, **extra: Any) -> dict[str, Any]:
        return {"client_id": self.client_id, "client_name": self.name, "client_secret": self.secret,
                "redirect_uris": [self.redirect_uri], "post_logout_redirect_uris": [self.bye_uri],
                "backchannel_logout_uri": self.backchannel_uri,
                "scopes": ["openid", "profile", "assignments"], **extra}

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/start", self.start), Route("/cb", self.callback), Route("/logout", self.logout),
            Route("/bye", self.bye), Route("/backchannel", self.backchannel, methods=["POST"]),
        ])

    @property
    def last(self) -> Login:
        return self.logins[-1]

    def valid_logouts(self, sid: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.ok and (sid is None or r.claims["sid"] == sid)]

    # -- browser side ---------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        self.pending[state] = {"verifier": verifier, "nonce": nonce}
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": "openid profile assignments",
                  "state": state, "nonce": nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256", **dict(request.query_params)}
        if params.get("id_token_hint") == "last":
            params["id_token_hint"] = self.last.tokens["id_token"]
        return RedirectResponse(f"{self.issuer}/authorize?{urlencode(params)}", 303)

    async def callback(self, request: Request) -> Response:
        q = request.query_params
        flow = self.pending.pop(q.get("state", ""), None)
        if flow is None:
            return HTMLResponse("<h1>Okänt state</h1>", 400)
        if "error" in q:
            self.errors.append(dict(q))
            return HTMLResponse(f"<h1>Fel: {html.escape(q['error'])}</h1>", 200)
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(self.issuer + "/token", auth=(self.client_id, self.secret), data={
                "grant_type": "authorization_code", "code": q["code"],
                "redirect_uri": self.redirect_uri, "code_verifier": flow["verifier"]})
            tokens = resp.json()
            if resp.status_code != 200:
                self.errors.append(tokens)
                return HTMLResponse(f"<h1>Fel: {html.escape(str(tokens))}</h1>", 200)
            keys = KeySet.import_key_set((await http.get(self.issuer + "/jwks")).json())
        claims = dict(jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims)
        assert claims["nonce"] == flow["nonce"] and claims["aud"] == self.client_id
        self.logins.append(Login(claims, tokens))
        self.sids[claims["sid"]] = claims["sub"]
        return HTMLResponse(
            f"<h1>Inloggad i {html.escape(self.name)}</h1>"
            f"<p id=sub>{html.escape(claims['sub'])}</p><p id=sid>{html.escape(claims['sid'])}</p>"
            f"<p id=role>{html.escape(str(claims.get('commissionHsaId')))}</p>"
            f'<a id=logout href="/logout">Logga ut</a>')

    async def logout(self, request: Request) -> Response:
        params = {"id_token_hint": self.last.tokens["id_token"],
                  "post_logout_redirect_uri": self.bye_uri, "state": "bye-" + self.client_id}
        return RedirectResponse(f"{self.issuer}/logout?{urlencode(params)}", 303)

    async def bye(self, request: Request) -> Response:
        state = html.escape(request.query_params.get("state", ""))
        return HTMLResponse(f"<h1>Utloggad från {html.escape(self.name)}</h1><p id=state>{state}</p>")

    # -- back-channel ---------------------------------------------------------------------
    async def backchannel(self, request: Request) -> Response:
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused += 1
                return Response("restarting", status_code=503)
        problems: list[str] = []
        if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            problems.append("content-type")
        form = await request.form()
        if set(form.keys()) != {"logout_token"}:
            problems.append(f"form parameters {sorted(form.keys())}")
        token = str(form.get("logout_token", ""))
        claims: dict[str, Any] = {}
        header: dict[str, Any] = {}
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                keys = KeySet.import_key_set((await http.get(self.issuer + "/jwks")).json())
            decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
            claims, header = dict(decoded.claims), dict(decoded.header)
        except Exception as exc:
            problems.append(f"signature: {type(exc).__name__}")
        now = time.time()
        if claims:
            problems += _check_claims(claims, header, self.issuer, self.client_id, now)
            with self.lock:
                if claims.get("jti") in self.jtis:
                    problems.append("jti replayed")
                self.jtis.add(str(claims.get("jti")))
                sid = claims.get("sid")
                if sid not in self.sids:
                    problems.append("sid is not one of our ID tokens' sid")
                elif claims.get("sub") != self.sids[sid]:
                    problems.append("sub differs from the ID token's sub")
        with self.lock:
            self.received.append(Received(claims, header, problems, now))
        return Response(status_code=400 if problems else 200,
                        headers={"Cache-Control": "no-store"})


def _check_claims(claims: dict[str, Any], header: dict[str, Any], issuer: str, client_id: str,
                  now: float) -> list[str]:
    problems = []
    if header.get("typ") != "logout+jwt":
        problems.append(f"typ {header.get('typ')!r}")
    if claims.get("iss") != issuer:
        problems.append("iss")
    aud = claims.get("aud")
    if aud != client_id and not (isinstance(aud, list) and client_id in aud):
        problems.append("aud")
    if not isinstance(claims.get("iat"), int) or abs(now - claims["iat"]) > 60:
        problems.append("iat")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
        problems.append("exp")
    if not claims.get("jti"):
        problems.append("jti")
    events = claims.get("events")
    if not isinstance(events, dict) or events.get(BACKCHANNEL_EVENT) != {}:
        problems.append("events")
    if "nonce" in claims:
        problems.append("nonce present")
    if not claims.get("sid") or not claims.get("sub"):
        problems.append("sid/sub missing")
    return problems


class BlackHole:
    """A back-channel endpoint that is down the worst way: it accepts the connection and
    never answers (a listening socket nobody accepts from; the kernel completes the
    handshake)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/backchannel"

    def close(self) -> None:
        self.sock.close()


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll (bounded) until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def expire(source, user_id: str) -> None:
    """Every assignment of the user ended long ago (expiry rather than withdrawal)."""
    from dataclasses import replace
    from datetime import date

    user = source.users[user_id]
    source.users[user_id] = replace(user, assignments=tuple(
        replace(a, valid_to=date(2000, 1, 1)) for a in user.assignments))

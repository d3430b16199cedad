"""A demo relying party ("Logga in i Lifecare (demo)") that shows the claims it received.

It is an ordinary OIDC client of the broker (code flow, PKCE S256, client_secret_basic,
ID token signature and nonce checked against the JWKS), mounted in the demo process so
that a newcomer needs nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

COOKIE = "demo_rp"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="sv"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/static/style.css">'
        f'</head><body><header class="top"><span class="brand">Lifecare (demo)</span></header>'
        f'<main>{body}</main></body></html>')


def create_demo_rp(issuer: str, client_id: str, secret: str, base: str) -> Starlette:
    """`base` is where this app is mounted (e.g. http://localhost:8080/demo-rp)."""
    redirect_uri = base + "/callback"
    sessions: dict[str, dict] = {}

    async def home(request: Request) -> Response:
        return _page("Lifecare (demo)", (
            "<h1>Lifecare (demo)</h1><p>En påhittad tjänst som loggar in via brokern.</p>"
            f'<p><a class="button primary" id="login" href="{base}/login">Logga in i Lifecare (demo)</a></p>'
            f'<p><a href="{base}/login?prompt=select_account">Byt roll och enhet</a></p>'))

    async def login(request: Request) -> Response:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        sid = secrets.token_urlsafe(16)
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        sessions[sid] = {"verifier": verifier, "state": state, "nonce": nonce}
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
                  "scope": "openid profile https://id.oidc.se/scope/naturalPersonNumber assignments",
                  "state": state, "nonce": nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256", "ui_locales": "sv"}
        if request.query_params.get("prompt"):
            params["prompt"] = request.query_params["prompt"]
        response = RedirectResponse(f"{issuer}/authorize?{urlencode(params)}", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="lax", path="/")
        return response

    async def callback(request: Request) -> Response:
        own = sessions.pop(request.cookies.get(COOKIE, ""), None)
        q = request.query_params
        if own is None or q.get("state") != own["state"]:
            return _page("Fel", "<h1>Fel</h1><p>Okänd eller gammal inloggning.</p>")
        if "error" in q:
            return _page("Ingen inloggning", f"<h1>Ingen inloggning</h1><p>{html.escape(q['error'])}: "
                                             f"{html.escape(q.get('error_description', ''))}</p>"
                                             f'<p><a href="{base}/">Tillbaka</a></p>')
        async with httpx.AsyncClient(base_url=issuer, timeout=10) as http:
            token = (await http.post("/token", auth=(client_id, secret), data={
                "grant_type": "authorization_code", "code": q["code"],
                "redirect_uri": redirect_uri, "code_verifier": own["verifier"]})).json()
            if "id_token" not in token:
                return _page("Fel", f"<pre>{html.escape(json.dumps(token, indent=1))}</pre>")
            keys = KeySet.import_key_set((await http.get("/jwks")).json())
            info = (await http.get("/userinfo", headers={
                "Authorization": "Bearer " + token["access_token"]})).json()
        claims = jwt.decode(token["id_token"], keys).claims
        if claims.get("nonce") != own["nonce"] or claims.get("iss") != issuer:
            return _page("Fel", "<h1>Fel</h1><p>ID-token passar inte inloggningen.</p>")
        logout = f"{issuer}/logout?" + urlencode({"id_token_hint": token["id_token"],
                                                  "post_logout_redirect_uri": base + "/"})
        pretty = lambda d: html.escape(json.dumps(d, indent=2, ensure_ascii=False))  # noqa: E731
        return _page("Inloggad", (
            f"<h1>Inloggad som {html.escape(str(info.get('name', claims['sub'])))}</h1>"
            f"<p>Roll: <strong id=\"role\">{html.escape(str(claims.get('commissionName', '')))}</strong>, "
            f"enhet: <strong id=\"unit\">{html.escape(str(claims.get('healthCareUnitName', '')))}</strong></p>"
            f"<h2>ID-token</h2><pre id=\"id-token\">{pretty(claims)}</pre>"
            f"<h2>UserInfo</h2><pre id=\"userinfo\">{pretty(info)}</pre>"
            f'<p><a class="button" href="{base}/login?prompt=select_account">Byt roll och enhet</a> '
            f'<a class="button" id="logout" href="{html.escape(logout)}">Logga ut</a></p>'))

    return Starlette(routes=[Route("/", home), Route("/login", login), Route("/callback", callback)])

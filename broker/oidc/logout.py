"""RP-initiated logout 1.0 and Back-Channel Logout 1.0.

Logout ends the SSO session, stops the refresh tokens issued under it, and tells every
client of the session that registered a `backchannel_logout_uri` (concurrently, with a
timeout and a few retries, after the person's page has been answered).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import Broker
from ..security import BROWSER_COOKIE, browser_id, csrf_ok, csrf_token
from ..session import SSO_COOKIE, SsoSession
from .claims import subject_for
from .responses import add_query
from .tokens import new_id

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


async def end_session(broker: Broker, sid: str) -> SsoSession | None:
    """End one SSO session everywhere: store, refresh tokens, back-channel clients."""
    session = await broker.sessions.end(sid)
    await broker.store.put("sid-ended:" + sid, {"at": int(time.time())},
                           broker.settings.tokens.refresh_token_ttl)
    if session is not None:
        broker.audit.event("logout", sid=sid, user=session.user.get("id"),
                           clients=sorted(session.clients))
    return session


async def send_backchannel(broker: Broker, session: SsoSession, *, attempts: int = 3,
                           per_call: float = 5.0) -> dict[str, bool]:
    """POST a logout_token to each client of the session; returns client -> delivered."""

    async def one(client_id: str) -> tuple[str, bool]:
        client = broker.clients.get(client_id)
        uri = client.settings.backchannel_logout_uri if client else None
        if not uri:
            return client_id, False
        now = int(time.time())
        token = broker.signer.sign({
            "iss": broker.issuer, "aud": client_id, "iat": now, "exp": now + 120,
            "jti": new_id(), "sid": session.sid,
            "sub": subject_for(session.user["id"], client.settings, broker.settings.pairwise_salt),
            "events": {BACKCHANNEL_EVENT: {}},
        }, client.settings.id_token_signed_response_alg, typ="logout+jwt")
        for attempt in range(attempts):
            try:
                resp = await broker.http.post(uri, data={"logout_token": token}, timeout=per_call)
                if resp.status_code in (200, 204):
                    return client_id, True
                if resp.status_code == 400:
                    break  # the RP rejected the token: retrying will not help
            except httpx.HTTPError as exc:
                log.warning("back-channel logout to %s failed: %s", client_id, type(exc).__name__)
            await asyncio.sleep(0.5 * (2 ** attempt))
        return client_id, False

    results = await asyncio.gather(*(one(c) for c in session.clients))
    outcome = dict(results)
    broker.audit.event("backchannel_logout", sid=session.sid, delivered=outcome)
    return outcome


class LogoutEndpoint:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def routes(self) -> list[Route]:
        return [Route("/logout", self.logout, methods=["GET", "POST"])]

    async def logout(self, request: Request) -> Response:
        broker = self.broker
        pages = broker.pages
        if request.method == "POST":
            form = await request.form()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            params = dict(request.query_params)

        hint_claims: dict[str, Any] | None = None
        if params.get("id_token_hint"):
            try:
                hint_claims = broker.signer.verify(params["id_token_hint"], check_exp=False)
            except ValueError:
                return pages.error(request, "error_request", detail="invalid id_token_hint")
        client_id = params.get("client_id")
        if hint_claims is not None:
            aud = hint_claims.get("aud")
            aud_id = aud if isinstance(aud, str) else (aud[0] if aud else None)
            if client_id and client_id != aud_id:
                return pages.error(request, "error_request", detail="client_id does not match the id_token_hint")
            client_id = aud_id
        client = broker.clients.get(client_id) if client_id else None
        if client_id and client is None:
            return pages.error(request, "error_invalid_client")
        target = params.get("post_logout_redirect_uri")
        if target and (client is None or target not in client.settings.post_logout_redirect_uris):
            return pages.error(request, "error_invalid_redirect")

        cookie = broker.cookies.get(request, SSO_COOKIE)
        session = await broker.sessions.load(cookie)
        confirmed = False
        if hint_claims is not None and session is not None and hint_claims.get("sid") == session.sid:
            confirmed = True  # the RP proved the session with its own ID token
        elif request.method == "POST" and params.get("confirm") == "yes":
            value = broker.cookies.get(request, BROWSER_COOKIE) or ""
            confirmed = csrf_ok(broker.csrf_secret, value, params.get("csrf"))
        if session is not None and not confirmed:
            value, new = browser_id(request, broker.cookies)
            carry = [(k, params[k]) for k in ("client_id", "post_logout_redirect_uri", "state",
                                               "ui_locales") if params.get(k)]
            if client_id and "client_id" not in params:
                carry.append(("client_id", client_id))
            response = pages.render(request, "logout_confirm.html", {
                "csrf": csrf_token(broker.csrf_secret, value), "carry": carry,
                "ui_locales": params.get("ui_locales")})
            if new:
                broker.cookies.set(response, BROWSER_COOKIE, value)
            return response

        task = None
        if session is not None:
            ended = await end_session(broker, session.sid)
            if ended is not None:
                task = BackgroundTask(send_backchannel, broker, ended)
        if target:
            params_out = [("state", params["state"])] if params.get("state") else []
            response = Response(status_code=303, headers={"Location": add_query(target, params_out)})
        else:
            response = pages.render(request, "logged_out.html", {"ui_locales": params.get("ui_locales")})
        broker.cookies.clear(response, SSO_COOKIE)
        response.background = task
        return response

"""RP-initiated logout 1.0 and Back-Channel Logout 1.0.

Logout ends the SSO session, stops the refresh tokens issued under it, and tells every
client of the session that registered a `backchannel_logout_uri` (concurrently, with a
timeout and a few retries, after the person's page has been answered).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import Broker
from ..ids import new_id
from ..security import BROWSER_COOKIE, browser_id, csrf_ok, csrf_token
from ..session import SSO_COOKIE, Sessions, SsoSession
from .claims import subject_for
from .responses import add_query

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..config import Settings
    from ..store import Store
    from .clients import Client, ClientRegistry
    from .tokens import Signer

log = logging.getLogger(__name__)
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Delivery: each client gets ATTEMPTS tries of at most TIMEOUT seconds, with a short
# backoff between them; all clients concurrently. A round is bounded (3*3 + 0.5 + 1 =
# 10.5 s by default), so it ends within uvicorn's graceful shutdown (20 s by default).
BACKCHANNEL_TIMEOUT = 3.0
BACKCHANNEL_ATTEMPTS = 3
BACKCHANNEL_BACKOFF = 0.5


class LogoutContext(Protocol):
    """What ending a session needs. The server's `Broker` has it; so does the admin CLI,
    which runs as its own process without the web app."""

    settings: Settings
    store: Store
    sessions: Sessions
    signer: Signer
    clients: ClientRegistry
    audit: AuditLog
    http: httpx.AsyncClient

    @property
    def issuer(self) -> str: ...


async def end_session(ctx: LogoutContext, sid: str, reason: str = "logout") -> SsoSession | None:
    """End one SSO session: the store record, and (through the sid-ended marker) every
    refresh token issued under it. Returns the session when it was live, so the caller
    can tell its clients over the back-channel."""
    session = await ctx.sessions.end(sid)
    ctx.audit.event("logout", sid=sid, reason=reason,
                    user=session.user.get("id") if session else None,
                    clients=sorted(session.clients) if session else None)
    return session


def logout_token(ctx: LogoutContext, session: SsoSession, client: Client) -> str:
    """Back-Channel Logout 1.0 section 2.4: signed like the client's ID tokens, typ
    logout+jwt, `sid` and `sub` as in its ID tokens, the logout event, never a nonce."""
    now = int(time.time())
    return ctx.signer.sign({
        "iss": ctx.issuer, "aud": client.client_id, "iat": now, "exp": now + 120,
        "jti": new_id(), "sid": session.sid,
        "sub": subject_for(session.user["id"], client.settings, ctx.settings.pairwise_salt),
        "events": {BACKCHANNEL_EVENT: {}},
    }, client.settings.id_token_signed_response_alg, typ="logout+jwt")


async def _deliver(ctx: LogoutContext, client: Client, token: str, attempts: int,
                   per_call: float) -> bool:
    uri = client.settings.backchannel_logout_uri
    if not uri:
        return False
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(BACKCHANNEL_BACKOFF * (2 ** (attempt - 1)))
        try:
            resp = await ctx.http.post(uri, data={"logout_token": token}, timeout=per_call,
                                       headers={"Cache-Control": "no-store"})
        except httpx.HTTPError as exc:
            log.warning("back-channel logout to %s failed: %s", client.client_id,
                        type(exc).__name__)
            continue
        if resp.status_code in (200, 204):
            return True
        log.warning("back-channel logout to %s answered %s", client.client_id, resp.status_code)
        if resp.status_code < 500:
            return False  # the RP rejected the token (or redirects): retrying will not help
    return False


async def send_backchannel(ctx: LogoutContext, session: SsoSession, *,
                           attempts: int | None = None,
                           per_call: float | None = None) -> dict[str, bool]:
    """POST a logout_token to each client of the session that registered a
    `backchannel_logout_uri`, concurrently; returns client -> delivered (audited)."""
    attempts = attempts or BACKCHANNEL_ATTEMPTS
    per_call = per_call or BACKCHANNEL_TIMEOUT
    targets = [c for c in (ctx.clients.get(cid) for cid in session.clients)
               if c is not None and c.settings.backchannel_logout_uri]
    if not targets:
        return {}
    results = await asyncio.gather(
        *(_deliver(ctx, c, logout_token(ctx, session, c), attempts, per_call) for c in targets),
        return_exceptions=True)
    outcome = {c.client_id: r is True for c, r in zip(targets, results, strict=True)}
    for c, r in zip(targets, results, strict=True):
        if isinstance(r, BaseException):
            log.error("back-channel logout to %s crashed: %r", c.client_id, r)
    ctx.audit.event("backchannel_logout", sid=session.sid, delivered=outcome)
    return outcome


def backchannel_task(ctx: LogoutContext, session: SsoSession | None) -> BackgroundTask | None:
    """Deliver after the response has been sent. Starlette runs it once the last byte is
    out, so the person (or the RP at /token) never waits for a slow or dead RP; uvicorn
    counts it as in-flight work and lets it finish on a graceful shutdown. A crash of the
    process loses undelivered tokens (back-channel logout is best effort by design; the
    ended session still stops every refresh token)."""
    if session is None or not session.clients:
        return None
    return BackgroundTask(send_backchannel, ctx, session)


async def end_and_notify(ctx: LogoutContext, sid: str, reason: str) -> dict[str, bool]:
    """End a session and wait for the back-channel deliveries (admin CLI)."""
    session = await end_session(ctx, sid, reason)
    return await send_backchannel(ctx, session) if session is not None else {}


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
        target = params.pop("post_logout_redirect_uri", None)
        bad_target = bool(target) and (
            client is None or target not in client.settings.post_logout_redirect_uris)
        if bad_target:
            # Never redirect there; still log out (when confirmed) and say so, so that a
            # misconfigured RP does not leave someone logged in on a shared workstation.
            target = None
        elif target:
            params["post_logout_redirect_uri"] = target

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
            task = backchannel_task(broker, await end_session(broker, session.sid))
        if target:
            params_out = [("state", params["state"])] if params.get("state") else []
            response = Response(status_code=303, headers={"Location": add_query(target, params_out)})
        else:
            response = pages.render(request, "logged_out.html", {"ui_locales": params.get("ui_locales")},
                                    status_code=400 if bad_target else 200)
        broker.cookies.clear(response, SSO_COOKIE)
        response.background = task
        return response

"""RP-initiated logout 1.0, and ending a session wherever it ends.

Ending a session (logout, withdrawal, an admin's revoke, another person logging in on the
same browser) stops the refresh tokens issued under it and puts a back-channel logout
notification for each of its RPs into the outbox before anyone is answered; the couriers
deliver them (see `backchannel.py`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import Broker
from ..security import BROWSER_COOKIE, browser_id
from ..session import SSO_COOKIE, Sessions, SsoSession
from .responses import add_query

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..config import Settings
    from ..store import Store
    from .backchannel import Courier, Outbox
    from .clients import ClientRegistry
    from .signer import Signer

log = logging.getLogger(__name__)


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
    outbox: Outbox
    courier: Courier

    @property
    def issuer(self) -> str: ...


async def _end(ctx: LogoutContext, sid: str, reason: str) -> tuple[SsoSession | None, list[str]]:
    session = await ctx.sessions.end(sid)
    ctx.audit.event("logout", sid=sid, reason=reason,
                    user=session.user.get("id") if session else None,
                    clients=sorted(session.clients) if session else None)
    return session, (await ctx.outbox.enqueue(session) if session is not None else [])


async def end_session(ctx: LogoutContext, sid: str, reason: str = "logout") -> SsoSession | None:
    """End one SSO session: the store record, and (through the sid-ended marker) every
    refresh token issued under it; its RPs' notifications are in the outbox when this
    returns. Returns the session when it was live."""
    session, _ = await _end(ctx, sid, reason)
    return session


def deliver_soon(ctx: LogoutContext, session: SsoSession | None) -> BackgroundTask | None:
    """Once the response is out, wake this replica's courier for what was just enqueued
    (any replica would deliver it within a second anyway)."""
    if session is None or not session.clients:
        return None
    return BackgroundTask(ctx.courier.kick)


async def end_and_notify(ctx: LogoutContext, sid: str, reason: str) -> dict[str, bool]:
    """End a session and try its deliveries at once (the admin CLI reports them); what
    fails stays in the outbox for the replicas."""
    session, ids = await _end(ctx, sid, reason)
    return await ctx.courier.deliver_now(ids) if session is not None else {}


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
            confirmed = broker.csrf.valid(_logout_binding(value), params.get("csrf"))
        if session is not None and not confirmed:
            value, new = browser_id(request, broker.cookies)
            carry = [(k, params[k]) for k in ("client_id", "post_logout_redirect_uri", "state",
                                               "ui_locales") if params.get(k)]
            if client_id and "client_id" not in params:
                carry.append(("client_id", client_id))
            response = pages.render(request, "logout_confirm.html", {
                "csrf": broker.csrf.token(_logout_binding(value)), "carry": carry,
                "ui_locales": params.get("ui_locales")})
            if new:
                broker.cookies.set(response, BROWSER_COOKIE, value)
            return response

        task = None
        if session is not None:
            task = deliver_soon(broker, await end_session(broker, session.sid))
        if target:
            params_out = [("state", params["state"])] if params.get("state") else []
            response = Response(status_code=303, headers={"Location": add_query(target, params_out)})
        else:
            response = pages.render(request, "logged_out.html", {"ui_locales": params.get("ui_locales")},
                                    status_code=400 if bad_target else 200)
        broker.cookies.clear(response, SSO_COOKIE)
        response.background = task
        return response


def _logout_binding(browser: str) -> str:
    """What the logout confirmation's CSRF token is bound to: this browser."""
    return "logout|" + browser

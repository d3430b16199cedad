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
    from .clients import Client, ClientRegistry
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


class LogoutRequestError(Exception):
    """A logout request that names a client or ID token we cannot accept: a page, never a
    redirect. `key` picks the message, `detail` fills it in."""

    def __init__(self, key: str, detail: str | None = None) -> None:
        super().__init__(detail or key)
        self.key = key
        self.detail = detail


class LogoutEndpoint:
    """RP-initiated logout: the steps of one request are the methods below, in order."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def routes(self) -> list[Route]:
        return [Route("/logout", self.logout, methods=["GET", "POST"])]

    async def logout(self, request: Request) -> Response:
        broker = self.broker
        params = await _params(request)
        try:
            hint = self._hint(params.get("id_token_hint"))
            client_id, client = self._client(params.get("client_id"), hint)
        except LogoutRequestError as exc:
            extra = {"detail": exc.detail} if exc.detail else {}
            return broker.pages.error(request, exc.key, **extra)
        target = params.pop("post_logout_redirect_uri", None)
        # Never redirect to an unregistered target; still log out (when confirmed) and say
        # so, so that a misconfigured RP does not leave someone logged in on a shared
        # workstation.
        bad_target = bool(target) and (
            client is None or target not in client.settings.post_logout_redirect_uris)
        if target and not bad_target:
            params["post_logout_redirect_uri"] = target
        else:
            target = None

        session = await broker.sessions.load(broker.cookies.get(request, SSO_COOKIE))
        if session is not None and not self._confirmed(request, params, hint, session):
            return self._confirmation_page(request, params, client_id)
        task = None
        if session is not None:
            task = deliver_soon(broker, await end_session(broker, session.sid))
        if target:
            state = [("state", params["state"])] if params.get("state") else []
            response = Response(status_code=303, headers={"Location": add_query(target, state)})
        else:
            response = broker.pages.render(request, "logged_out.html",
                                           {"ui_locales": params.get("ui_locales")},
                                           status_code=400 if bad_target else 200)
        broker.cookies.clear(response, SSO_COOKIE)
        response.background = task
        return response

    def _hint(self, id_token_hint: str | None) -> dict[str, Any] | None:
        """The claims of the ID token the RP sent, when it sent one of ours."""
        if not id_token_hint:
            return None
        try:
            return self.broker.signer.verify(id_token_hint, check_exp=False)
        except ValueError:
            raise LogoutRequestError("error_request", "invalid id_token_hint") from None

    def _client(self, client_id: str | None, hint: dict[str, Any] | None,
                ) -> tuple[str | None, Client | None]:
        """The client asking: `client_id`, or the audience of the ID token; both must agree."""
        if hint is not None:
            aud = hint.get("aud")
            aud_id = aud if isinstance(aud, str) else (aud[0] if aud else None)
            if client_id and client_id != aud_id:
                raise LogoutRequestError("error_request",
                                         "client_id does not match the id_token_hint")
            client_id = aud_id
        client = self.broker.clients.get(client_id) if client_id else None
        if client_id and client is None:
            raise LogoutRequestError("error_invalid_client")
        return client_id, client

    def _confirmed(self, request: Request, params: dict[str, str],
                   hint: dict[str, Any] | None, session: SsoSession) -> bool:
        """The RP proved the session with its own ID token, or the person confirmed on our
        page (its CSRF token bound to this browser)."""
        if hint is not None and hint.get("sid") == session.sid:
            return True
        if request.method == "POST" and params.get("confirm") == "yes":
            value = self.broker.cookies.get(request, BROWSER_COOKIE) or ""
            return self.broker.csrf.valid(_logout_binding(value), params.get("csrf"))
        return False

    def _confirmation_page(self, request: Request, params: dict[str, str],
                           client_id: str | None) -> Response:
        """"Log out?", carrying what the RP asked for through the confirmation."""
        broker = self.broker
        value, new = browser_id(request, broker.cookies)
        carry = [(k, params[k]) for k in ("client_id", "post_logout_redirect_uri", "state",
                                           "ui_locales") if params.get(k)]
        if client_id and "client_id" not in params:
            carry.append(("client_id", client_id))
        response = broker.pages.render(request, "logout_confirm.html", {
            "csrf": broker.csrf.token(_logout_binding(value)), "carry": carry,
            "ui_locales": params.get("ui_locales")})
        if new:
            broker.cookies.set(response, BROWSER_COOKIE, value)
        return response


async def _params(request: Request) -> dict[str, str]:
    if request.method == "POST":
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return dict(request.query_params)

def _logout_binding(browser: str) -> str:
    """What the logout confirmation's CSRF token is bound to: this browser."""
    return "logout|" + browser

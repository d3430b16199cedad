"""The admin app logs its staff in as a relying party of this very broker.

`/admin/login` sends the browser to `/authorize` as the built-in client (code flow, PKCE
S256, state, nonce), so staff meet the same login pages, BankID or SITHS, the same
authorization check and role picker as in Lifecare. `/admin/callback` redeems the code at
the broker's own token endpoint, called in process through the ASGI app (same client
authentication and code rules, no network hop), verifies the ID token (signature,
issuer, audience, nonce) and starts an admin session: a random cookie value, of which
only a hash is kept in the store, with an idle and an absolute lifetime.

The client secret is derived from the broker's shared secret (`KeyRing.derived_keys`), so
every replica and worker knows the same one and nothing else has it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp

from ..config import ClientSettings
from .settings import AdminSettings

if TYPE_CHECKING:
    from ..context import Broker

log = logging.getLogger(__name__)

SESSION_COOKIE = "broker_admin"
STATE_COOKIE = "broker_admin_login"


def admin_client(settings: AdminSettings, issuer: str, secret: str) -> ClientSettings:
    """The built-in client the admin app logs in as (added to the registry by the app)."""
    return ClientSettings(
        client_id=settings.client_id, client_name="Behörighetsadministration",
        client_secret=secret, token_endpoint_auth_method="client_secret_basic",
        redirect_uris=[f"{issuer}/admin/callback"],
        post_logout_redirect_uris=[f"{issuer}/admin/"],
        scopes=["openid", "profile", "assignments"],
    )


@dataclass
class AdminSession:
    """What the admin app keeps about a logged-in administrator (in the store)."""

    user_id: str
    assignment_id: str
    id_token: str
    created: float
    sid: str

    @property
    def binding(self) -> str:
        """What CSRF tokens of this session are bound to."""
        return "admin|" + self.sid


class LoginError(Exception):
    """The callback cannot log anyone in; `key` names the message shown."""

    def __init__(self, key: str, status_code: int = 400) -> None:
        super().__init__(key)
        self.key = key
        self.status_code = status_code


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AdminLogin:
    def __init__(self, broker: Broker, settings: AdminSettings, client: ClientSettings) -> None:
        self.broker = broker
        self.settings = settings
        self.client = client
        self.app: ASGIApp | None = None  # the broker's ASGI app, set by the app factory

    @property
    def callback_uri(self) -> str:
        return self.client.redirect_uris[0]

    # -- login --------------------------------------------------------------------------
    async def start(self, request: Request, locale: str, next_path: str = "/admin/") -> Response:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        await self.broker.store.put(f"admin:login:{_digest(state)}", {
            "nonce": nonce, "verifier": verifier, "next": _local(next_path)},
            self.broker.settings.login.transaction_ttl)
        query = urlencode({
            "response_type": "code", "client_id": self.client.client_id,
            "redirect_uri": self.callback_uri, "scope": "openid assignments", "state": state,
            "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
            "ui_locales": locale,
        })
        response = RedirectResponse(f"/authorize?{query}", status_code=303)
        self.broker.cookies.set(response, STATE_COOKIE, state,
                                max_age=self.broker.settings.login.transaction_ttl)
        return response

    async def finish(self, request: Request) -> tuple[str, AdminSession, str]:
        """Check the callback; returns (cookie value, session, where to go next)."""
        params = request.query_params
        state = params.get("state") or ""
        cookie = self.broker.cookies.get(request, STATE_COOKIE)
        if not state or not cookie or not secrets.compare_digest(state, cookie):
            raise LoginError("admin_error_login_state")
        pending = await self.broker.store.take(f"admin:login:{_digest(state)}")
        if pending is None:
            raise LoginError("admin_error_login_state")
        if params.get("error"):
            if params["error"] == "access_denied":
                raise LoginError("admin_error_no_rights", 403)
            raise LoginError("admin_error_login_failed")
        code = params.get("code")
        if not code:
            raise LoginError("admin_error_login_failed")
        id_token = await self._redeem(code, pending["verifier"])
        claims = self._verify(id_token, pending["nonce"])
        assignment_id = claims.get("commissionHsaId")
        if not isinstance(assignment_id, str):
            raise LoginError("admin_error_no_rights", 403)
        value = secrets.token_urlsafe(32)
        session = AdminSession(user_id=claims["sub"], assignment_id=assignment_id,
                               id_token=id_token, created=time.time(),
                               sid=secrets.token_urlsafe(16))
        await self.save(value, session)
        return value, session, pending.get("next") or "/admin/"

    async def _redeem(self, code: str, verifier: str) -> str:
        if self.app is None:
            raise RuntimeError("AdminLogin.app is not wired")
        transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=self.broker.issuer,
                                     timeout=10) as client:
            response = await client.post("/token", data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": self.callback_uri, "code_verifier": verifier,
            }, auth=(self.client.client_id, self.client.client_secret or ""))
        if response.status_code == 503:
            raise LoginError("error_unavailable", 503)
        if response.status_code != 200:
            log.warning("admin login: the token endpoint answered %s", response.status_code)
            raise LoginError("admin_error_login_failed")
        token = response.json().get("id_token")
        if not isinstance(token, str):
            raise LoginError("admin_error_login_failed")
        return token

    def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            claims = self.broker.signer.verify(id_token)
        except ValueError:
            raise LoginError("admin_error_login_failed") from None
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if (claims.get("iss") != self.broker.issuer or self.client.client_id not in audiences
                or not isinstance(claims.get("nonce"), str)
                or not secrets.compare_digest(claims["nonce"], nonce)
                or not isinstance(claims.get("sub"), str)):
            raise LoginError("admin_error_login_failed")
        return claims

    # -- sessions -----------------------------------------------------------------------
    def _key(self, value: str) -> str:
        return f"admin:session:{_digest(value)}"

    async def save(self, value: str, session: AdminSession) -> None:
        left = self.settings.session.absolute_timeout - (time.time() - session.created)
        ttl = int(min(self.settings.session.idle_timeout, left))
        if ttl > 0:
            await self.broker.store.put(self._key(value), asdict(session), ttl)

    async def load(self, request: Request) -> tuple[str, AdminSession] | None:
        value = self.broker.cookies.get(request, SESSION_COOKIE)
        if not value or len(value) > 64:
            return None
        record = await self.broker.store.get(self._key(value))
        if record is None:
            return None
        session = AdminSession(**record)
        if time.time() - session.created > self.settings.session.absolute_timeout:
            await self.broker.store.delete(self._key(value))
            return None
        return value, session

    async def end(self, value: str) -> None:
        await self.broker.store.delete(self._key(value))

    def set_cookie(self, response: Response, value: str) -> None:
        self.broker.cookies.set(response, SESSION_COOKIE, value)
        self.broker.cookies.clear(response, STATE_COOKIE)

    def clear_cookie(self, response: Response) -> None:
        self.broker.cookies.clear(response, SESSION_COOKIE)

    def logout_url(self, session: AdminSession) -> str:
        """RP-initiated logout at the broker: ends the SSO session too (a shared computer)."""
        return "/logout?" + urlencode({
            "id_token_hint": session.id_token, "client_id": self.client.client_id,
            "post_logout_redirect_uri": self.client.post_logout_redirect_uris[0]})


def _local(path: str) -> str:
    """Only paths inside the admin app are places to return to after login."""
    return path if path.startswith("/admin/") and "//" not in path and "\\" not in path \
        else "/admin/"

"""The SITHS login pages: a hop to the dedicated mTLS host and back.

The main broker host never asks for a client certificate (a certificate prompt on every
page, for BankID users too, would be wrong); a separate host name (`login_url`) does, in
nginx (proxy mode, recommended) or in uvicorn (direct mode, `host.py`). One app serves both
hosts; the connector is mounted at `/login/siths`:

    main host   POST /login/<txn>/method -> start(): 303 to  <login_url>?ref=<ref>
    SITHS host  GET  /login/siths/?ref=  -> take the ref once, read + verify the
                                            certificate, keep the outcome under <result>,
                                            303 to {issuer}/login/siths/return?result=
    main host   GET  /login/siths/return -> Flow.load (browser-binding cookie of the main
                                            host), take the result once, finish or fail
    any host    GET  /login/siths/error  -> a proxy that rejected the certificate itself
                                            sends the browser here (no reference left)

Why two single-use references and not the transaction id: the SITHS host cannot see the
main host's cookies (another host name), so it cannot tell which browser is calling; a
reference that works once and for two minutes is all it trusts, and it never names the
transaction in the URL. The result comes back through the main host, where the browser
binding of `Flow.load` decides: a result carried to another browser (login CSRF, a shared
link) is refused there. Only hashes of both references are keys in the store.

Nothing about the person is shown on the SITHS host, and the identity is only stored after
the certificate passed path validation and revocation (`SithsAuthenticator`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ...config import ConfigError
from ...login_transaction import LoginTransaction
from ..base import LOA2, LOA3, ConnectorContext, Identity, LoginFailure
from . import messages
from .authenticator import SithsAuthenticator
from .settings import SithsSettings
from .validation import SithsLoginFailure, TrustAnchors

log = logging.getLogger(__name__)

NAME = "siths"

#: How long the way to the SITHS host may take (PIN entry included) and the way back.
REF_TTL = 120
RESULT_TTL = 60
# Keys of the connector's records (under "siths:" in the store).
REF_PREFIX = "ref:"
RESULT_PREFIX = "result:"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _new_reference() -> tuple[str, str]:
    """A random reference for the URL and the hash that is its key in the store."""
    ref = secrets.token_urlsafe(32)
    return ref, _digest(ref)


def _digest(ref: str) -> str:
    return hashlib.sha256(b"siths-ref|" + ref.encode()).hexdigest()


def _plausible(ref: str | None) -> bool:
    return bool(ref) and 32 <= len(ref or "") <= 64


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _origin(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def acr_values(settings: SithsSettings) -> tuple[str, ...]:
    """The levels a SITHS login can reach: reserve cards give LoA 2, offered only when they
    may log in at all."""
    return (LOA3, LOA2) if settings.trust.allow_reserve_cards else (LOA3,)


class SithsConnector:
    """Connector protocol for SITHS cards (see the module docstring for the route map)."""

    name = NAME

    def __init__(self, ctx: ConnectorContext, settings: SithsSettings,
                 authenticator: SithsAuthenticator) -> None:
        if not settings.login_url:
            raise ValueError("login_url is required")
        self.records = ctx.records
        self.pages = ctx.pages
        self.flow = ctx.flow
        self.settings = settings
        self.auth = authenticator
        self.acr_values = acr_values(settings)
        self.login_url = settings.login_url
        self.return_url = f"{ctx.issuer}/login/{NAME}/return"
        self._host, self._port = _origin(settings.login_url)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.certificate_login, methods=["GET"]),
            Route("/return", self.back_on_main_host, methods=["GET"]),
            Route("/error", self.rejected_by_proxy, methods=["GET"]),
        ]

    # -- main host: off to the SITHS host -------------------------------------------------
    async def start(self, request: Request, txn: LoginTransaction) -> Response:
        store = self.records
        ref, key = _new_reference()
        await store.put(REF_PREFIX + key, {"txn": txn.id}, REF_TTL)
        previous = txn.upstream.get(NAME, {}).get("ref")
        if previous:
            await store.delete(REF_PREFIX + previous)  # only the newest hop is valid
        txn.upstream[NAME] = {"ref": key}
        await self.flow.save(txn)
        return RedirectResponse(_with_query(self.login_url, ref=ref), status_code=303)

    # -- SITHS host: the certificate ------------------------------------------------------
    def on_siths_host(self, request: Request) -> bool:
        """Whether the request came in on the login_url host.

        A port in Host must match; a proxy that drops the port (`Host $host`) still matches
        on the name. The main host (another name, or the same name on another port in the
        demo) gets a 404 here, so it can never act as the certificate endpoint.
        """
        raw = request.headers.get("host", "")
        try:
            parts = urlsplit(f"//{raw}")
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            return False
        return host == self._host and (port is None or port == self._port)

    async def certificate_login(self, request: Request) -> Response:
        if not self.on_siths_host(request):
            raise HTTPException(404)
        store, pages = self.records, self.pages
        ref = request.query_params.get("ref")
        record = await store.take(REF_PREFIX + _digest(ref)) if _plausible(ref) else None
        if record is None:
            log.warning("SITHS login reference unknown, expired or already used")
            return pages.error(request, messages.LINK_USED, status_code=400)
        txn = await self.flow.find(record["txn"])
        if txn is None or txn.method != NAME:
            return pages.error(request, "error_expired", status_code=410)
        try:
            identity = await self.auth.authenticate(self.auth.certificate(request.scope))
            outcome: dict[str, Any] = {"identity": identity.to_record()}
        except SithsLoginFailure as failure:
            log.info("SITHS login failed for txn %s: %s", txn.id, failure)
            outcome = {"failure": failure.code}
        result, key = _new_reference()
        await store.put(RESULT_PREFIX + key, {"txn": txn.id, **outcome}, RESULT_TTL)
        return RedirectResponse(_with_query(self.return_url, result=result), status_code=303)

    # -- main host: back with the outcome ------------------------------------------------
    async def back_on_main_host(self, request: Request) -> Response:
        store, pages = self.records, self.pages
        result = request.query_params.get("result")
        key = RESULT_PREFIX + _digest(result) if _plausible(result) else None
        record = await store.get(key) if key else None
        if record is None:
            return pages.error(request, messages.LINK_USED, status_code=400)
        # The browser check comes before the result is used up: a link carried to another
        # browser is refused there and cannot spoil the login of the person it belongs to.
        txn = await self.flow.load(request, record["txn"])
        if txn.method != NAME or await store.take(key) is None:
            return pages.error(request, messages.LINK_USED, status_code=400)
        if "identity" in record:
            return await self.flow.finish(request, txn, Identity.from_record(record["identity"]))
        return await self.flow.fail(request, txn, LoginFailure(record["failure"]))

    async def rejected_by_proxy(self, request: Request) -> Response:
        """Where a proxy that checks certificates itself sends the browser on a failed check
        (ingress-nginx `auth-tls-error-page`): the reference is lost by then, so all we can
        say is what to do next."""
        return self.pages.error(request, messages.REJECTED_BY_PROXY, status_code=400)

    async def aclose(self) -> None:
        await self.auth.aclose()


def create(ctx: ConnectorContext) -> SithsConnector:
    """Factory named by `broker.app.default_connectors` (connectors.siths in the config)."""
    settings = ctx.settings
    siths = settings.connectors.siths
    where = f"{settings.source}: connectors.siths"
    if siths is None:
        raise ConfigError(f"{where}: missing")
    if not siths.login_url:
        raise ConfigError(
            f"{where}.login_url: required - the https URL of the dedicated client-certificate "
            "host, e.g. https://siths.login.example.kommun.se/login/siths/")
    if _origin(siths.login_url) == _origin(settings.issuer):
        raise ConfigError(
            f"{where}.login_url: must be another host than the issuer: the main host never asks "
            "for a client certificate")
    if urlsplit(siths.login_url).path != f"/login/{NAME}/":
        raise ConfigError(f"{where}.login_url: the path must be /login/{NAME}/ (where the "
                          "connector is mounted)")
    try:
        trust = TrustAnchors.load(settings.path(siths.trust.ca_bundle))
    except ValueError as exc:
        raise ConfigError(f"{where}.trust.ca_bundle: {exc}") from None
    ctx.pages.add(texts=messages.MESSAGES)
    authenticator = SithsAuthenticator(siths, ctx.records, trust=trust, http=ctx.http)
    return SithsConnector(ctx, siths, authenticator)

"""The BankID login pages: device choice, animated QR or autostart, status, cancel.

    /login/bankid/<txn>/start    POST  start an order (explicit action; rate-limited)
    /login/bankid/<txn>/wait     GET   the waiting page (QR or "open BankID")
    /login/bankid/<txn>/status   GET   JSON for the page's poll, about once a second
    /login/bankid/<txn>/finish   GET   hand the identity to the provider once complete
    /login/bankid/<txn>/cancel   POST  cancel the order (button, or the page going away)

The order lives in the login transaction (`txn.upstream["bankid"]`), so any replica can
serve any poll; `/collect` runs at most every 2 s per order however many tabs poll, and
`qrStartSecret` never leaves the server: the page gets rendered QR images only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...identifiers import IdentifierError, check_personal_number
from ...security import equal_secrets
from ...web.messages import add_messages
from ...web.pages import pick_locale
from ..base import LOA3, LoginFailure
from .client import client_from_settings
from .errors import BankIDError
from .flow import BankIDOrders, OrderState, error_message, identity_from_completion
from .models import COMPLETE, FAILED, WebContext
from .ratelimit import check_start_rate
from .settings import BankIDSettings

log = logging.getLogger("broker.bankid")
TEMPLATES = Path(__file__).parent / "templates"
_MOBILE = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)

MESSAGES = {
    "sv": {
        "bankid_title": "Logga in med BankID",
        "bankid_this_device": "BankID på den här enheten",
        "bankid_other_device": "BankID på en annan enhet",
        "bankid_personal_number": "Personnummer (ÅÅÅÅMMDDNNNN)",
        "bankid_open_app": "Öppna BankID-appen",
        "bankid_scan": "Starta BankID-appen och skanna QR-koden.",
        "bankid_rate_ip": "För många inloggningsförsök från din adress. Vänta en minut och försök igen.",
        "bankid_rate_transaction": "För många försök i den här inloggningen. Gå tillbaka till tjänsten och börja om.",
        "bankid_try_again": "Försök igen",
        "bankid_refresh": "Uppdatera",
        "bankid_failed": "Inloggningen med BankID avbröts.",
    },
    "en": {
        "bankid_title": "Log in with BankID",
        "bankid_this_device": "BankID on this device",
        "bankid_other_device": "BankID on another device",
        "bankid_personal_number": "Personal identity number (YYYYMMDDNNNN)",
        "bankid_open_app": "Open the BankID app",
        "bankid_scan": "Start the BankID app and scan the QR code.",
        "bankid_rate_ip": "Too many login attempts from your address. Wait a minute and try again.",
        "bankid_rate_transaction": "Too many attempts in this login. Go back to the service and start again.",
        "bankid_try_again": "Try again",
        "bankid_refresh": "Refresh",
        "bankid_failed": "The BankID login was interrupted.",
    },
}


def qr_image(payload: str) -> str:
    """The QR code as an SVG data URI (allowed by our CSP's img-src data:)."""
    return segno.make(payload, error="l").svg_data_uri(scale=6, border=2)


class BankIDConnector:
    name = "bankid"
    acr_values = (LOA3,)

    def __init__(self, broker: Any, flow: Any, settings: BankIDSettings,
                 transport: httpx.AsyncBaseTransport | None = None,
                 launch_base: str | None = None) -> None:
        self.broker = broker
        self.flow = flow
        self.settings = settings
        self.client = client_from_settings(settings, base_dir=broker.settings.base_dir,
                                           transport=transport)
        self.orders = BankIDOrders(self.client, settings, store=broker.store)
        # Where the autostart link points: the BankID app, or the simulator's app page.
        self.launch_base = launch_base
        add_messages(MESSAGES)
        broker.pages.add_template_dir(TEMPLATES)

    def routes(self) -> list[Route]:
        return [
            Route("/{txn_id}/start", self.start_order, methods=["POST"]),
            Route("/{txn_id}/wait", self.wait, methods=["GET"]),
            Route("/{txn_id}/status", self.status, methods=["GET"]),
            Route("/{txn_id}/finish", self.finish, methods=["GET"]),
            Route("/{txn_id}/cancel", self.cancel, methods=["POST"]),
        ]

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- pages ---------------------------------------------------------------------------
    async def start(self, request: Request, txn: Any, error_key: str | None = None,
                    error_text: str | None = None, status_code: int = 200) -> Response:
        """The device choice (RFA20); an order starts only when the person picks one."""
        return self.flow.render(request, "bankid_choose.html", {
            "txn_id": txn.id, "csrf": txn.csrf, "ui_locales": txn.params.get("ui_locales"),
            "client_name": self._client_name(txn), "mobile": self._mobile(request),
            "personal_number_field": self.settings.personal_number_field,
            "error_key": error_key, "error_text": error_text,
        }, status_code)

    async def start_order(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        form = await request.form()
        if form.get("csrf") != txn.csrf:
            return self.broker.pages.error(request, "error_csrf", status_code=403)
        flow = "autostart" if form.get("device") == "this" else "qr"
        personal_number = None
        if self.settings.personal_number_field and form.get("personal_number"):
            try:
                personal_number = check_personal_number(str(form["personal_number"]))
            except IdentifierError as exc:
                return await self.start(request, txn, error_text=str(exc), status_code=400)
        client_ip = self.broker.proxies.client_ip(request)
        exceeded = await check_start_rate(self.broker.store, self.settings.rate_limits,
                                          client_ip=client_ip, txn_id=txn.id)
        if exceeded:
            return await self.start(request, txn, error_key=f"bankid_rate_{exceeded}",
                                    status_code=429)
        previous = txn.upstream.get("bankid")
        if previous:
            await self.orders.cancel(OrderState.from_record(previous["order"]))
        nonce = secrets.token_urlsafe(16)
        return_url = f"{self.broker.issuer}/login/bankid/{txn.id}/wait?nonce={nonce}"
        try:
            state = await self.orders.start(
                end_user_ip=client_ip, flow=flow, client_name=self._client_name(txn),
                web=self._web(request), return_url=return_url if flow == "autostart" else None,
                personal_number=personal_number)
        except BankIDError as exc:
            self.broker.metrics.record_bankid(error_code=exc.error_code)
            msg = error_message(exc)
            lang = pick_locale(request, txn.params.get("ui_locales"))
            return await self.start(request, txn, error_text=msg.sv if lang == "sv" else msg.en,
                                    status_code=503 if exc.error_code in ("maintenance", "internalError") else 400)
        txn.upstream["bankid"] = {"order": state.to_record(), "nonce": nonce}
        await self.flow.save(txn)
        return RedirectResponse(f"/login/bankid/{txn.id}/wait", status_code=303)

    async def wait(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        data = txn.upstream.get("bankid")
        if not data:
            return await self.start(request, txn)
        nonce = request.query_params.get("nonce")
        if nonce is not None and not equal_secrets(data["nonce"], nonce):
            return self.broker.pages.error(request, "error_wrong_browser", status_code=403)
        state = OrderState.from_record(data["order"])
        launch = None
        if state.flow == "autostart" and state.auto_start_token:
            launch = self._launch_url(request, state.auto_start_token)
        result = await self._poll(request, txn, state)
        return self.flow.render(request, "bankid_wait.html", {
            "txn_id": txn.id, "csrf": txn.csrf, "ui_locales": txn.params.get("ui_locales"),
            "client_name": self._client_name(txn), "flow": state.flow, "launch": launch,
            "qr": qr_image(result["qr"]) if result.get("qr") else None,
            "message": result["message"], "failed": result["status"] == FAILED,
        })

    async def status(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        data = txn.upstream.get("bankid")
        if not data:
            return JSONResponse({"status": "none"}, status_code=404)
        result = await self._poll(request, txn, OrderState.from_record(data["order"]))
        if result.get("qr"):
            result["qr"] = qr_image(result["qr"])
        return JSONResponse(result, headers={"Cache-Control": "no-store"})

    async def finish(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        data = txn.upstream.get("bankid") or {}
        completion = data.get("completion")
        if not completion:
            return RedirectResponse(f"/login/bankid/{txn.id}/wait", status_code=303)
        # Identity is read only from a completed order, and only now handed on.
        from .models import CompletionData

        identity = identity_from_completion(CompletionData.from_json(completion),
                                            order_ref=data["order"]["order_ref"])
        txn.upstream.pop("bankid", None)
        return await self.flow.finish(request, txn, identity)

    async def cancel(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        form = await request.form()
        if form.get("csrf") != txn.csrf:
            return self.broker.pages.error(request, "error_csrf", status_code=403)
        data = txn.upstream.pop("bankid", None)
        if data:
            await self.orders.cancel(OrderState.from_record(data["order"]))
            await self.flow.save(txn)
        if form.get("beacon"):
            return Response(status_code=204)
        return await self.start(request, txn)

    # -- helpers -------------------------------------------------------------------------
    async def _poll(self, request: Request, txn: Any, state: OrderState) -> dict[str, Any]:
        device = "mobile" if self._mobile(request) else "desktop"
        before = state.to_record()
        result = await self.orders.poll(state, device=device)
        lang = pick_locale(request, txn.params.get("ui_locales"))
        message = result.message
        out: dict[str, Any] = {
            "status": result.status, "hint": result.hint_code,
            "message": (message.sv if lang == "sv" else message.en) if message else None,
            "rfa": message.rfa if message else None, "qr": result.qr,
        }
        data = txn.upstream["bankid"]
        if result.status == COMPLETE and result.completion is not None:
            data["completion"] = dict(result.completion.raw)
            out["next"] = f"/login/bankid/{txn.id}/finish"
        if (state.hint_code, state.status, state.error_code) != (
                before.get("hint_code"), before.get("status"), before.get("error_code")):
            self.broker.metrics.record_bankid(hint_code=state.hint_code, error_code=state.error_code)
        if state.to_record() != before or "completion" in data:
            data["order"] = state.to_record()
            await self.flow.save(txn)
        if result.status == FAILED:
            self.broker.audit.event("bankid_failed", client=txn.client_id, txn=txn.id,
                                    hint=state.hint_code, error=state.error_code)
        return out

    def _launch_url(self, request: Request, token: str) -> str:
        if self.launch_base:
            return f"{self.launch_base}?autostarttoken={token}&redirect=null"
        if self._mobile(request):
            return f"https://app.bankid.com/?autostarttoken={token}&redirect=null"
        return f"bankid:///?autostarttoken={token}&redirect=null"

    def _web(self, request: Request) -> WebContext:
        value = self.broker.cookies.get(request, "broker_b") or ""
        device = hmac.new(self.broker.csrf_secret, b"bankid-device|" + value.encode(),
                          hashlib.sha256).hexdigest()[:32]
        host = urlsplit(self.broker.issuer).hostname or "localhost"
        return WebContext(device_identifier=device, referring_domain=host.lower(),
                          user_agent=request.headers.get("user-agent", "")[:256] or "unknown")

    def _mobile(self, request: Request) -> bool:
        return bool(_MOBILE.search(request.headers.get("user-agent", "")))

    def _client_name(self, txn: Any) -> str:
        client = self.broker.clients.get(txn.client_id)
        return client.settings.client_name if client else txn.client_id


def create(broker: Any, flow: Any) -> BankIDConnector:
    """Build from `connectors.bankid`. The simulator environment runs the simulator in
    this process (its API through an in-process transport, its app page mounted under
    /bankid-simulator) unless `base_url` points at a running one."""
    settings: BankIDSettings = broker.settings.connectors.bankid
    transport = None
    launch = None
    if settings.environment == "simulator" and not settings.base_url:
        from ...simulators.bankid import create_simulator_app
        from ...simulators.bankid_settings import from_config

        sim = create_simulator_app(from_config(settings.simulator, broker.settings.source))
        transport = httpx.ASGITransport(app=sim)
        broker.extra_mounts["/bankid-simulator"] = sim
        launch = "/bankid-simulator/app"
    elif settings.environment == "simulator":
        launch = settings.base_url.split("/rp/")[0] + "/app"
    connector = BankIDConnector(broker, flow, settings, transport=transport, launch_base=launch)
    return connector


__all__ = ["BankIDConnector", "LoginFailure", "create", "quote"]

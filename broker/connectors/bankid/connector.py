"""The BankID login pages: device choice, animated QR or autostart, status, cancel.

    /login/bankid/<txn>/start    POST  start an order (explicit action; rate-limited)
    /login/bankid/<txn>/wait     GET   the waiting page (QR or "Starta BankID-appen"); also
                                       the app's `returnUrl` (with `?nonce=`); once the
                                       order is complete, it hands the identity on itself
    /login/bankid/<txn>/status   GET   JSON for the page's poll, about once a second
    /login/bankid/<txn>/finish   GET   hand the identity to the provider once complete
    /login/bankid/<txn>/cancel   POST  cancel the order (Avbryt, or leaving for another method)

The order lives in the login transaction (`txn.upstream["bankid"]`), so any replica can
serve any poll; `/collect` runs at most every 2 s per order however many tabs poll, and
`qrStartSecret` never leaves the server: the page gets rendered QR images only.

Every request on the transaction can move the login on: whichever one first sees the
order complete (the page's poll, the app's return to `returnUrl`, a reload, a meta
refresh without JavaScript) hands the identity on (`wait`) or sends the browser to
`finish` (the poll's JSON), and so does every later one, because the completion is kept
in the order's record (see orders.py). The order survives
reloads and language switches; only Avbryt, leaving for another method, a new order or
BankID's own expiry end it.

On a computer the QR code shows at once, with "BankID på den här datorn" beside it
(RFA19). On a phone the device choice comes first (RFA20) and one tap opens the app: the
page's script starts the order and follows the autostart link within the same tap;
without the script the wait page offers "Starta BankID-appen" (RFA18).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...login_transaction import LoginTransaction
from ...security import equal_secrets
from ...web.pages import pick_locale
from ..base import LOA3, ConnectorContext
from .client import client_from_settings
from .entry import EntryError, parse_personal_number
from .errors import BankIDError, fault_kind
from .launch import Browser, detect, launch_url, return_url
from .messages import message as rfa_message
from .models import COMPLETE, FAILED, PENDING, CompletionData, WebContext
from .orders import BankIDOrders, OrderState, PollResult, error_message, identity_from_completion
from .ratelimit import StartLimits
from .settings import BankIDSettings

log = logging.getLogger("broker.bankid")
TEMPLATES = Path(__file__).parent / "templates"
# A second request that finds the completion being handed on waits this long at most.
FINISH_LOCK_SECONDS = 30

MESSAGES = {
    "sv": {
        "bankid_title": "Logga in med BankID",
        "bankid_this_device": "BankID på den här enheten",
        "bankid_other_device": "BankID på en annan enhet",
        "bankid_this_computer": "BankID på den här datorn",
        "bankid_mobile": "Mobilt BankID",
        "bankid_personal_number": "Personnummer (valfritt)",
        "bankid_personal_number_hint": "ÅÅMMDD-NNNN eller ÅÅÅÅMMDD-NNNN",
        "bankid_pnr_format": "Skriv personnumret med 10 eller 12 siffror, till exempel 900101-2385.",
        "bankid_pnr_date": "Personnumret börjar inte med ett giltigt datum.",
        "bankid_pnr_check_digit": "Personnumret stämmer inte. Kontrollera den sista siffran.",
        "bankid_start_app": "Starta BankID-appen",
        "bankid_qr_alt": "QR-kod för BankID. Starta BankID-appen och läs av koden.",
        "bankid_rate_ip": "För många inloggningsförsök från din adress. Vänta en minut och försök igen.",
        "bankid_rate_transaction": "För många försök i den här inloggningen. Gå tillbaka till tjänsten och börja om.",
        "bankid_try_again": "Försök igen",
        "bankid_other_method": "Välj ett annat sätt att logga in",
        "bankid_order_gone": "Inloggningen med BankID avbröts eller tog för lång tid. Tryck Försök igen för att starta en ny.",
        "bankid_continuing": "Du skickas vidare…",
    },
    "en": {
        "bankid_title": "Log in with BankID",
        "bankid_this_device": "BankID on this device",
        "bankid_other_device": "BankID on another device",
        "bankid_this_computer": "BankID on this computer",
        "bankid_mobile": "Mobile BankID",
        "bankid_personal_number": "Personal identity number (optional)",
        "bankid_personal_number_hint": "YYMMDD-NNNN or YYYYMMDD-NNNN",
        "bankid_pnr_format": "Enter the personal identity number with 10 or 12 digits, for example 900101-2385.",
        "bankid_pnr_date": "The personal identity number does not start with a valid date.",
        "bankid_pnr_check_digit": "The personal identity number is not correct. Check the last digit.",
        "bankid_start_app": "Start the BankID app",
        "bankid_qr_alt": "QR code for BankID. Start the BankID app and scan the code.",
        "bankid_rate_ip": "Too many login attempts from your address. Wait a minute and try again.",
        "bankid_rate_transaction": "Too many attempts in this login. Go back to the service and start again.",
        "bankid_try_again": "Try again",
        "bankid_other_method": "Choose another way to log in",
        "bankid_order_gone": "The BankID login was cancelled or took too long. Press Try again to start a new one.",
        "bankid_continuing": "Redirecting…",
    },
}


def qr_image(payload: str) -> str:
    """The QR code as an SVG data URI (allowed by our CSP's img-src data:)."""
    return segno.make(payload, error="l").svg_data_uri(scale=6, border=2)


@dataclass(frozen=True)
class Progress:
    """One look at the order, as the pages and the poll need it."""

    state: OrderState
    result: PollResult
    message: str | None
    rfa: str | None

    @property
    def complete(self) -> bool:
        return self.state.status == COMPLETE and self.result.completion is not None

    @property
    def failed(self) -> bool:
        return self.state.status == FAILED

    @property
    def gone(self) -> bool:
        """BankID no longer knows the order (cancelled elsewhere, collected, too old)."""
        return self.failed and self.state.error_code == "invalidParameters"

    @property
    def upstream_fault(self) -> bool:
        """Ended by BankID being unavailable, slow or limiting us: a 503, not the person."""
        code = self.state.error_code
        return self.failed and not self.gone and code is not None and fault_kind(code) != "person"


class BankIDConnector:
    name = "bankid"
    acr_values = (LOA3,)

    def __init__(self, ctx: ConnectorContext, settings: BankIDSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 launch_base: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.flow = ctx.flow
        self.settings = settings
        self.client = client_from_settings(settings, base_dir=ctx.settings.base_dir,
                                           transport=transport, clock=clock)
        self.orders = BankIDOrders(self.client, settings, store=ctx.records, clock=clock)
        self.starts = StartLimits(ctx.records, settings.rate_limits, clock)
        # Where the autostart link points: the BankID app, or the simulator's app page.
        self.launch_base = launch_base
        ctx.pages.add(texts=MESSAGES, templates=TEMPLATES)

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

    # -- entry from the provider ---------------------------------------------------------
    async def start(self, request: Request, txn: LoginTransaction) -> Response:
        """The person chose BankID (or it is the only or the remembered method).

        A live order is picked up again (a reload or going back never starts a second).
        A computer gets the QR code at once (BankID's own advice); a phone, or a page with
        the personal-number field, gets the device choice first.
        """
        data = txn.upstream.get("bankid")
        if data and OrderState.from_record(data["order"]).status in (PENDING, COMPLETE):
            return self._to_wait(txn)
        if not self._browser(request).mobile and not self.settings.personal_number_field:
            return await self._begin(request, txn, "qr")
        return self._to_wait(txn)  # without an order, the wait page is the device choice

    # -- routes --------------------------------------------------------------------------
    async def start_order(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        form = await self.flow.form(request, txn)
        flow = "autostart" if form.get("device") == "this" else "qr"
        personal_number = None
        entered = str(form.get("personal_number") or "").strip()
        if form.get("same"):  # "Försök igen": the same order again, for the same person
            previous = txn.upstream.get("bankid")
            personal_number = previous["order"]["start"].get("personal_number") if previous else None
        elif self.settings.personal_number_field and entered:
            try:
                personal_number = parse_personal_number(entered)
            except EntryError as exc:
                return self._choice(request, txn, entered=entered, entry_error=exc.key,
                                    status_code=400)
        return await self._begin(request, txn, flow, personal_number,
                                 as_json="application/json" in request.headers.get("accept", ""))

    async def wait(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        if txn.identity is not None:
            return self._to_provider(txn)  # handed on already: the picker, or onwards
        data = txn.upstream.get("bankid")
        if not data:
            return self._choice(request, txn)
        nonce = request.query_params.get("nonce")
        if nonce is not None and not equal_secrets(data["nonce"], nonce):
            # The return of an order this login has replaced since. The browser binding
            # holds, and nothing is taken from the return itself: show the current order.
            log.info("bankid return for a replaced order", extra={"txn": txn.id})
        progress = await self._advance(request, txn, data)
        if progress.complete:
            # Handed on from here: a phone coming back from the app (`returnUrl`) or a page
            # refreshing itself without JavaScript goes to the service one redirect sooner.
            return await self._finish(request, txn, progress.result.completion)
        return self._wait_page(request, txn, data, progress)

    async def status(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        headers = {"Cache-Control": "no-store"}
        if txn.identity is not None:
            return JSONResponse({"status": COMPLETE, "next": f"/login/{txn.id}"}, headers=headers)
        data = txn.upstream.get("bankid")
        if not data:
            return JSONResponse({"status": "none"}, status_code=404, headers=headers)
        progress = await self._advance(request, txn, data)
        out: dict[str, Any] = {
            "status": progress.state.status, "hint": progress.state.hint_code,
            "message": progress.message, "rfa": progress.rfa,
            "qr": qr_image(progress.result.qr) if progress.result.qr else None,
        }
        if progress.complete:
            out["next"] = f"/login/bankid/{txn.id}/finish"
        return JSONResponse(out, status_code=503 if progress.upstream_fault else 200,
                            headers=headers)

    async def finish(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        if txn.identity is not None:
            return self._to_provider(txn)
        return await self._finish(request, txn)

    async def _finish(self, request: Request, txn: LoginTransaction,
                      completion: CompletionData | None = None) -> Response:
        """`completion`: the one this request's own poll just found (collected, or
        adopted from the record), so it is not read back from the store."""
        data = txn.upstream.get("bankid")
        state = OrderState.from_record(data["order"]) if data else None
        # Identity comes only from a completed order (its collect or its record), only now.
        if completion is None and state is not None:
            completion = await self.orders.completion(state)
        if state is None or state.status != COMPLETE or completion is None:
            return self._to_wait(txn)
        lock = f"finishing:{state.order_ref}"
        if not await self.ctx.records.put_new(lock, {}, FINISH_LOCK_SECONDS):
            # Another request (a second tab, the app's return) is handing it on right now.
            return self._continuing(request, txn)
        identity = identity_from_completion(completion, order_ref=state.order_ref)
        txn.upstream.pop("bankid", None)
        try:
            response = await self.flow.finish(request, txn, identity)
        except BaseException:
            # Nothing was handed on (e.g. the authorization source is down: a 503 page);
            # the same request again must be able to finish.
            await self.ctx.records.delete(lock)
            raise
        await self.orders.forget(state)
        return response

    async def cancel(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        form = await self.flow.form(request, txn)
        data = txn.upstream.pop("bankid", None)
        if data:
            await self.orders.cancel(OrderState.from_record(data["order"]))
            await self.flow.save(txn)
        if form.get("then") == "choose":
            return RedirectResponse(f"/login/{txn.id}?choose=1", status_code=303)
        return self._choice(request, txn)

    # -- starting an order ---------------------------------------------------------------
    async def _begin(self, request: Request, txn: LoginTransaction, flow: str,
                     personal_number: str | None = None, as_json: bool = False) -> Response:
        client_ip = self.ctx.proxies.client_ip(request)
        exceeded = await self.starts.exceeded(client_ip=client_ip, txn_id=txn.id)
        if exceeded:
            response = self._choice(request, txn, error_key=f"bankid_rate_{exceeded}",
                                    status_code=429)
            response.headers["Retry-After"] = "60"
            return response
        previous = txn.upstream.get("bankid")
        if previous:
            await self.orders.cancel(OrderState.from_record(previous["order"]))
        browser = self._browser(request)
        nonce = secrets.token_urlsafe(16)
        back = f"{self.ctx.issuer}/login/bankid/{txn.id}/wait?nonce={nonce}"
        try:
            state = await self.orders.start(
                end_user_ip=client_ip, flow=flow, client_name=self.flow.client_name(txn),  # type: ignore[arg-type]
                web=self._web(request),
                return_url=return_url(browser, back) if flow == "autostart" else None,
                personal_number=personal_number)
        except BankIDError as exc:
            return self._start_failed(request, txn, exc)
        txn.upstream["bankid"] = {"order": state.to_record(), "nonce": nonce}
        await self.flow.save(txn)
        if as_json:
            launch = (launch_url(browser, state.auto_start_token, self.launch_base)
                      if state.auto_start_token and flow == "autostart" else None)
            return JSONResponse({"wait": f"/login/bankid/{txn.id}/wait", "launch": launch},
                                headers={"Cache-Control": "no-store"})
        return self._to_wait(txn)

    def _start_failed(self, request: Request, txn: LoginTransaction, exc: BankIDError) -> Response:
        """BankID's message for a refused start: RFA4 when the person has an order going
        elsewhere (409), else RFA5/RFA22 with a retryable 503 and an error-level log line."""
        kind = fault_kind(exc.error_code)
        self._record_error(txn, exc, final=True)
        text = error_message(exc).text(self._locale(request, txn))
        if kind == "person":
            return self._choice(request, txn, error_text=text, status_code=409)
        response = self._choice(request, txn, error_text=text, status_code=503)
        response.headers["Retry-After"] = str(_retry_after(exc))
        return response

    def _record_error(self, txn: LoginTransaction, exc: BankIDError, *, final: bool) -> None:
        """Every BankID error is counted by its code and by kind; one that ends a login
        attempt is logged at error level (a passing one, retried, as a warning)."""
        kind = fault_kind(exc.error_code)
        self.ctx.metrics.record_bankid(error_code=exc.error_code)
        if kind != "person":
            self.ctx.metrics.error(f"bankid_{kind}")
        level = logging.ERROR if final and kind != "person" else logging.WARNING
        log.log(level, "bankid %s: %s", kind, exc.error_code,
                extra={"error_code": exc.error_code, "kind": kind, "txn": txn.id,
                       "http_status": exc.http_status})

    # -- polling -------------------------------------------------------------------------
    async def _advance(self, request: Request, txn: LoginTransaction, data: dict[str, Any]) -> Progress:
        """Poll the order (cheap: /collect at most every interval), save what changed."""
        browser = self._browser(request)
        state = OrderState.from_record(data["order"])
        before = data["order"]
        result = await self.orders.poll(state, device="mobile" if browser.mobile else "desktop")
        if state.status == COMPLETE and result.completion is None:
            # Complete, but its record is gone (handed on and forgotten): cannot finish.
            state.status, state.error_code = FAILED, "invalidParameters"
        if result.error is not None and not (state.status == FAILED
                                             and state.error_code == "invalidParameters"):
            self._record_error(txn, result.error, final=state.status == FAILED)
        changed = state.to_record() != before
        if changed:
            if (state.hint_code, state.status) != (before.get("hint_code"), before.get("status")):
                self.ctx.metrics.record_bankid(hint_code=state.hint_code)
            data["order"] = state.to_record()
            await self.flow.save(txn)
            if state.status == FAILED:
                self.ctx.audit.event("bankid_failed", client=txn.client_id, txn=txn.id,
                                        hint=state.hint_code, error=state.error_code)
        lang = self._locale(request, txn)
        progress = Progress(state, result, None, None)
        if progress.gone:
            text = self._t(lang, "bankid_order_gone")
            return Progress(state, result, text, None)
        msg = result.message
        return Progress(state, result, msg.text(lang) if msg else None, msg.rfa if msg else None)

    # -- pages ---------------------------------------------------------------------------
    def _choice(self, request: Request, txn: LoginTransaction, *, error_key: str | None = None,
                error_text: str | None = None, entered: str | None = None,
                entry_error: str | None = None, status_code: int = 200) -> Response:
        """The device choice: RFA20 on a phone, RFA19 on a computer."""
        browser = self._browser(request)
        return self.flow.render(request, "bankid_choose.html", {
            **self._page(request, txn, browser),
            "question": rfa_message("RFA20" if browser.mobile else "RFA19"),
            "personal_number_field": self.settings.personal_number_field,
            "entered": entered, "entry_error": entry_error,
            "error_key": error_key, "error_text": error_text,
        }, status_code)

    def _wait_page(self, request: Request, txn: LoginTransaction, data: dict[str, Any],
                   progress: Progress) -> Response:
        browser = self._browser(request)
        state = progress.state
        pending = state.status == PENDING
        launch = None
        if state.flow == "autostart" and state.auto_start_token and pending:
            launch = launch_url(browser, state.auto_start_token, self.launch_base)
        qr = progress.result.qr
        return self.flow.render(request, "bankid_wait.html", {
            **self._page(request, txn, browser),
            "flow": state.flow, "launch": launch, "qr": qr_image(qr) if qr else None,
            "message": progress.message, "failed": progress.failed, "pending": pending,
            # Without JavaScript the page refreshes itself (the QR every second, as it
            # animates); the script cancels this when it takes over.
            "refresh": (1 if qr else 2) if pending else None,
        }, 503 if progress.upstream_fault else 200)

    def _continuing(self, request: Request, txn: LoginTransaction) -> Response:
        return self.flow.render(request, "bankid_wait.html", {
            **self._page(request, txn, self._browser(request)),
            "flow": None, "message": self._t(self._locale(request, txn), "bankid_continuing"),
            "pending": False, "failed": False, "refresh": 1, "continuing": True,
        })

    def _page(self, request: Request, txn: LoginTransaction, browser: Browser) -> dict[str, Any]:
        """What every BankID page shows: the login, the way out, the expiry warning."""
        return {
            "txn_id": txn.id, "csrf": txn.csrf, "ui_locales": txn.params.get("ui_locales"),
            "client_name": self.flow.client_name(txn), "client_id": txn.client_id,
            "mobile": browser.mobile, "expires_at": txn.expires,
            # The simulator's app is a web page in this tab, not an app of its own.
            "app_is_page": self.launch_base is not None,
            "switch_path": f"/login/bankid/{txn.id}/wait",
            "other_methods": self.flow.other_methods_url(txn) is not None,
        }

    def _to_wait(self, txn: LoginTransaction) -> Response:
        return RedirectResponse(f"/login/bankid/{txn.id}/wait", status_code=303)

    def _to_provider(self, txn: LoginTransaction) -> Response:
        return RedirectResponse(f"/login/{txn.id}", status_code=303)

    # -- helpers -------------------------------------------------------------------------
    def _web(self, request: Request) -> WebContext:
        device = self.flow.browser_pseudonym(request, "bankid-device")
        host = urlsplit(self.ctx.issuer).hostname or "localhost"
        return WebContext(device_identifier=device, referring_domain=host.lower(),
                          user_agent=request.headers.get("user-agent", "")[:256] or "unknown")

    @staticmethod
    def _browser(request: Request) -> Browser:
        return detect(request.headers.get("user-agent", ""))

    @staticmethod
    def _locale(request: Request, txn: LoginTransaction) -> str:
        return pick_locale(request, txn.params.get("ui_locales"))

    def _t(self, lang: str, key: str) -> str:
        return self.ctx.pages.translate(lang, key)


def _retry_after(exc: BankIDError) -> int:
    reset = getattr(exc, "reset", None)
    return max(1, min(int(reset), 300)) if isinstance(reset, int) else 5


def create(ctx: ConnectorContext, *, transport: httpx.AsyncBaseTransport | None = None,
           launch_base: str | None = None,
           clock: Callable[[], float] | None = None) -> BankIDConnector:
    """Build from `connectors.bankid`. The BankID service is reached over HTTP by
    `BankIDClient`: the real one over mutual TLS, a simulator at `base_url`, or - given by
    the composition (`broker.app.bankid_connector`), which alone imports the simulator -
    an in-process `transport` to an embedded one, whose app page is at `launch_base`.

    `clock` (tests only): one clock for the connector and the embedded simulator, so a
    test can let the simulated person spend 10 s in the app without waiting 10 s.
    """
    settings = ctx.settings.connectors.bankid
    if settings is None:
        raise ValueError("connectors.bankid is not configured")
    if launch_base is None and settings.environment == "simulator" and settings.base_url:
        launch_base = settings.base_url.split("/rp/")[0] + "/app"
    return BankIDConnector(ctx, settings, transport=transport, launch_base=launch_base,
                           clock=clock or time.time)


__all__ = ["BankIDConnector", "create"]

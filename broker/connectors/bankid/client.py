"""Async client of the BankID RP API v6 (auth, sign, phone, collect, cancel).

One httpx transport (a connection pool) per process, mutual TLS from an `ssl.SSLContext`
(see `tls.py`). Only `maintenance` (HTTP 503) is retried, as BankID allows; everything else
surfaces as a typed error at once, because retrying an order start could create a second
order for the same person. Every request runs under a connect, read and total timeout.

The requests go to httpx's transport, not through an `httpx.AsyncClient`: the RP API is
one host answering JSON to POSTs, with no cookies, redirects or auth to handle, and the
client's per-request work (merging the base URL, building a cookie jar from every answer)
cost a quarter of a BankID call in the login benchmark (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_incrementing,
)

from .errors import BankIDConnectionError, BankIDTimeout, Maintenance, error_from_response
from .models import (
    AppContext,
    CollectResult,
    Order,
    OrderRequirement,
    WebContext,
    b64,
)

log = logging.getLogger("broker.bankid")

AUTH_TEXT_MAX = 1_500
SIGN_TEXT_MAX = 40_000
AUTH_NON_VISIBLE_MAX = 1_500
SIGN_NON_VISIBLE_MAX = 200_000
RETURN_URL_MAX = 512


class BankIDClient:
    """Talks to one RP API base URL. Use as an async context manager or call `aclose()`.

    `transport` lets the in-process simulator be used without a socket
    (`httpx.ASGITransport(app=create_simulator_app(...))`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        total_timeout: float = 20.0,
        maintenance_retries: int = 2,
        maintenance_retry_delay: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Any = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._urls: dict[str, httpx.URL] = {}
        self._transport = transport or httpx.AsyncHTTPTransport(
            verify=ssl_context if ssl_context is not None else True, trust_env=False)
        self._timeouts = httpx.Timeout(read_timeout, connect=connect_timeout).as_dict()
        self._total = total_timeout
        self._retries = maintenance_retries
        self._retry_delay = maintenance_retry_delay
        self._clock = clock
        self._sleep = sleep  # tests: the pauses between maintenance retries, without waiting

    async def __aenter__(self) -> BankIDClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # -- the API -------------------------------------------------------------------------

    async def auth(
        self,
        end_user_ip: str,
        *,
        requirement: OrderRequirement | None = None,
        user_visible_data: str | None = None,
        user_non_visible_data: str | bytes | None = None,
        user_visible_data_format: str | None = None,
        return_url: str | None = None,
        return_risk: bool = False,
        web: WebContext | None = None,
        app: AppContext | None = None,
    ) -> Order:
        """Start an identification order."""
        body = self._order_body(
            end_user_ip, requirement, user_visible_data, user_non_visible_data,
            user_visible_data_format, return_url, return_risk, web, app,
            text_max=AUTH_TEXT_MAX, non_visible_max=AUTH_NON_VISIBLE_MAX,
        )
        return self._order(await self._call("auth", body))

    async def sign(
        self,
        end_user_ip: str,
        user_visible_data: str,
        *,
        requirement: OrderRequirement | None = None,
        user_non_visible_data: str | bytes | None = None,
        user_visible_data_format: str | None = None,
        return_url: str | None = None,
        return_risk: bool = False,
        web: WebContext | None = None,
        app: AppContext | None = None,
    ) -> Order:
        """Start a signing order; `user_visible_data` is the text the person signs."""
        if not user_visible_data:
            raise ValueError("sign needs user_visible_data (the text the person signs)")
        body = self._order_body(
            end_user_ip, requirement, user_visible_data, user_non_visible_data,
            user_visible_data_format, return_url, return_risk, web, app,
            text_max=SIGN_TEXT_MAX, non_visible_max=SIGN_NON_VISIBLE_MAX,
        )
        return self._order(await self._call("sign", body))

    async def phone_auth(
        self,
        personal_number: str,
        call_initiator: str,
        *,
        requirement: OrderRequirement | None = None,
        user_visible_data: str | None = None,
        user_visible_data_format: str | None = None,
    ) -> Order:
        """Identify a person we are on the phone with (no QR, no autostart)."""
        if call_initiator not in ("user", "RP"):
            raise ValueError("call_initiator must be 'user' or 'RP'")
        body: dict[str, Any] = {"personalNumber": personal_number, "callInitiator": call_initiator}
        req = requirement.to_json() if requirement else {}
        req.pop("personalNumber", None)
        if req:
            body["requirement"] = req
        if user_visible_data:
            body["userVisibleData"] = _checked_b64(user_visible_data, AUTH_TEXT_MAX, "user_visible_data")
            if user_visible_data_format:
                body["userVisibleDataFormat"] = user_visible_data_format
        return self._order(await self._call("phone/auth", body))

    async def collect(self, order_ref: str) -> CollectResult:
        """The order's state now. A terminal state can be collected only once."""
        data = await self._call("collect", {"orderRef": order_ref})
        result = CollectResult.from_json(data)
        if not result.order_ref:
            result = CollectResult(order_ref, result.status, result.hint_code, result.completion)
        return result

    async def cancel(self, order_ref: str) -> None:
        """Cancel an order; raises InvalidParameters (`no_such_order`) when it is gone."""
        await self._call("cancel", {"orderRef": order_ref})

    # -- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _order_body(
        end_user_ip: str,
        requirement: OrderRequirement | None,
        user_visible_data: str | None,
        user_non_visible_data: str | bytes | None,
        user_visible_data_format: str | None,
        return_url: str | None,
        return_risk: bool,
        web: WebContext | None,
        app: AppContext | None,
        *,
        text_max: int,
        non_visible_max: int,
    ) -> dict[str, Any]:
        if web is not None and app is not None:
            raise ValueError("send web or app data, not both")
        body: dict[str, Any] = {"endUserIp": end_user_ip}
        req = requirement.to_json() if requirement else {}
        if req:
            body["requirement"] = req
        if user_visible_data:
            body["userVisibleData"] = _checked_b64(user_visible_data, text_max, "user_visible_data")
            if user_visible_data_format:
                body["userVisibleDataFormat"] = user_visible_data_format
        if user_non_visible_data:
            body["userNonVisibleData"] = _checked_b64(
                user_non_visible_data, non_visible_max, "user_non_visible_data"
            )
        if return_url:
            if len(return_url) > RETURN_URL_MAX:
                raise ValueError(f"return_url is longer than {RETURN_URL_MAX} characters")
            body["returnUrl"] = return_url
        if return_risk:
            body["returnRisk"] = True
        if web is not None and (w := web.to_json()):
            body["web"] = w
        if app is not None and (a := app.to_json()):
            body["app"] = a
        return body

    def _order(self, data: Mapping[str, Any]) -> Order:
        ref = data.get("orderRef")
        if not isinstance(ref, str) or not ref:
            raise BankIDConnectionError("answer without orderRef")
        order = Order(
            order_ref=ref,
            auto_start_token=data.get("autoStartToken"),
            qr_start_token=data.get("qrStartToken"),
            qr_start_secret=data.get("qrStartSecret"),
            received_at=float(self._clock()),
        )
        log.info("bankid order started", extra={"order_ref": ref})
        return order

    async def _call(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST compact JSON with the exact Content-Type, all within the total timeout.

        On maintenance, retry after `maintenance_retry_delay`, twice that, ... (tenacity).
        The first attempt runs outside tenacity: nearly every call succeeds at once, and
        setting up its retry state cost a sixth of an in-process call (bench/README.md)."""
        payload = orjson.dumps(body)  # compact UTF-8, as json.dumps(ensure_ascii=False) would
        try:
            async with asyncio.timeout(self._total):
                try:
                    return await self._post_once(endpoint, payload)
                except Maintenance:
                    if self._retries < 1:
                        raise
                    self._warn(endpoint, 1)
                await self._sleep(self._retry_delay)
                retrying = AsyncRetrying(
                    sleep=self._sleep,
                    retry=retry_if_exception_type(Maintenance),
                    stop=stop_after_attempt(self._retries),
                    wait=wait_incrementing(start=2 * self._retry_delay,
                                           increment=self._retry_delay),
                    before_sleep=lambda state: self._warn(endpoint, state.attempt_number + 1),
                    reraise=True)
                return await retrying(self._post_once, endpoint, payload)
        except TimeoutError:
            raise BankIDTimeout(f"{endpoint}: no answer within {self._total} s") from None

    @staticmethod
    def _warn(endpoint: str, attempt: int) -> None:
        log.warning("bankid maintenance, retrying", extra={"endpoint": endpoint, "attempt": attempt})

    def _url(self, endpoint: str) -> httpx.URL:
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = self._base.join(endpoint)
        return url

    async def _post_once(self, endpoint: str, payload: bytes) -> dict[str, Any]:
        request = httpx.Request("POST", self._url(endpoint), content=payload,
                                headers=_HEADERS, extensions={"timeout": self._timeouts})
        try:
            response = await self._transport.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise BankIDTimeout(f"{endpoint}: timed out") from None
        except httpx.HTTPError as exc:
            raise BankIDConnectionError(f"{endpoint}: {type(exc).__name__}: {exc}") from None
        try:
            data = orjson.loads(content) if content else {}
        except ValueError:
            data = None
        if response.status_code != 200:
            error = error_from_response(response.status_code, data, response.headers)
            log.warning("bankid error", extra={"endpoint": endpoint, "status": response.status_code,
                                                "error_code": error.error_code})
            raise error
        if not isinstance(data, dict):
            raise BankIDConnectionError(f"{endpoint}: answer is not a JSON object")
        return data


_HEADERS = (("Content-Type", "application/json"), ("Accept", "application/json"))


def _checked_b64(value: str | bytes, limit: int, name: str) -> str:
    encoded = b64(value)
    if len(encoded) > limit:
        raise ValueError(f"{name} is {len(encoded)} characters in base64, more than {limit}")
    return encoded


def client_from_settings(
    settings: Any,
    *,
    base_dir: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Any = time.time,
) -> BankIDClient:
    """The client for `connectors.bankid`.

    test/production: mutual TLS with the RP certificate and the pinned root. simulator:
    `base_url` (plain or TLS without a client certificate) or, with `transport`, in-process.
    """
    from .settings import BankIDSettings
    from .tls import context_from_settings

    assert isinstance(settings, BankIDSettings)
    ctx: ssl.SSLContext | None = None
    if settings.environment != "simulator":
        ctx = context_from_settings(settings, base_dir)
    url = settings.url or "http://bankid-simulator/rp/v6.0/"
    if settings.environment == "simulator" and settings.url is None and transport is None:
        raise ValueError("environment simulator needs base_url or an in-process transport")
    return BankIDClient(
        url,
        ssl_context=ctx,
        connect_timeout=settings.timeouts.connect,
        read_timeout=settings.timeouts.read,
        total_timeout=settings.timeouts.total,
        maintenance_retries=settings.maintenance_retries,
        maintenance_retry_delay=settings.maintenance_retry_delay,
        transport=transport,
        clock=clock,
    )

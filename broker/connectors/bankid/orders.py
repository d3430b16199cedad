"""One BankID order from start to identity, as the login pages need it.

The pages poll (about once a second, for the QR code); this helper turns those polls into
at most one `/collect` per `collect_interval`, animates the QR code without touching
BankID, restarts an order that nobody picked up (startFailed) within the retry window as
BankID's own identity providers do, tolerates a passing BankID error, and reports every
state with its RFA message. The state is a plain record so it can live in the login
transaction in the store and any broker replica can continue it.

BankID hands out a completed order's `completionData` exactly once (the next `/collect`
says "no such order"). Whichever request collects it - the page's poll, the request the
app sends back through `returnUrl`, a reload, another replica - writes it to the order's
completion record (`put_new`: the first write wins, a repeat changes nothing) before
anything else, and every later request on the order reads it from there. So no request
can "use up" a login that another request then cannot finish.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

from ..base import LOA3, Identity
from .client import AUTH_TEXT_MAX, BankIDClient
from .errors import BankIDError, InvalidParameters
from .messages import DeviceKind, Flow, UserMessage, user_message
from .models import (
    COMPLETE,
    FAILED,
    PENDING,
    CollectResult,
    CompletionData,
    OrderRequirement,
    WebContext,
)
from .qr import qr_payload_at
from .settings import BankIDSettings

log = logging.getLogger("broker.bankid")

Operation = Literal["auth", "sign"]
_RISK_ORDER = {"low": 0, "moderate": 1, "high": 2}
MAX_COLLECT_ERRORS = 3
# How long a collected completion waits for the page to hand it on: the login
# transaction's lifetime bounds it anyway, and `forget` drops it as soon as it is used.
COMPLETION_TTL = 600

DEVICE_IP_CLAIM = "https://id.oidc.se/claim/deviceIp"
AMR = ("bankid",)


@dataclass
class OrderState:
    """What the broker remembers of one order (JSON-safe; kept server-side only)."""

    order_ref: str
    auto_start_token: str | None
    qr_start_token: str | None
    qr_start_secret: str | None = field(repr=False)
    received_at: float
    first_started_at: float
    flow: Flow
    operation: Operation
    # Everything needed to start the order again after startFailed.
    start: dict[str, Any] = field(repr=False, default_factory=dict)
    status: str = PENDING
    hint_code: str | None = "outstandingTransaction"
    error_code: str | None = None
    last_collect_at: float = 0.0
    collect_errors: int = 0
    restarts: int = 0

    @property
    def finished(self) -> bool:
        return self.status in (FAILED, COMPLETE)

    def to_record(self) -> dict[str, Any]:
        # Shallow (the values are JSON scalars and the start parameters, copied one level):
        # asdict deep-copies, and this runs on every poll of the wait page.
        record = dict(vars(self))
        record["start"] = dict(self.start)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> OrderState:
        return cls(**record)


@dataclass(frozen=True)
class PollResult:
    """The order's state for the page: show `message`, and `qr` while it is not None."""

    state: OrderState
    message: UserMessage | None
    qr: str | None = None
    completion: CompletionData | None = None
    # BankID completed the order but its risk rating is above `block_risk`.
    risk_blocked: bool = False
    # The error this poll's /collect met, if any (the order may still be pending).
    error: BankIDError | None = None

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def hint_code(self) -> str | None:
        return self.state.hint_code


class OrderRecords(Protocol):
    """What the orders keep in the store (the connector's `ScopedStore`, or any `Store`)."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put_new(self, key: str, value: dict[str, Any], ttl: int) -> bool: ...

    async def delete(self, *keys: str) -> None: ...


class BankIDOrders:
    """Start, poll and cancel orders for the login pages.

    `store` (the connector's records in the broker's shared store) spreads the collect
    throttle over replicas - only one of them calls `/collect` for an order per interval -
    and keeps each order's completion record. Without one (a single process, tests) there
    is no shared throttle and the records live in a private in-memory store.
    """

    def __init__(self, client: BankIDClient, settings: BankIDSettings, *,
                 store: OrderRecords | None = None, clock: Callable[[], float] = time.time,
                 completion_ttl: int = COMPLETION_TTL) -> None:
        from ...store.memory import MemoryStore

        self.client = client
        self.settings = settings
        self.store = store
        self.records = store if store is not None else MemoryStore()
        self.clock = clock
        self.completion_ttl = completion_ttl

    # -- the completion record -------------------------------------------------------------
    async def completion(self, state: OrderState) -> CompletionData | None:
        """The order's completion, whoever collected it (None until someone has)."""
        if not state.order_ref:
            return None
        record = await self.records.get(_completion_key(state.order_ref))
        return CompletionData.from_json(record) if record else None

    async def forget(self, state: OrderState) -> None:
        """The identity has been handed on: drop the completion record (personal data)."""
        if state.order_ref:
            await self.records.delete(_completion_key(state.order_ref))

    async def _keep(self, state: OrderState, completion: CompletionData) -> None:
        await self.records.put_new(_completion_key(state.order_ref), dict(completion.raw),
                                 self.completion_ttl)

    async def start(
        self,
        *,
        end_user_ip: str,
        flow: Flow,
        client_name: str,
        web: WebContext | None = None,
        return_url: str | None = None,
        personal_number: str | None = None,
        operation: Operation = "auth",
        sign_text: str | None = None,
    ) -> OrderState:
        """Start an order on the person's explicit action (never on page load).

        Raises BankIDError (e.g. AlreadyInProgress → RFA4); show `error_message(exc)`.
        """
        start = {
            "end_user_ip": end_user_ip,
            "client_name": client_name,
            "web": asdict(web) if web else None,
            "return_url": return_url,
            "personal_number": personal_number,
            "sign_text": sign_text,
        }
        now = float(self.clock())
        state = OrderState(
            order_ref="", auto_start_token=None, qr_start_token=None, qr_start_secret=None,
            received_at=now, first_started_at=now, flow=flow, operation=operation, start=start,
        )
        await self._place(state)
        return state

    async def _place(self, state: OrderState) -> None:
        s = self.settings
        p = state.start
        req = OrderRequirement(
            pin_code=s.requirement.pin_code or None,
            mrtd=s.requirement.mrtd or None,
            card_reader=s.requirement.card_reader,
            certificate_policies=s.requirement.certificate_policies,
            personal_number=p.get("personal_number"),
        )
        web = WebContext(**p["web"]) if p.get("web") else None
        common: dict[str, Any] = {
            "requirement": req,
            "user_visible_data_format": s.user_visible_data_format,
            "return_url": p.get("return_url"),
            # block_risk needs BankID's risk indication: ask for it whenever either is set.
            "return_risk": s.return_risk or s.block_risk is not None,
            "web": web,
        }
        if state.operation == "sign":
            order = await self.client.sign(p["end_user_ip"], p["sign_text"] or "", **common)
        else:
            text = _fit(s.visible_text(p["client_name"]), AUTH_TEXT_MAX)
            order = await self.client.auth(p["end_user_ip"], user_visible_data=text, **common)
        state.order_ref = order.order_ref
        state.auto_start_token = order.auto_start_token
        state.qr_start_token = order.qr_start_token
        state.qr_start_secret = order.qr_start_secret
        state.received_at = order.received_at or float(self.clock())
        state.status, state.hint_code, state.error_code = PENDING, "outstandingTransaction", None
        state.last_collect_at = 0.0
        state.collect_errors = 0

    def qr(self, state: OrderState) -> str | None:
        """The QR frame for now, while a QR should be shown (no call to BankID)."""
        if (state.flow != "qr" or state.status != PENDING
                or state.hint_code != "outstandingTransaction"
                or not state.qr_start_token or not state.qr_start_secret):
            return None
        return qr_payload_at(state.qr_start_token, state.qr_start_secret, state.received_at,
                             float(self.clock()))

    def message(self, state: OrderState, device: DeviceKind = "desktop") -> UserMessage | None:
        return user_message(state.status, state.hint_code, state.error_code, state.flow,
                            device=device)

    async def poll(self, state: OrderState, *, device: DeviceKind = "desktop") -> PollResult:
        """Advance the order if it is time to collect; always cheap to call."""
        now = float(self.clock())
        if state.finished or now - state.last_collect_at < self.settings.collect_interval:
            return await self._current(state, device)
        if self.store is not None:
            ttl = max(1, math.ceil(self.settings.collect_interval))
            if not await self.store.put_new(f"collect:{state.order_ref}", {}, ttl):
                return await self._current(state, device)
        state.last_collect_at = now
        try:
            result = await self.client.collect(state.order_ref)
        except InvalidParameters as exc:
            # Gone at BankID: collected by another request (whose completion record then
            # exists), cancelled, or too late - then it cannot finish.
            adopted = await self._current(state, device, adopt=True)
            if adopted.status == COMPLETE:
                return adopted
            log.warning("bankid collect refused", extra={"order_ref": state.order_ref,
                                                         "no_such_order": exc.no_such_order})
            state.status, state.error_code = FAILED, exc.error_code
            return replace(self._result(state, device), error=exc)
        except BankIDError as exc:
            state.collect_errors += 1
            if state.collect_errors >= MAX_COLLECT_ERRORS:
                state.status, state.error_code = FAILED, exc.error_code
            return replace(self._result(state, device), error=exc)
        state.collect_errors = 0
        return await self._apply(state, result, device)

    async def _current(self, state: OrderState, device: DeviceKind,
                       adopt: bool = False) -> PollResult:
        """The state as it stands, with the completion when the order is complete; with
        `adopt`, a completion another request collected makes this state complete too."""
        if state.status == COMPLETE or adopt:
            completion = await self.completion(state)
            if completion is not None:
                state.status, state.hint_code, state.error_code = COMPLETE, None, None
                return PollResult(state, None, completion=completion)
        return self._result(state, device)

    async def _apply(self, state: OrderState, result: CollectResult,
                     device: DeviceKind) -> PollResult:
        state.hint_code = result.hint_code
        if result.complete:
            state.status = COMPLETE
            completion = result.completion
            assert completion is not None
            wanted = state.start.get("personal_number")
            if wanted and completion.user.personal_number != wanted:
                state.status, state.hint_code = FAILED, "personalNumberMismatch"
                return self._result(state, device)
            if self._risky(completion.risk):
                state.status, state.hint_code = FAILED, "transactionRiskBlocked"
                return PollResult(state, self.message(state, device), completion=completion,
                                  risk_blocked=True)
            await self._keep(state, completion)
            return PollResult(state, None, completion=completion)
        if result.failed:
            state.status = FAILED
            window = self.settings.start_retry_window
            if (result.hint_code == "startFailed" and window
                    and float(self.clock()) - state.first_started_at < window):
                try:
                    await self._place(state)
                    state.restarts += 1
                except BankIDError as exc:
                    state.status, state.error_code = FAILED, exc.error_code
            return self._result(state, device)
        if result.status == COMPLETE:  # complete without completionData: unusable
            state.status, state.error_code = FAILED, "invalidResponse"
            return self._result(state, device)
        state.status = PENDING
        return self._result(state, device)

    def _risky(self, risk: str | None) -> bool:
        limit = self.settings.block_risk
        return bool(limit and risk in _RISK_ORDER and _RISK_ORDER[risk] >= _RISK_ORDER[limit])

    def _result(self, state: OrderState, device: DeviceKind) -> PollResult:
        return PollResult(state, self.message(state, device), qr=self.qr(state))

    async def cancel(self, state: OrderState) -> None:
        """Cancel a pending order (person left or started over); a gone order is fine."""
        if state.finished or not state.order_ref:
            return
        try:
            await self.client.cancel(state.order_ref)
        except InvalidParameters:
            pass
        except BankIDError as exc:
            log.warning("bankid cancel failed", extra={"order_ref": state.order_ref,
                                                       "error_code": exc.error_code})
        state.status, state.hint_code = FAILED, "cancelled"


def error_message(exc: BankIDError) -> UserMessage:
    """The message for an error from `start` (e.g. RFA4 for alreadyInProgress)."""
    msg = user_message(error_code=exc.error_code)
    assert msg is not None
    return msg


def identity_from_completion(completion: CompletionData, *, order_ref: str,
                             auth_time: int | None = None) -> Identity:
    """The broker's Identity for a completed order; completionData goes to audit only."""
    user = completion.user
    claims: dict[str, Any] = {}
    if completion.device.ip_address:
        claims[DEVICE_IP_CLAIM] = completion.device.ip_address
    return Identity(
        method="bankid",
        acr=LOA3,
        amr=AMR,
        auth_time=auth_time if auth_time is not None else int(time.time()),
        personal_identity_number=user.personal_number,
        given_name=user.given_name or None,
        family_name=user.surname or None,
        name=user.name or None,
        claims=claims,
        evidence={"orderRef": order_ref, "completionData": dict(completion.raw)},
    )


def _fit(text: str, limit: int) -> str:
    """Shorten `text` until its base64 fits `limit` (a long client name must not break login)."""
    while len(text.encode("utf-8")) * 4 / 3 > limit - 4 and text:
        text = text[:-1]
    return text


def _completion_key(order_ref: str) -> str:
    return f"completion:{order_ref}"

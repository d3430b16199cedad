"""The simulated BankID server's orders and the simulated person's app.

No HTTP here: `BankIDSimulator` holds the orders of one process in memory and moves them
through the states of reference §4 and §11, on an injectable clock, so that the HTTP layer
stays thin and tests can jump 30 or 180 seconds without sleeping. Time-driven changes
(startFailed, expiredTransaction, auto-approve, retention) are applied lazily whenever the
state is looked at.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..connectors.bankid.qr import parse_qr_payload, verify_qr_payload
from .bankid_settings import BankIDSimulatorSettings, TestPerson
from .bankid_validation import ApiError, invalid

Clock = Callable[[], float]

ENDPOINTS = ("auth", "sign", "phone/auth", "phone/sign", "collect", "cancel")
# An opaque stand-in for a DER OCSP response; parsers of our own only store it for audit.
CANNED_OCSP = base64.b64encode(b"\x30\x03\x0a\x01\x00simulated-ocsp-response").decode("ascii")


class SimulatedClock:
    """The wall clock plus a jump that tests make (`/control/clock`): a person can spend
    10 s in the app, an order can age 30 s, without the test waiting for it. Shared with
    the broker's BankID connector in tests, so both sides see the same time."""

    def __init__(self, base: Clock = time.time) -> None:
        self._base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self._base() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.offset += seconds


class UserActionError(Exception):
    """What the simulated app refuses to do (stale QR, wrong person, order not pending)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Fault:
    """An injected failure for one endpoint ('*' for all): an error status and/or a delay."""

    status: int | None = None
    delay: float = 0.0
    times: int | None = 1  # None: until cleared

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "delay": self.delay, "times": self.times}


@dataclass
class SimOrder:
    order_ref: str
    kind: str
    created_at: float
    body: dict[str, Any] = field(repr=False)
    requirement: dict[str, Any]
    client_cert: str | None
    auto_start_token: str | None = None
    qr_start_token: str | None = None
    qr_start_secret: str | None = field(default=None, repr=False)
    status: str = "pending"
    hint_code: str | None = "outstandingTransaction"
    via: str | None = None  # qr | autostart | phone, once the app has the order
    person: TestPerson | None = None
    finished_at: float | None = None
    completion: dict[str, Any] | None = field(default=None, repr=False)
    auto_approve_at: float | None = None

    @property
    def phone(self) -> bool:
        return self.kind.startswith("phone/")

    @property
    def required_pno(self) -> str | None:
        if self.phone:
            return self.body.get("personalNumber")
        return self.requirement.get("personalNumber")

    @property
    def live(self) -> bool:
        return self.status == "pending"

    def summary(self, now: float) -> dict[str, Any]:
        """For the control API and the test app page (never the QR secret)."""
        return {
            "orderRef": self.order_ref,
            "kind": self.kind,
            "status": self.status,
            "hintCode": self.hint_code,
            "age": round(now - self.created_at, 3),
            "via": self.via,
            "personalNumber": self.person.personal_number if self.person else None,
            "requiredPersonalNumber": self.required_pno,
            "autoStartToken": self.auto_start_token,
            "qrStartToken": self.qr_start_token,
            "returnUrl": self.body.get("returnUrl"),
            "returnRisk": bool(self.body.get("returnRisk")),
            "userVisibleData": _decode(self.body.get("userVisibleData")),
            "mrtd": bool(self.requirement.get("mrtd")),
        }


def _decode(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except ValueError:
        return None


class BankIDSimulator:
    """All orders of the simulated BankID server, and the simulated users' actions."""

    def __init__(self, settings: BankIDSimulatorSettings | None = None, *,
                 clock: Clock = time.time) -> None:
        self.settings = settings or BankIDSimulatorSettings()
        self.clock = clock
        self.orders: dict[str, SimOrder] = {}
        self.faults: dict[str, Fault] = {}

    # -- housekeeping --------------------------------------------------------------------

    def tick(self) -> float:
        """Apply everything that happens by the passage of time; return now."""
        now = self.clock()
        s = self.settings
        for ref, order in list(self.orders.items()):
            if order.live:
                if order.auto_approve_at is not None and now >= order.auto_approve_at and (
                    order.auto_approve_at - order.created_at < s.order_timeout
                ):
                    self._auto_approve(order, order.auto_approve_at)
                elif order.via is None and not order.phone and now - order.created_at >= s.start_timeout:
                    self._finish(order, "failed", "startFailed", order.created_at + s.start_timeout)
                elif now - order.created_at >= s.order_timeout:
                    self._finish(order, "failed", "expiredTransaction",
                                 order.created_at + s.order_timeout)
            if not order.live and order.finished_at is not None:
                keep = s.complete_retention if order.status == "complete" else s.failed_retention
                if now - order.finished_at >= keep:
                    del self.orders[ref]
        return now

    def reset(self) -> None:
        self.orders.clear()
        self.faults.clear()

    # -- faults --------------------------------------------------------------------------

    def set_fault(self, endpoint: str, fault: Fault) -> None:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)} or *")
        self.faults[endpoint] = fault

    def take_fault(self, endpoint: str) -> Fault | None:
        """The fault to apply to this request, counting it down."""
        key = endpoint if endpoint in self.faults else "*" if "*" in self.faults else None
        if key is None:
            return None
        fault = self.faults[key]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self.faults[key]
        return fault

    # -- the RP API ----------------------------------------------------------------------

    def create(self, kind: str, body: dict[str, Any], requirement: dict[str, Any],
               client_cert: str | None) -> dict[str, Any]:
        """Start an order (the body is already validated)."""
        now = self.tick()
        order = SimOrder(
            order_ref=str(uuid.uuid4()), kind=kind, created_at=now, body=body,
            requirement=requirement, client_cert=client_cert,
        )
        pno = order.required_pno
        if pno:
            existing = [
                o for o in self.orders.values()
                if o.live and (o.required_pno == pno or (
                    o.person is not None and o.person.personal_number == pno))
            ]
            if existing:
                if self.settings.already_in_progress_cancels_existing:
                    for o in existing:
                        self._finish(o, "failed", "cancelled", now)
                raise ApiError(400, "alreadyInProgress", "Order already in progress for pno")
        if order.phone:
            order.hint_code = "outstandingTransaction"
        else:
            order.auto_start_token = str(uuid.uuid4())
            order.qr_start_token = str(uuid.uuid4())
            order.qr_start_secret = str(uuid.uuid4())
        if self.settings.auto_approve:
            order.auto_approve_at = now + self.settings.auto_approve_delay
        self.orders[order.order_ref] = order
        self.tick()
        if order.phone:
            return {"orderRef": order.order_ref}
        return {
            "orderRef": order.order_ref,
            "autoStartToken": order.auto_start_token,
            "qrStartToken": order.qr_start_token,
            "qrStartSecret": order.qr_start_secret,
        }

    def _own(self, order_ref: str, client_cert: str | None) -> SimOrder:
        self.tick()
        order = self.orders.get(order_ref)
        # An order is only visible to the RP certificate that created it.
        if order is None or order.client_cert != client_cert:
            raise invalid("No such order")
        return order

    def collect(self, order_ref: str, client_cert: str | None = None) -> dict[str, Any]:
        order = self._own(order_ref, client_cert)
        if order.status == "complete":
            del self.orders[order_ref]  # a terminal state is collected once
            return {"orderRef": order_ref, "status": "complete", "completionData": order.completion}
        if order.status == "failed":
            del self.orders[order_ref]
        return {"orderRef": order_ref, "status": order.status, "hintCode": order.hint_code}

    def cancel(self, order_ref: str, client_cert: str | None = None) -> dict[str, Any]:
        order = self._own(order_ref, client_cert)
        if not order.live:
            raise invalid("No such order")
        del self.orders[order_ref]
        return {}

    # -- the simulated app ---------------------------------------------------------------

    def find(self, order_ref: str) -> SimOrder:
        self.tick()
        order = self.orders.get(order_ref)
        if order is None:
            raise UserActionError("no such order", 404)
        return order

    def _pending(self, order_ref: str) -> SimOrder:
        order = self.find(order_ref)
        if not order.live:
            raise UserActionError(f"the order is no longer pending ({order.hint_code or order.status})")
        return order

    def person(self, personal_number: str | None) -> TestPerson | None:
        if personal_number is None:
            return None
        person = self.settings.person(personal_number)
        if person is None:
            raise UserActionError(f"{personal_number} is not one of the test persons", 422)
        return person

    def scan(self, payload: str, personal_number: str | None = None) -> SimOrder:
        """The app scanned a QR frame: genuine, fresh and for a live order, or refused."""
        now = self.tick()
        parsed = parse_qr_payload(payload)
        if parsed is None:
            raise UserActionError("not a BankID QR code", 422)
        order = next((o for o in self.orders.values() if o.qr_start_token == parsed[0]), None)
        if order is None or order.qr_start_secret is None:
            raise UserActionError("unknown QR code", 404)
        qr_time = verify_qr_payload(payload, order.qr_start_token or "", order.qr_start_secret)
        if qr_time is None:
            raise UserActionError("the QR code is not genuine (wrong HMAC)", 422)
        age = math.floor(now - order.created_at)
        if age - qr_time > self.settings.qr_max_lag:
            raise UserActionError("the QR code is too old")
        if qr_time - age > self.settings.qr_max_lead:
            raise UserActionError("the QR code is from the future")
        self._pick_up(order, "qr", now)
        if personal_number is not None:
            self.select(order.order_ref, personal_number)
        return order

    def open(self, auto_start_token: str, personal_number: str | None = None) -> SimOrder:
        """The app was launched with an autostart token (bankid:///?autostarttoken=...)."""
        now = self.tick()
        order = next((o for o in self.orders.values()
                      if o.auto_start_token and o.auto_start_token == auto_start_token), None)
        if order is None:
            raise UserActionError("unknown autostart token", 404)
        self._pick_up(order, "autostart", now)
        if personal_number is not None:
            self.select(order.order_ref, personal_number)
        return order

    def pick_up_phone(self, order_ref: str) -> SimOrder:
        """A phone order reaches the person's app."""
        order = self._pending(order_ref)
        if not order.phone:
            raise UserActionError("not a phone order", 422)
        self._pick_up(order, "phone", self.clock())
        person = self.settings.person(order.required_pno or "")
        if person is not None:
            self.select(order.order_ref, person.personal_number)
        return order

    def _pick_up(self, order: SimOrder, via: str, now: float) -> None:
        if not order.live:
            raise UserActionError(f"the order is no longer pending ({order.hint_code})")
        if order.via is not None:
            raise UserActionError("the order has already been picked up by an app")
        order.via = via
        # The app has the order but no identity is chosen yet ("searching for BankID").
        order.hint_code = "outstandingTransaction" if via == "phone" else "started"

    def select(self, order_ref: str, personal_number: str) -> SimOrder:
        """The person chose which of their BankIDs to use; the app shows the order."""
        order = self._pending(order_ref)
        person = self.person(personal_number)
        assert person is not None
        if order.via is None:
            raise UserActionError("no app has picked up the order yet (scan or open it first)")
        if order.required_pno and order.required_pno != person.personal_number:
            raise UserActionError("the order is for another personal number", 403)
        now = self.clock()
        # Picking up a newer order replaces the person's older live ones.
        for other in self.orders.values():
            if other is not order and other.live and other.person is not None and (
                other.person.personal_number == person.personal_number
            ):
                self._finish(other, "failed", "cancelled", now)
        order.person = person
        if order.phone:
            order.hint_code = "userCallConfirm"
        elif order.requirement.get("mrtd"):
            order.hint_code = "userMrtd"
        else:
            order.hint_code = "userSign"
        return order

    def advance(self, order_ref: str) -> SimOrder:
        """The person confirmed the call or scanned their ID document: on to the code."""
        order = self._pending(order_ref)
        if order.hint_code == "userCallConfirm":
            order.hint_code = "userMrtd" if order.requirement.get("mrtd") else "userSign"
        elif order.hint_code == "userMrtd":
            order.hint_code = "userSign"
        else:
            raise UserActionError(f"nothing to confirm while {order.hint_code}")
        return order

    def approve(self, order_ref: str, personal_number: str | None = None) -> SimOrder:
        """The person entered the security code: the order completes.

        Steps not taken yet (pick-up, choice of identity) are taken for them, so a test can
        go from a fresh order to `complete` in one call.
        """
        order = self._pending(order_ref)
        now = self.clock()
        if order.via is None:
            self._pick_up(order, "phone" if order.phone else "autostart", now)
        if order.person is None or (personal_number and personal_number != order.person.personal_number):
            pno = personal_number or order.required_pno or self.settings.persons[0].personal_number
            self.select(order_ref, pno)
        self._complete(order, now)
        return order

    def fail(self, order_ref: str, hint_code: str) -> SimOrder:
        """End the order as the app would: userCancel, certificateErr, ... (any string)."""
        order = self._pending(order_ref)
        if not hint_code or not hint_code.isascii() or not hint_code.isalnum():
            raise UserActionError("hintCode must be a word such as userCancel", 422)
        self._finish(order, "failed", hint_code, self.clock())
        return order

    # -- results -------------------------------------------------------------------------

    def _finish(self, order: SimOrder, status: str, hint: str | None, at: float) -> None:
        order.status = status
        order.hint_code = hint
        order.finished_at = at
        order.auto_approve_at = None

    def _auto_approve(self, order: SimOrder, at: float) -> None:
        pno = order.required_pno or self.settings.auto_approve
        person = self.settings.person(pno) if pno else self.settings.persons[0]
        if person is None:
            # A required number outside the list (BankID checks only its format).
            person = TestPerson.model_construct(
                personal_number=pno, given_name="Test", surname="Testsson",
                bank_id_issue_date=date(2023, 11, 29),
            )
        if order.via is None:
            order.via = "phone" if order.phone else "qr"
        order.person = person
        self._complete(order, at)

    def _complete(self, order: SimOrder, at: float) -> None:
        assert order.person is not None
        self._finish(order, "complete", None, at)
        order.completion = completion_data(order, self.settings)


def _uhi(personal_number: str) -> str:
    """A stable 28-character device id per test person (like BankID's base64 SHA-1)."""
    return base64.b64encode(hashlib.sha256(f"uhi:{personal_number}".encode()).digest()[:20]).decode()


def completion_data(order: SimOrder, settings: BankIDSimulatorSettings) -> dict[str, Any]:
    """completionData of reference §4.3 for a finished order."""
    person = order.person
    assert person is not None
    end_user_ip = order.body.get("endUserIp") or "192.0.2.1"
    ip = settings.qr_device_ip if order.via == "qr" and settings.qr_device_ip else end_user_ip
    data: dict[str, Any] = {
        "user": {
            "personalNumber": person.personal_number,
            "name": person.name,
            "givenName": person.given_name,
            "surname": person.surname,
        },
        "device": {"ipAddress": ip, "uhi": _uhi(person.personal_number)},
        "bankIdIssueDate": f"{person.bank_id_issue_date.isoformat()}Z",
    }
    if order.requirement.get("mrtd"):
        data["stepUp"] = {"mrtd": True}
    signature = signature_xml(order, data["device"]["uhi"])
    data["signature"] = base64.b64encode(signature.encode("utf-8")).decode("ascii")
    data["ocspResponse"] = CANNED_OCSP
    if order.body.get("returnRisk"):
        data["risk"] = settings.risk
    return data


def signature_xml(order: SimOrder, uhi: str) -> str:
    """A structurally faithful but unsigned XML-DSig document (reference §4.3)."""

    def b64s(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    func = "Signing" if order.kind.endswith("sign") else "Identification"
    signed_data = (
        '<bankIdSignedData xmlns="http://www.bankid.com/signature/v1.0.0/types" Id="bidSignedData">'
        + (f'<usrVisibleData charset="UTF-8" visible="wysiwys">{escape(order.body["userVisibleData"])}'
           "</usrVisibleData>" if order.body.get("userVisibleData") else "")
        + (f"<usrNonVisibleData>{escape(order.body['userNonVisibleData'])}</usrNonVisibleData>"
           if order.body.get("userNonVisibleData") else "")
        + f"<srvInfo><name>{b64s('cn=FP Testcert 5,name=Test av BankID')}</name>"
        f"<nonce>{b64s(order.order_ref)}</nonce><displayName>{b64s('Test av BankID')}</displayName>"
        "</srvInfo>"
        f"<clientInfo><funcId>{func}</funcId><version>{b64s('Personal=8.0.0&BankID_exe=8.0.0')}"
        "</version><env><ai>"
        f"<type>{b64s('IOS')}</type><deviceInfo>{b64s('17.0')}</deviceInfo>"
        f"<uhi>{escape(uhi)}</uhi><fsib>0</fsib><utb>cs1</utb>"
        "<requirement><condition><type>AllowedPolicies</type><value>1.2.3.4.25</value>"
        "</condition></requirement><uauth>pw</uauth></ai></env></clientInfo>"
        "</bankIdSignedData>"
    )
    digest = base64.b64encode(hashlib.sha256(signed_data.encode()).digest()).decode()
    certs = "".join(
        f"<X509Certificate>{b64s(f'simulated certificate {i}')}</X509Certificate>"
        for i in range(1, 4)
    )
    key_info = f'<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#" Id="bidKeyInfo"><X509Data>{certs}</X509Data></KeyInfo>'
    key_digest = base64.b64encode(hashlib.sha256(key_info.encode()).digest()).decode()
    c14n = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    sha256 = "http://www.w3.org/2001/04/xmlenc#sha256"

    def ref(uri: str, typ: str, value: str) -> str:
        return (
            f"<Reference Type={quoteattr(typ)} URI={quoteattr(uri)}><Transforms>"
            f'<Transform Algorithm="{c14n}"/></Transforms><DigestMethod Algorithm="{sha256}"/>'
            f"<DigestValue>{value}</DigestValue></Reference>"
        )

    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
        '<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{c14n}"/>'
        '<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        + ref("#bidSignedData", "http://www.bankid.com/signature/v1.0.0/types", digest)
        + ref("#bidKeyInfo", "http://www.w3.org/2000/09/xmldsig#", key_digest)
        + "</SignedInfo><SignatureValue></SignatureValue>"
        + key_info
        + f"<Object>{signed_data}</Object></Signature>"
    )

"""Typed requests and answers of the RP API v6.

Parsing is lenient on purpose: BankID adds statuses, hint codes and fields without notice
(reference §3.4), and an unknown value must reach the message table as RFA21/RFA22
instead of breaking a login.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

PENDING = "pending"
FAILED = "failed"
COMPLETE = "complete"

USER_AGENT_MAX = 256


@dataclass(frozen=True)
class Order:
    """An order BankID accepted. `qr_start_secret` must never leave the backend."""

    order_ref: str
    auto_start_token: str | None
    qr_start_token: str | None
    qr_start_secret: str | None = field(repr=False)
    # Epoch seconds when we received the answer: the QR time counts from here.
    received_at: float = 0.0


@dataclass(frozen=True)
class OrderRequirement:
    """`requirement` of one order. `personal_number` restricts who may finish it."""

    pin_code: bool | None = None
    mrtd: bool | None = None
    card_reader: str | None = None
    certificate_policies: tuple[str, ...] = ()
    personal_number: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pin_code:
            out["pinCode"] = True
        if self.mrtd:
            out["mrtd"] = True
        if self.card_reader:
            out["cardReader"] = self.card_reader
        if self.certificate_policies:
            out["certificatePolicies"] = list(self.certificate_policies)
        if self.personal_number:
            out["personalNumber"] = self.personal_number
        return out


@dataclass(frozen=True)
class WebContext:
    """Browser data for BankID's risk assessment (reference §3.1 `web`)."""

    device_identifier: str | None = None
    referring_domain: str | None = None
    user_agent: str | None = None

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.device_identifier:
            out["deviceIdentifier"] = self.device_identifier
        if self.referring_domain:
            out["referringDomain"] = self.referring_domain.encode("idna").decode("ascii").lower()
        if self.user_agent:
            out["userAgent"] = self.user_agent[:USER_AGENT_MAX]
        return out


@dataclass(frozen=True)
class AppContext:
    """Native-app data for BankID's risk assessment (reference §3.1 `app`)."""

    app_identifier: str | None = None
    device_os: str | None = None
    device_model_name: str | None = None
    device_identifier: str | None = None

    def to_json(self) -> dict[str, str]:
        pairs = {
            "appIdentifier": self.app_identifier,
            "deviceOS": self.device_os,
            "deviceModelName": self.device_model_name,
            "deviceIdentifier": self.device_identifier,
        }
        return {k: v for k, v in pairs.items() if v}


@dataclass(frozen=True)
class User:
    personal_number: str = field(repr=False)
    name: str
    given_name: str
    surname: str


@dataclass(frozen=True)
class Device:
    ip_address: str | None
    uhi: str | None


@dataclass(frozen=True)
class CompletionData:
    """Who finished the order, and BankID's proof of it (keep `raw` for audit)."""

    user: User
    device: Device
    bank_id_issue_date: date | None
    step_up_mrtd: bool | None
    risk: str | None
    signature: str | None = field(repr=False)
    ocsp_response: str | None = field(repr=False)
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompletionData:
        user = data.get("user") or {}
        device = data.get("device") or {}
        # BankID's own sample calls it setUp; everyone else stepUp (reference §4.3).
        step = data.get("stepUp") or data.get("setUp") or {}
        mrtd = step.get("mrtd") if isinstance(step, Mapping) else None
        return cls(
            user=User(
                personal_number=str(user.get("personalNumber", "")),
                name=str(user.get("name", "")),
                given_name=str(user.get("givenName", "")),
                surname=str(user.get("surname", "")),
            ),
            device=Device(ip_address=device.get("ipAddress"), uhi=device.get("uhi")),
            bank_id_issue_date=parse_issue_date(data.get("bankIdIssueDate")),
            step_up_mrtd=mrtd if isinstance(mrtd, bool) else None,
            risk=data.get("risk") if isinstance(data.get("risk"), str) else None,
            signature=data.get("signature"),
            ocsp_response=data.get("ocspResponse"),
            raw=dict(data),
        )


@dataclass(frozen=True)
class CollectResult:
    order_ref: str
    status: str
    hint_code: str | None = None
    completion: CompletionData | None = None

    @property
    def pending(self) -> bool:
        """Anything not terminal counts as pending: an unknown status keeps us polling."""
        return self.status not in (FAILED, COMPLETE)

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE and self.completion is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectResult:
        status = str(data.get("status", ""))
        completion = data.get("completionData")
        return cls(
            order_ref=str(data.get("orderRef", "")),
            status=status,
            hint_code=data.get("hintCode") if isinstance(data.get("hintCode"), str) else None,
            completion=CompletionData.from_json(completion)
            if status == COMPLETE and isinstance(completion, Mapping)
            else None,
        )


def parse_issue_date(value: object) -> date | None:
    """`2023-11-29`, `2023-11-29Z` or with an offset: the real server's form is unconfirmed."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def b64(text: str | bytes) -> str:
    """userVisibleData and userNonVisibleData go base64-encoded (UTF-8 first for text)."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")

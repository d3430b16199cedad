"""Settings of the BankID RP API v6 simulator (`connectors.bankid.simulator`).

Every timing BankID imposes is a setting so that tests can shrink it; the defaults are the
real values from the reference (§6: 30 s to `startFailed`, ~180 s to `expiredTransaction`,
results kept 3 min when complete and 5 min when failed).
"""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..identifiers import IdentifierError, check_personal_number


def _pno(value: str) -> str:
    try:
        return check_personal_number(value)
    except IdentifierError as exc:
        raise ValueError(f"{value!r}: {exc}") from None


class TestPerson(BaseModel):
    """Somebody holding a test BankID in the simulated app."""

    __test__ = False  # not a pytest test class despite the name
    model_config = ConfigDict(extra="forbid", frozen=True)

    personal_number: str
    given_name: str = Field(min_length=1)
    surname: str = Field(min_length=1)
    bank_id_issue_date: date = date(2023, 11, 29)

    @field_validator("personal_number")
    @classmethod
    def _check(cls, v: str) -> str:
        return _pno(v)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.surname}"


DEFAULT_PERSONS: tuple[TestPerson, ...] = (
    TestPerson(personal_number="199001012385", given_name="Anna", surname="Andersson"),
    TestPerson(personal_number="198502022398", given_name="Erik", surname="Eriksson"),
    TestPerson(personal_number="197003032385", given_name="Maria", surname="Johansson"),
    TestPerson(personal_number="196004042393", given_name="Lars", surname="Nilsson"),
    TestPerson(personal_number="200005052386", given_name="Fatima", surname="Ali"),
)


class BankIDSimulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Complete every order as this person (after `auto_approve_delay` seconds), as if they
    # had scanned the QR code and confirmed at once. For unattended demos and tests.
    auto_approve: str | None = None
    auto_approve_delay: float = Field(0.0, ge=0, le=170)
    persons: tuple[TestPerson, ...] = DEFAULT_PERSONS
    # Seconds until an order nobody picked up fails with startFailed.
    start_timeout: float = Field(30.0, gt=0)
    # Seconds from creation until an unfinished order fails with expiredTransaction.
    order_timeout: float = Field(180.0, gt=0)
    # How long a terminal result can be collected (once).
    complete_retention: float = Field(180.0, gt=0)
    failed_retention: float = Field(300.0, gt=0)
    # How many seconds a scanned QR frame may lag behind the order's age (the RP counts
    # from when it received the response, the browser fetches a frame a second) and how
    # far it may run ahead (clock skew) before the simulated app calls it too old.
    qr_max_lag: int = Field(5, ge=0, le=60)
    qr_max_lead: int = Field(2, ge=0, le=60)
    # device.ipAddress reported for orders picked up by scanning a QR code (the phone's
    # address as BankID sees it). None: reuse endUserIp.
    qr_device_ip: str | None = "192.0.2.77"
    # risk reported in completionData when the RP asked for returnRisk.
    risk: Literal["low", "moderate", "high"] = "low"
    # Reports say BankID also kills the existing order on alreadyInProgress (§5).
    already_in_progress_cancels_existing: bool = True
    # Answer 401 unless the ASGI TLS extension shows a client certificate, and 403 unless
    # its SHA-256 fingerprint (hex, any case, colons allowed) is listed (when a list is given).
    require_client_cert: bool = False
    allowed_client_cert_sha256: tuple[str, ...] = ()
    # Also accept `userVisibleDataFormat: plaintext` (newer 6.x revisions).
    accept_plaintext_format: bool = True

    @field_validator("auto_approve")
    @classmethod
    def _auto(cls, v: str | None) -> str | None:
        return None if v is None else _pno(v)

    @field_validator("qr_device_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_address(v)
        return v

    @field_validator("allowed_client_cert_sha256")
    @classmethod
    def _fps(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for fp in v:
            norm = fp.replace(":", "").lower()
            if len(norm) != 64 or any(c not in "0123456789abcdef" for c in norm):
                raise ValueError(f"{fp!r} is not a SHA-256 fingerprint (64 hex digits)")
            out.append(norm)
        return tuple(out)

    @model_validator(mode="after")
    def _consistent(self) -> BankIDSimulatorSettings:
        if not self.persons:
            raise ValueError("persons: list at least one test person")
        pnos = [p.personal_number for p in self.persons]
        if len(set(pnos)) != len(pnos):
            raise ValueError("persons: a personal number appears twice")
        if self.auto_approve and self.auto_approve not in pnos:
            raise ValueError("auto_approve: must be the personal number of one of `persons`")
        if self.start_timeout >= self.order_timeout:
            raise ValueError("start_timeout must be shorter than order_timeout")
        if self.auto_approve and self.auto_approve_delay >= self.start_timeout:
            raise ValueError("auto_approve_delay must be shorter than start_timeout")
        return self

    def person(self, personal_number: str) -> TestPerson | None:
        for p in self.persons:
            if p.personal_number == personal_number:
                return p
        return None


def from_config(data: dict[str, Any] | None, source: str = "<settings>") -> BankIDSimulatorSettings:
    """`connectors.bankid.simulator` of a broker config, validated here (not by the
    production settings model, which must not import the simulator); errors name the key."""
    from pydantic import ValidationError

    from ..config import ConfigError
    from ..validation import error_lines, format_loc

    try:
        return BankIDSimulatorSettings.model_validate(data or {})
    except ValidationError as exc:
        prefix = ("connectors", "bankid", "simulator")
        raise ConfigError("\n".join(f"{source}: {format_loc(loc)}: {msg}"
                                    for loc, msg in error_lines(exc, prefix))) from None

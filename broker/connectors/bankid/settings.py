"""Settings under `connectors.bankid`.

Validated up front so that a wrong certificate path, a template with an unknown
placeholder or a production setup without a certificate stops start-up with a message
naming the key, instead of failing at the first login.
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

BASE_URLS = {
    "test": "https://appapi2.test.bankid.com/rp/v6.0/",
    "production": "https://appapi2.bankid.com/rp/v6.0/",
}

_OID = re.compile(r"^\d+(\.\d+)*(\.\*)?$")
_TEMPLATE_FIELDS = {"client_name"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RPCertificate(_Model):
    """The RP certificate BankID issued us: a PKCS#12 file, or a PEM certificate and key."""

    p12: str | None = None
    cert: str | None = None
    key: str | None = None
    # Password of the .p12 file or of an encrypted PEM key; use a ${VAR} reference.
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RPCertificate:
        if self.p12 and (self.cert or self.key):
            raise ValueError("give either p12 or cert + key, not both")
        if not self.p12 and not (self.cert and self.key):
            raise ValueError("give p12 (PKCS#12 file), or both cert and key (PEM files)")
        return self


class Timeouts(_Model):
    connect: float = Field(5.0, gt=0, le=60)
    read: float = Field(10.0, gt=0, le=120)
    # Whole request, retries included (a login page should never hang on BankID).
    total: float = Field(20.0, gt=0, le=300)


class Requirement(_Model):
    """`requirement` sent with every order (what BankID must enforce)."""

    pin_code: bool = False
    mrtd: bool = False
    card_reader: Literal["class1", "class2"] | None = None
    # Empty: BankID's defaults. Test OIDs differ from production (reference §3.7).
    certificate_policies: tuple[str, ...] = ()

    @field_validator("certificate_policies")
    @classmethod
    def _oids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for oid in v:
            if not _OID.match(oid) or ("*" in oid and oid.count(".") < 4):
                raise ValueError(
                    f"{oid!r} is not an OID (digits and dots; one trailing '*' from position 5)"
                )
        return v


class NetworkLimit(_Model):
    """A network whose addresses share one budget of starts, e.g. a municipal office
    behind one NAT address (`192.0.2.10/32`) or a whole internal network."""

    network: str
    starts_per_minute: int = Field(ge=1, le=100_000)

    @field_validator("network")
    @classmethod
    def _network(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{v!r} is not an IP network (e.g. 192.0.2.0/24)") from None


class RateLimits(_Model):
    """Each order costs money and can be used to pester a person; cap who may start them.

    Counted per client address: an IPv4 address, or an IPv6 /64 (one household or office
    gets a whole /64, so a finer key would be no limit at all). 60 a minute lets an office
    of a few dozen staff behind one NAT address start their shift; `networks` gives known
    offices a budget of their own (the most specific matching network counts).
    """

    starts_per_ip_per_minute: int = Field(60, ge=1, le=10_000)
    starts_per_transaction: int = Field(10, ge=1, le=100)
    networks: tuple[NetworkLimit, ...] = ()


class BankIDSettings(_Model):
    # Required, no default: a forgotten line must not mean "the simulator". `simulator` runs
    # only with a loopback issuer or in `broker demo` (config.refuse_test_only).
    environment: Literal["simulator", "test", "production"]
    # Override of the RP API base URL (must end in /rp/v6.0/). For the simulator: the URL
    # it runs at; None means the lead wires it in-process.
    base_url: str | None = None
    certificate: RPCertificate | None = None
    # Pinned server root; by default the bundled root of the environment.
    ca_file: str | None = None
    timeouts: Timeouts = Timeouts()
    # How often /collect is called while an order is pending (BankID: about every 2 s).
    collect_interval: float = Field(2.0, ge=1.0, le=10.0)
    # Retries of a request answered 503 maintenance (the only retry BankID allows).
    maintenance_retries: int = Field(2, ge=0, le=5)
    maintenance_retry_delay: float = Field(1.0, ge=0, le=10)
    # Shown in the app so a person can spot a phishing attempt; {client_name} is replaced.
    user_visible_data: str = "Inloggning till {client_name}"
    user_visible_data_format: Literal["simpleMarkdownV1"] | None = None
    # Offer an optional personal-number field on the login page; when filled in it is sent
    # as requirement.personalNumber (only that person can finish the order; it never
    # starts an order without QR or autostart).
    personal_number_field: bool = False
    requirement: Requirement = Requirement()
    # Ask BankID for a risk indication (completionData.risk). Also asked whenever
    # block_risk is set, which needs it; this key asks for it without blocking.
    return_risk: bool = False
    # Block logins BankID rates at this risk or higher; None never blocks.
    block_risk: Literal["moderate", "high"] | None = "high"
    # After startFailed (nobody picked up the order) silently start a new order for this
    # long after the first, as BankID's own IdPs do; 0 disables.
    start_retry_window: float = Field(180.0, ge=0, le=600)
    rate_limits: RateLimits = RateLimits()
    # The embedded simulator's settings (environment simulator only). Validated by the
    # simulator package when the simulator is used (`simulators.bankid_settings.from_config`),
    # so that production code never imports the simulator.
    simulator: dict[str, Any] | None = None

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^/]+(/.*)?$", v):
            raise ValueError("must be an absolute http(s) URL")
        if not v.rstrip("/").endswith("/rp/v6.0"):
            raise ValueError("must end in /rp/v6.0/")
        return v.rstrip("/") + "/"

    @field_validator("user_visible_data")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as exc:
            raise ValueError(f"is not a valid template ({exc})") from None
        unknown = fields - _TEMPLATE_FIELDS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}}; only {{client_name}} is available"
            )
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _environment(self) -> BankIDSettings:
        if self.simulator is not None and self.environment != "simulator":
            raise ValueError("simulator: only used with environment simulator; remove it")
        if self.environment in ("test", "production"):
            if self.certificate is None:
                raise ValueError(
                    f"certificate: required for environment {self.environment} "
                    "(the RP certificate from BankID, as p12 or cert + key)"
                )
            url = self.base_url or BASE_URLS[self.environment]
            if not url.startswith("https://"):
                raise ValueError(f"base_url: must use https for environment {self.environment}")
        if self.environment == "production" and self.base_url and "test.bankid.com" in self.base_url:
            raise ValueError("base_url: points at BankID's test service in production")
        return self

    @property
    def url(self) -> str | None:
        """The RP API base URL to use; None for an in-process simulator."""
        return self.base_url or BASE_URLS.get(self.environment)

    def visible_text(self, client_name: str) -> str:
        return self.user_visible_data.format(client_name=client_name)

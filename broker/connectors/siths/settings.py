"""Settings under `connectors.siths`.

Shape (YAML)::

    siths:
      mode: proxy                     # proxy (recommended) | direct
      login_url: https://siths.login.example.kommun.se/login/siths/
      proxy:
        header: ssl-client-cert       # default depends on format
        format: nginx                 # nginx | envoy | traefik | haproxy | rfc9440
        chain_header: null            # haproxy / rfc9440 chain header (optional)
        trusted_proxies: [10.0.0.0/8] # CIDRs, or "unix" for a unix-socket peer
      direct:                         # only with mode: direct
        host: 0.0.0.0
        port: 8443
        certfile: tls/siths-host.pem
        keyfile: tls/siths-host.key
      trust:
        ca_bundle: siths-ca.pem       # pinned roots + accepted issuing CAs (PEM)
        issuers: null                 # issuer CN allow-list; null = person CAs in the bundle
        allow_reserve_cards: false
      revocation:
        ocsp_url: null                # override the certificate's AIA (closed networks)
        crl_urls: {}                  # issuer CN -> CRL URL, overrides the CDP
        soft_fail: false

The flat keys shown in DESIGN.md (`header`, `trusted_proxies`, `ca_bundle`) are accepted as
a shorthand and moved into their sections, so the design sketch stays a valid file.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...security import proxy_network

HeaderFormat = Literal["nginx", "envoy", "traefik", "haproxy", "rfc9440"]

#: The header each proxy uses by convention (reference §4.9).
DEFAULT_HEADERS: dict[str, str] = {
    "nginx": "ssl-client-cert",
    "envoy": "x-forwarded-client-cert",
    "traefik": "x-forwarded-tls-client-cert",
    "haproxy": "x-ssl-client-cert",
    "rfc9440": "client-cert",
}
DEFAULT_CHAIN_HEADERS: dict[str, str | None] = {
    "nginx": None,
    "envoy": None,  # the chain travels inside XFCC (Chain=)
    "traefik": None,  # all presented certificates are in the one header
    "haproxy": None,  # e.g. x-ssl-client-chain: %[ssl_c_chain_der,base64]
    "rfc9440": "client-cert-chain",
}

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

#: Recognised SITHS e-id person issuing CAs: (family, level). Any prefix such as "TEST " or
#: "SYSTEMTEST " is allowed in front; the pinned bundle decides which hierarchy is trusted.
_PERSON_CA = re.compile(r"SITHS e-id Person (HSA-id|ID|ID Mobile) (?:([23]) )?CA v\d+$")

UNIX_PEER = "unix"

#: The organisation of every CA in the broker's own test PKI (`testpki.py`: tests and
#: `broker demo`). Inera's TEST SITHS hierarchy is another matter: real test cards.
TEST_PKI_ORGANISATION = "SITHS-like test PKI (not Inera)"


def holds_test_pki(bundle: Path) -> bool:
    """Whether the CA bundle holds a CA of the broker's own test PKI. Test-only: whoever has
    its keys (a demo directory, a test run) can make a card for anybody. A bundle that cannot
    be read says False here; the connector reports it at start-up."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        certs = x509.load_pem_x509_certificates(bundle.read_bytes())
    except (OSError, ValueError):
        return False
    return any(attr.value == TEST_PKI_ORGANISATION for cert in certs
               for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))


def classify_issuer(common_name: str) -> tuple[str, int] | None:
    """(family, level) of a SITHS e-id person issuing CA from its CN, or None.

    family is "hsa-id" (subject serialNumber = HSA-id) or "person-id" (= personnummer);
    level 3 for ordinary cards (and Mobile), 2 for reserve cards (reference §1.1).
    """
    m = _PERSON_CA.search(common_name)
    if not m:
        return None
    kind, level = m.group(1), m.group(2)
    if kind == "ID Mobile":
        return ("person-id", 3) if level is None else None
    if level is None:
        return None
    return ("hsa-id" if kind == "HSA-id" else "person-id", int(level))


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProxySettings(_Model):
    """How the TLS-terminating proxy hands over the client certificate."""

    format: HeaderFormat = "nginx"
    header: str | None = None
    chain_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("header", "chain_header")
    @classmethod
    def _header(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _TOKEN.match(v):
            raise ValueError("must be an HTTP header name (letters, digits and '-')")
        return v.lower()

    @field_validator("trusted_proxies")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for item in v:
            if item != UNIX_PEER:
                proxy_network(item)
        return v

    @property
    def header_name(self) -> str:
        return self.header or DEFAULT_HEADERS[self.format]

    @property
    def chain_header_name(self) -> str | None:
        return self.chain_header or DEFAULT_CHAIN_HEADERS[self.format]

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies if n != UNIX_PEER]

    @property
    def trust_unix_socket(self) -> bool:
        return UNIX_PEER in self.trusted_proxies


class DirectSettings(_Model):
    """The TLS listener when uvicorn terminates TLS itself (see `direct.py`)."""

    host: str = "0.0.0.0"  # noqa: S104 - a dedicated listener; bind address is the operator's call
    port: int = Field(8443, ge=1, le=65535)
    certfile: str
    keyfile: str | None = None
    keyfile_password: str | None = Field(None, repr=False)


class TrustSettings(_Model):
    ca_bundle: str = Field(min_length=1)
    # Issuer CNs whose certificates may log in; None = every recognised SITHS e-id person
    # CA (HSA-id/ID, level 3 and 2) found in ca_bundle. Run one host per family by listing
    # only that family's CAs here.
    issuers: list[str] | None = None
    allow_reserve_cards: bool = False

    @field_validator("issuers")
    @classmethod
    def _issuers(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must name at least one issuing CA (or be left out)")
        for name in v:
            if classify_issuer(name) is None:
                raise ValueError(
                    f"{name!r} is not a SITHS e-id person issuing CA name "
                    "(e.g. 'SITHS e-id Person HSA-id 3 CA v1'); the level of assurance comes "
                    "from this name"
                )
        return v


class RevocationSettings(_Model):
    ocsp: bool = True
    crl: bool = True
    ocsp_url: str | None = None
    crl_urls: dict[str, str] = Field(default_factory=dict)
    soft_fail: bool = False
    ocsp_timeout: float = Field(3.0, gt=0, le=30)
    crl_timeout: float = Field(10.0, gt=0, le=120)
    # Clock skew allowed on thisUpdate/nextUpdate.
    leeway: int = Field(60, ge=0, le=600)
    # Cap on how long a verdict (or a CRL without nextUpdate) is kept.
    cache_max: int = Field(3600, ge=0, le=7 * 86400)
    # Refresh a CRL in the background this long before its nextUpdate.
    crl_refresh_margin: int = Field(600, ge=0)
    crl_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    require_nonce: bool = False

    @field_validator("ocsp_url")
    @classmethod
    def _ocsp(cls, v: str | None) -> str | None:
        return None if v is None else _check_url(v)

    @field_validator("crl_urls")
    @classmethod
    def _crls(cls, v: dict[str, str]) -> dict[str, str]:
        for url in v.values():
            _check_url(url)
        return v

    @model_validator(mode="after")
    def _some_source(self) -> RevocationSettings:
        if not (self.ocsp or self.crl) and not self.soft_fail:
            raise ValueError("with both ocsp and crl off every login fails; turn one on")
        return self


_SHORTHAND = {"header": "proxy", "header_format": "proxy", "trusted_proxies": "proxy",
              "ca_bundle": "trust"}


class SithsSettings(_Model):
    mode: Literal["proxy", "direct"] = "proxy"
    login_url: str | None = None
    proxy: ProxySettings = ProxySettings()
    direct: DirectSettings | None = None
    trust: TrustSettings
    revocation: RevocationSettings = RevocationSettings()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, section in _SHORTHAND.items():
            if key not in data:
                continue
            value = data.pop(key)
            target = dict(data.get(section) or {})
            name = "format" if key == "header_format" else key
            if name in target:
                raise ValueError(f"{key} is given twice (also as {section}.{name})")
            target[name] = value
            data[section] = target
        return data

    @field_validator("login_url")
    @classmethod
    def _login_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("must be an https URL (the dedicated mTLS host)")
        return _check_url(v)

    @model_validator(mode="after")
    def _mode(self) -> SithsSettings:
        if self.mode == "proxy" and not self.proxy.trusted_proxies:
            raise ValueError(
                "proxy mode needs proxy.trusted_proxies: the addresses the certificate header "
                "may come from"
            )
        if self.mode == "direct" and self.direct is None:
            raise ValueError("direct mode needs a direct section (certfile, keyfile, port)")
        return self

"""Getting the client certificate to the app: from a trusted proxy's header, or from TLS.

The header is the only contract between proxy and app, and anyone can send any header:
a certificate header is only read when the TCP peer is one of the configured proxies
(`trusted_proxies`), and whatever it carries is verified again in `validation.py`. A header
from anyone else is ignored and logged at warning, without its contents.

Pass the *TCP peer* (`scope["client"]` as uvicorn saw it), not an address rewritten from
`X-Forwarded-For`: the question is "did this header come from our proxy", not "who is the
user".

Formats (reference §4.9):

- nginx / ingress-nginx `ssl-client-cert: $ssl_client_escaped_cert` - URL-encoded PEM leaf.
- Envoy `x-forwarded-client-cert` - `;`-separated `Key=Value` pairs per hop, hops separated by
  `,`; `Cert=` URL-encoded PEM leaf, `Chain=` URL-encoded PEM chain with leaf, `Hash=` hex
  SHA-256 of the leaf DER, `By=` the proxy. The *last* element is the one our edge proxy added
  (APPEND_FORWARD appends; SANITIZE_SET leaves only one), so that is the one we read.
- Traefik `X-Forwarded-Tls-Client-Cert` - base64 DER bodies without armour joined by `,`, leaf
  first; not URL-encoded (never `unquote_plus` it: `+` is base64).
- HAProxy `%[ssl_c_der,base64]` - base64 DER leaf; chain `%[ssl_c_chain_der,base64]` is the
  base64 of concatenated DER certificates.
- RFC 9440 `Client-Cert: :<base64 DER>:`, `Client-Cert-Chain: :<b64>:, :<b64>:` (no leaf).

Direct mode: `direct.py` puts the chain into the ASGI TLS extension,
`scope["extensions"]["tls"]["client_cert_chain"]`, as **PEM strings, leaf first** - the
representation the ASGI spec defines, so a future uvicorn that fills it itself drops in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .settings import HeaderFormat, SithsSettings

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HeaderSource = Mapping[str, str] | Iterable[tuple[bytes, bytes]]

# A SITHS chain of three RSA-4096 certificates is ~10 KB; anything far beyond is not ours.
MAX_HEADER_CHARS = 64 * 1024
_PEM = re.compile(
    r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL
)


class CertificateDecodeError(ValueError):
    """A header value that should hold a certificate but does not; the message says why."""


@dataclass(frozen=True)
class PresentedCertificate:
    """The certificate a person presented, plus whatever chain came with it (unverified)."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    # "header:<format>" or "tls" - for the audit evidence.
    source: str = field(default="tls", compare=False)


# --- decoding helpers -----------------------------------------------------------------

def _b64(text: str) -> bytes:
    """Base64 (standard or URL-safe alphabet), tolerant of missing padding and whitespace."""
    cleaned = "".join(text.split())
    if "-" in cleaned or "_" in cleaned:
        cleaned = cleaned.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateDecodeError("not valid base64") from None


def _der(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateDecodeError("not a DER X.509 certificate") from None


def _pems(text: str) -> list[x509.Certificate]:
    """Every PEM certificate in `text`; whitespace inside the body is ignored (nginx's
    deprecated `$ssl_client_cert` indents with tabs, Apache turns newlines into spaces)."""
    bodies = _PEM.findall(text)
    if not bodies:
        raise CertificateDecodeError("no PEM certificate found")
    return [_der(_b64(body)) for body in bodies]


def _split_der(blob: bytes) -> list[x509.Certificate]:
    """Split concatenated DER certificates (HAProxy's `ssl_c_chain_der`) by ASN.1 lengths."""
    out: list[x509.Certificate] = []
    pos = 0
    while pos < len(blob):
        if blob[pos] != 0x30 or pos + 2 > len(blob):
            raise CertificateDecodeError("chain is not a sequence of DER certificates")
        first = blob[pos + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            n = first & 0x7F
            if n == 0 or n > 4 or pos + 2 + n > len(blob):
                raise CertificateDecodeError("bad DER length in chain")
            length, header = int.from_bytes(blob[pos + 2 : pos + 2 + n], "big"), 2 + n
        end = pos + header + length
        if end > len(blob):
            raise CertificateDecodeError("truncated certificate in chain")
        out.append(_der(blob[pos:end]))
        pos = end
    return out


def _pem_or_der(value: str) -> list[x509.Certificate]:
    """The reference's robust rule: percent-decode only when `%` is present; PEM when armoured,
    otherwise base64 DER."""
    text = value.strip().strip('"').strip(":")
    if "%" in text:
        text = unquote(text)
    if "BEGIN CERTIFICATE" in text:
        return _pems(text)
    return [_der(_b64(text))]


# --- one decoder per format ------------------------------------------------------------

def decode_nginx(value: str) -> PresentedCertificate:
    """`$ssl_client_escaped_cert`: the URL-encoded PEM leaf."""
    certs = _pems(unquote(value.strip()))
    return PresentedCertificate(certs[0], tuple(certs[1:]), "header:nginx")


def _xfcc_elements(value: str) -> list[dict[str, list[str]]]:
    """Parse XFCC into elements of key -> values, honouring double quotes and `\\"`."""
    elements: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    key, buf, in_quotes, reading_key = "", [], False, True
    i = 0

    def flush_pair() -> None:
        nonlocal key, buf, reading_key
        text = "".join(buf)
        if reading_key:
            if text.strip():
                raise CertificateDecodeError("XFCC pair without '='")
        else:
            current.setdefault(key.strip().lower(), []).append(text)
        key, buf, reading_key = "", [], True

    while i < len(value):
        ch = value[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(value):
                buf.append(value[i + 1])
                i += 2
                continue
            if ch == '"':
                in_quotes = False
            else:
                buf.append(ch)
        elif ch == '"':
            in_quotes = True
        elif ch == "=" and reading_key:
            key, buf, reading_key = "".join(buf), [], False
        elif ch == ";":
            flush_pair()
        elif ch == ",":
            flush_pair()
            elements.append(current)
            current = {}
        else:
            buf.append(ch)
        i += 1
    if in_quotes:
        raise CertificateDecodeError("XFCC has an unterminated quote")
    flush_pair()
    elements.append(current)
    return [e for e in elements if e]


def decode_envoy(value: str) -> PresentedCertificate:
    """XFCC: read the last element (the hop our edge proxy added)."""
    elements = _xfcc_elements(value)
    if not elements:
        raise CertificateDecodeError("empty XFCC header")
    element = elements[-1]
    chain: list[x509.Certificate] = []
    if element.get("chain"):
        chain = _pems(unquote(element["chain"][0]))
    if element.get("cert"):
        leaf = _pems(unquote(element["cert"][0]))[0]
    elif chain:
        leaf = chain[0]
    else:
        raise CertificateDecodeError("XFCC element has no Cert or Chain")
    expected = element.get("hash")
    if expected:
        actual = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
        if expected[0].strip().lower() != actual:
            raise CertificateDecodeError("XFCC Hash does not match the certificate")
    rest = [c for c in chain if c != leaf]
    return PresentedCertificate(leaf, tuple(rest), "header:envoy")


def decode_traefik(value: str) -> PresentedCertificate:
    """Base64 DER bodies joined by `,`, leaf first. Percent-decoded only if it has `%`."""
    text = value.strip()
    if "%" in text:
        text = unquote(text)  # never unquote_plus: '+' is part of base64
    if "BEGIN CERTIFICATE" in text:
        certs = _pems(text)
    else:
        certs = [_der(_b64(part)) for part in text.split(",") if part.strip()]
    if not certs:
        raise CertificateDecodeError("empty Traefik header")
    return PresentedCertificate(certs[0], tuple(certs[1:]), "header:traefik")


def decode_haproxy(value: str, chain_value: str | None = None) -> PresentedCertificate:
    """`ssl_c_der,base64` leaf, optional `ssl_c_chain_der,base64` chain."""
    leaf = _pem_or_der(value)[0]
    chain: list[x509.Certificate] = []
    if chain_value and chain_value.strip():
        chain = _split_der(_b64(chain_value.strip()))
    return PresentedCertificate(leaf, tuple(c for c in chain if c != leaf), "header:haproxy")


def _sf_bytes(item: str) -> bytes:
    """One RFC 8941 byte sequence `:base64:` (parameters after `;` are ignored)."""
    token = item.strip().split(";", 1)[0].strip()
    if len(token) < 2 or not (token.startswith(":") and token.endswith(":")):
        raise CertificateDecodeError("not a structured-field byte sequence (:base64:)")
    return _b64(token[1:-1])


def decode_rfc9440(value: str, chain_value: str | None = None) -> PresentedCertificate:
    """`Client-Cert: :b64:` and `Client-Cert-Chain: :b64:, :b64:` (chain without the leaf)."""
    leaf = _der(_sf_bytes(value))
    chain: list[x509.Certificate] = []
    if chain_value and chain_value.strip():
        chain = [_der(_sf_bytes(part)) for part in chain_value.split(",") if part.strip()]
    return PresentedCertificate(leaf, tuple(chain), "header:rfc9440")


def decode_header(fmt: HeaderFormat, value: str, chain_value: str | None = None) -> PresentedCertificate:
    """Decode one header value in the given proxy format; raises CertificateDecodeError."""
    if len(value) > MAX_HEADER_CHARS or len(chain_value or "") > MAX_HEADER_CHARS:
        raise CertificateDecodeError("certificate header is too large")
    if fmt == "nginx":
        return decode_nginx(value)
    if fmt == "envoy":
        return decode_envoy(value)
    if fmt == "traefik":
        return decode_traefik(value)
    if fmt == "haproxy":
        return decode_haproxy(value, chain_value)
    if fmt == "rfc9440":
        return decode_rfc9440(value, chain_value)
    raise ValueError(f"unknown header format {fmt!r}")


# --- trusted peer + header lookup -------------------------------------------------------

def _header_values(headers: HeaderSource, name: str) -> list[str]:
    """Every value of one header (case-insensitive)."""
    name = name.lower()
    if isinstance(headers, Mapping):
        getlist = getattr(headers, "getlist", None)
        if getlist is not None:  # starlette Headers
            return list(getlist(name))
        return [v for k, v in headers.items() if k.lower() == name]
    return [v.decode("latin-1") for k, v in headers if k.decode("latin-1").lower() == name]


def peer_is_trusted(peer: str | None, trusted: Sequence[Network], *, unix_socket: bool = False) -> bool:
    """True when the TCP peer is one of the proxies (None = unix socket)."""
    if peer is None or peer == "":
        return unix_socket
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in trusted)


def certificate_from_headers(
    peer: str | None,
    headers: HeaderSource,
    *,
    trusted_proxies: Sequence[Network],
    header: str,
    fmt: HeaderFormat,
    chain_header: str | None = None,
    trust_unix_socket: bool = False,
) -> PresentedCertificate | None:
    """The certificate the proxy forwarded, or None.

    None when the header is absent or empty (no certificate), when it comes from a peer that
    is not a trusted proxy, appears twice, or cannot be decoded (each logged at warning).
    """
    values = _header_values(headers, header)
    chain_values = _header_values(headers, chain_header) if chain_header else []
    if not values and not chain_values:
        return None
    if not peer_is_trusted(peer, trusted_proxies, unix_socket=trust_unix_socket):
        log.warning("ignored client-certificate header %r from untrusted peer %s", header, peer)
        return None
    if len(values) > 1 or len(chain_values) > 1:
        # The proxy replaces these headers; two copies mean one was smuggled past it.
        log.warning("refused client-certificate header %r: it appears more than once", header)
        return None
    value = values[0] if values else None
    chain_value = chain_values[0] if chain_values else None
    if value is None or not value.strip() or value.strip() in ("(null)", "-"):
        return None
    try:
        return decode_header(fmt, value, chain_value)
    except CertificateDecodeError as exc:
        log.warning("could not decode client-certificate header %r (%s): %s", header, fmt, exc)
        return None


def certificate_from_scope(scope: Mapping[str, Any]) -> PresentedCertificate | None:
    """The certificate from the ASGI TLS extension (`client_cert_chain`, PEM strings, leaf
    first; DER bytes tolerated), or None when the client sent none."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    certs: list[x509.Certificate] = []
    try:
        for item in chain:
            if isinstance(item, bytes | bytearray):
                certs.append(_der(bytes(item)))
            else:
                certs.extend(_pems(str(item)))
    except CertificateDecodeError as exc:
        log.warning("could not decode the TLS client certificate: %s", exc)
        return None
    if not certs:
        return None
    return PresentedCertificate(certs[0], tuple(certs[1:]), "tls")


def presented_certificate(scope: Mapping[str, Any], settings: SithsSettings) -> PresentedCertificate | None:
    """The certificate of this request, read the way `settings.mode` says.

    `scope` is the ASGI scope (a Starlette `request.scope`); in proxy mode its `client` must be
    the TCP peer (do not run a proxy-headers middleware in front of the mTLS host's app).
    """
    if settings.mode == "direct":
        return certificate_from_scope(scope)
    client = scope.get("client")
    peer = client[0] if client else None
    proxy = settings.proxy
    return certificate_from_headers(
        peer,
        scope.get("headers") or [],
        trusted_proxies=proxy.networks(),
        header=proxy.header_name,
        fmt=proxy.format,
        chain_header=proxy.chain_header_name,
        trust_unix_socket=proxy.trust_unix_socket,
    )

"""Direct mode: uvicorn terminates TLS itself and hands the client certificate to the app.

Prefer proxy mode (nginx in front, `intake.py`). Direct mode exists for small installations
and for development, and has real drawbacks (reference §5.3):

- Python's `ssl` cannot send the list of accepted CA names in the CertificateRequest, so
  browsers and Net iD offer *every* certificate the person has (HSA-id, personnummer,
  signature, Telia...) instead of only the right one; nginx's `ssl_client_certificate` can.
- A certificate that does not verify aborts the handshake: the person sees a browser error,
  not our page that explains what to do (nginx `optional_no_ca` + `error_page 495` can).
- CRLs inside the SSLContext are fixed at start-up; revocation has to be done in the app
  anyway (it is, in `revocation.py`).
- uvicorn (0.54) does not put the peer certificate into the ASGI scope at all, so this
  module subclasses uvicorn's HTTP protocols - internals that can change in any release.
  That is why the uvicorn version is pinned here and checked at import.

What the adapter does: on `connection_made` (after the TLS handshake) it reads
`transport.get_extra_info("ssl_object").getpeercert(binary_form=True)` and sets, for every
HTTP request of that connection, the ASGI TLS extension
`scope["extensions"]["tls"] = {"client_cert_chain": [<PEM leaf>], ...}` (PEM strings, leaf
first, as the ASGI spec says; Python 3.11 cannot give the rest of the chain). WebSocket
upgrades do not get it (not needed for the login page).

Use::

    config = direct_server_config(app, settings.direct, ca_bundle=path)
    uvicorn.Server(config).run()
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import DirectSettings

TESTED_UVICORN = (0, 54)


class UnsupportedUvicorn(RuntimeError):
    """The installed uvicorn is not the one this adapter was tested with."""


def check_uvicorn_version(version: str) -> None:
    """Fail loudly unless `version` has the major.minor this adapter was tested against."""
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    if major_minor != TESTED_UVICORN:
        raise UnsupportedUvicorn(
            f"broker.connectors.siths.direct subclasses uvicorn's HTTP protocols and was tested "
            f"with uvicorn {TESTED_UVICORN[0]}.{TESTED_UVICORN[1]}.x, but uvicorn {version} is "
            "installed. Run the direct-mode tests (tests/siths/test_direct.py) against this "
            "version and update TESTED_UVICORN, or use proxy mode (recommended)."
        )


check_uvicorn_version(uvicorn.__version__)

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for this connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name = None
    if der:
        cert = x509.load_der_x509_certificate(der)
        chain = [cert.public_bytes(Encoding.PEM).decode("ascii")]
        name = cert.subject.rfc4514_string()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _with_tls(app: ASGIApp, tls: dict[str, Any]) -> ASGIApp:
    async def wrapped(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            extensions = scope.setdefault("extensions", {})
            extensions["tls"] = dict(tls, client_cert_chain=list(tls["client_cert_chain"]))
        await app(scope, receive, send)

    return wrapped


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that adds the ASGI TLS extension to each request."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = tls_extension(transport)
        if tls is not None:
            self.app = _with_tls(self.app, tls)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class TlsHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[valid-type,misc]
        """uvicorn's httptools protocol that adds the ASGI TLS extension to each request."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            tls = tls_extension(transport)
            if tls is not None:
                self.app = _with_tls(self.app, tls)


def http_protocol() -> type[asyncio.Protocol]:
    """The adapter protocol class to pass as uvicorn's `http=` (httptools when installed)."""
    if HttpToolsProtocol is not None:
        return TlsHttpToolsProtocol
    return TlsH11Protocol


def build_server_ssl_context(
    certfile: str | Path,
    keyfile: str | Path | None,
    ca_bundle: str | Path,
    password: str | None = None,
) -> ssl.SSLContext:
    """Server context that asks for a client certificate (CERT_OPTIONAL) and verifies it
    against the SITHS bundle. A missing certificate reaches the app (our page explains it);
    an untrusted one aborts the handshake (Python's ssl cannot do otherwise)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, password)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(cafile=str(ca_bundle))
    # Lets a bundle pin an issuing CA without its root.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # No session tickets: a resumed session has no peer certificate to read.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _ssl_factory(certfile: str, keyfile: str | None, ca_bundle: str, password: str | None,
                 config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    return build_server_ssl_context(certfile, keyfile, ca_bundle, password)


def direct_server_config(app: Any, settings: DirectSettings, *, ca_bundle: str | Path,
                         base_dir: Path | None = None, **uvicorn_kwargs: Any) -> uvicorn.Config:
    """A uvicorn Config for the dedicated mTLS listener with the adapter protocol.

    Relative paths are resolved against `base_dir` (the config file's directory). The SSL
    factory is a `functools.partial` of a module-level function, so it pickles for workers.
    """

    def resolve(p: str | Path | None) -> str | None:
        if p is None:
            return None
        path = Path(p)
        return str(path if path.is_absolute() or base_dir is None else base_dir / path)

    certfile, keyfile = resolve(settings.certfile), resolve(settings.keyfile)
    factory = functools.partial(_ssl_factory, certfile, keyfile, resolve(ca_bundle),
                                settings.keyfile_password)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=http_protocol(),
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_context_factory=factory,
        **uvicorn_kwargs,
    )

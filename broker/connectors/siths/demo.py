"""SITHS for `broker demo`: a throwaway test PKI, a TLS host and a card to import.

`prepare_demo` makes a fresh SITHS-like hierarchy (`testpki.py`) whose OCSP responder and
CRLs are served by `DemoSiths.pki_app` on `pki_port`, writes the trust bundle, a server
certificate for the SITHS host and PKCS#12 test cards, and returns the `connectors.siths`
settings for direct mode. Nothing here is trusted by a browser: the SITHS host's certificate
comes from the test Function CA, so the browser warns once (or import `root.pem` as an
authority in a *test* browser profile). Each run makes new keys, so re-import the card.

The lead's `broker demo` wiring, in short::

    demo = prepare_demo(workdir / "siths", "localhost", 8443, 8099)
    config["connectors"]["siths"] = demo.settings
    # serve demo.pki_app on 127.0.0.1:8099, and the app on 8443 via host.siths_server_config
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .testpki import SithsTestPKI, create_pki_app, create_test_pki

#: The card the demo tells people to import: Anna Andersson's HSA-id authentication
#: certificate (HSA-id SE2321000016-1234), the person the demo's authorization file knows.
DEMO_CARD = "anna-hsa"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class DemoSiths:
    """Everything `broker demo` needs to offer SITHS login."""

    settings: dict[str, Any]  # -> config["connectors"]["siths"]
    login_url: str
    directory: Path
    ca_bundle: Path
    root_ca: Path  # the test root, to trust in a test browser profile (optional)
    server_cert: Path  # chain: server certificate + test Function CA
    server_key: Path
    card: Path  # PKCS#12 test card (Anna, HSA-id certificate)
    card_password: str
    pki: SithsTestPKI
    pki_app: Any  # ASGI app: OCSP (POST /ocsp), CRLs, CA certificates
    pki_url: str
    cards: dict[str, Path] = field(default_factory=dict)  # every test card: label -> .p12


def prepare_demo(workdir: Path, host: str, port: int, pki_port: int, *,
                 bind: str = "127.0.0.1", card_password: str | None = None,
                 allow_reserve_cards: bool = False) -> DemoSiths:
    """Create the demo PKI and files in `workdir` and the direct-mode settings.

    `host:port` is where the browser reaches the SITHS host (`login_url`), `bind` what the
    listener binds; `host:pki_port` is where the broker reaches the OCSP/CRL server. The card
    password is random unless given (print it for the person importing the card).
    """
    workdir = Path(workdir)
    pki_url = f"http://{_url_host(host)}:{pki_port}"
    pki = create_test_pki(pki_url)
    names = [host, *(n for n in _LOOPBACK_NAMES if host in _LOOPBACK_NAMES and n != host)]
    pki.issue_server("siths-host", names)
    password = card_password or secrets.token_hex(4)
    paths = pki.write_files(workdir, password=password)
    login_url = f"https://{_url_host(host)}:{port}/login/siths/"
    settings: dict[str, Any] = {
        "mode": "direct",
        "login_url": login_url,
        "direct": {"host": bind, "port": port,
                   "certfile": str(paths["siths-host-chain.pem"]),
                   "keyfile": str(paths["siths-host.key"])},
        "trust": {"ca_bundle": str(paths["ca-bundle.pem"]),
                  "allow_reserve_cards": allow_reserve_cards},
    }
    person = {c.label for c in pki.cards.values() if c.issuer in pki.person_cas}
    return DemoSiths(
        settings=settings,
        login_url=login_url,
        directory=workdir,
        ca_bundle=paths["ca-bundle.pem"],
        root_ca=paths["root.pem"],
        server_cert=paths["siths-host-chain.pem"],
        server_key=paths["siths-host.key"],
        card=paths[f"{DEMO_CARD}.p12"],
        card_password=password,
        pki=pki,
        pki_app=create_pki_app(pki),
        pki_url=pki_url,
        cards={label: paths[f"{label}.p12"] for label in sorted(person)},
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

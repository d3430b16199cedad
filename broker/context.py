"""What the provider's handlers need (broker/oidc, the admin app), built once per app by
the app factory (no global state). Connectors never see it: they are given a
`ConnectorContext` (connectors/base.py), the few things a login method needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from .audit import AuditLog
    from .authz import AuthorizationSource
    from .config import Settings
    from .connectors import Connector
    from .grants import GrantStore
    from .keys import KeyRing
    from .login_transaction import Transactions
    from .metrics import Metrics
    from .oidc.backchannel import Courier, Outbox
    from .oidc.clients import ClientRegistry
    from .oidc.server import Provider
    from .oidc.signer import Signer
    from .security import Cookies, CsrfTokens, TrustedProxies
    from .session import Sessions
    from .store import Store
    from .web.pages import Pages


@dataclass
class Broker:
    settings: Settings
    store: Store
    keyring: KeyRing
    signer: Signer
    clients: ClientRegistry
    provider: Provider
    grants: GrantStore
    transactions: Transactions
    sessions: Sessions
    pages: Pages
    cookies: Cookies
    proxies: TrustedProxies
    source: AuthorizationSource
    audit: AuditLog
    http: httpx.AsyncClient
    outbox: Outbox
    courier: Courier
    csrf: CsrfTokens  # the one CSRF mechanism (security.py), keyed from the shared secret
    connectors: dict[str, Connector] = field(default_factory=dict)
    # One registry per app; every recording goes through it (see metrics.py).
    metrics: Metrics = field(default_factory=lambda: _new_metrics())
    # Time as the grants and sessions see it (tests move it on instead of sleeping).
    clock: Callable[[], float] = time.time
    # ASGI apps a connector brings along (e.g. the embedded BankID simulator), by path.
    extra_mounts: dict[str, object] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def acr_values(self) -> list[str]:
        out: list[str] = []
        for connector in self.connectors.values():
            out.extend(a for a in connector.acr_values if a not in out)
        return out


def _new_metrics() -> Metrics:
    from .metrics import Metrics

    return Metrics()

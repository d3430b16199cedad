"""The seam between the provider and the upstream login methods.

A connector runs one upstream login (BankID, SITHS) inside a login transaction and hands
back an `Identity`, or raises a typed `LoginFailure`. It never issues codes or tokens and
never decides authorization: it calls `LoginFlow.finish` and the provider takes over.

What a connector is given is all it can reach (`ConnectorContext`): the login flow, its
own records in the store, the pages, the audit log and the metrics - never the provider's
`Broker`, and nothing of `broker.oidc` (an import contract in pyproject.toml holds both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp

    from ..audit import AuditLog
    from ..config import Settings
    from ..login_transaction import LoginTransaction
    from ..metrics import Metrics
    from ..security import TrustedProxies
    from ..store.scoped import ScopedStore
    from ..web.pages import Pages

LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"


@dataclass(frozen=True)
class Identity:
    """Who the upstream says the person is, at which assurance, and the proof for audit."""

    method: str
    # The level this login reached (a SITHS reserve card: LoA 2), not the best the method
    # can give; requests demanding a level are compared with it (oidc/assurance.py).
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    personal_identity_number: str | None = None
    hsa_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    name: str | None = None
    # Claims the connector can deliver to RPs when asked (full claim names as keys),
    # e.g. https://id.oidc.se/claim/deviceIp or https://id.oidc.se/claim/userCertificate.
    claims: Mapping[str, Any] = field(default_factory=dict)
    # Raw upstream evidence (completion data, certificate details): audit log only.
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        # Shallow, as LoginTransaction.to_record: the record is serialised at once, and
        # asdict's deep copy of the evidence was a tenth of a BankID login's CPU.
        record = dict(vars(self))
        record["amr"] = list(self.amr)
        record["claims"] = dict(self.claims)
        record["evidence"] = dict(self.evidence)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Identity:
        data = dict(record)
        data["amr"] = tuple(data.get("amr", ()))
        return cls(**data)


class LoginFailure(Exception):
    """An upstream login ended without an identity.

    `code` picks the page and message the person sees (`web/messages.py`); `detail` is
    for the log only and never shown.
    """

    def __init__(self, code: str, detail: str = "", *, retry: bool = True) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.retry = retry


class LoginFlow(Protocol):
    """What the provider offers a connector (implemented by `broker.oidc.flow.Flow`)."""

    async def load(self, request: Request, txn_id: str) -> LoginTransaction:
        """The transaction, only if it is alive and belongs to this browser."""

    async def find(self, txn_id: str) -> LoginTransaction | None:
        """The transaction without the browser check: only for a step on another host,
        which cannot see the browser's cookie and has proved itself with a single-use
        reference instead (SITHS). Its result goes back through `load`."""

    async def save(self, txn: LoginTransaction) -> None:
        """Persist connector state kept in `txn.upstream`."""

    async def form(self, request: Request, txn: LoginTransaction) -> dict[str, str]:
        """The POSTed form of a step of this login, once its CSRF token checks out (else
        the "form expired" page, 403)."""

    async def finish(self, request: Request, txn: LoginTransaction, identity: Identity) -> Response:
        """Hand over the identity; the response continues the login in the browser."""

    async def fail(self, request: Request, txn: LoginTransaction, failure: LoginFailure) -> Response:
        """Show the person what went wrong and what to do next."""

    def render(self, request: Request, template: str, context: dict[str, Any],
               status_code: int = 200) -> Response:
        """A page from `broker/web/templates` with the shared layout, locale and CSP nonce."""

    def client_name(self, txn: LoginTransaction) -> str:
        """The name of the service the person logs in to, as registered."""

    def other_methods_url(self, txn: LoginTransaction) -> str | None:
        """The method chooser, when this login has more than one method to offer."""

    def browser_pseudonym(self, request: Request, purpose: str) -> str:
        """A stable pseudonym of this browser for `purpose` (never the binding cookie
        itself), e.g. BankID's `deviceIdentifier`."""


@dataclass(frozen=True)
class ConnectorContext:
    """Everything a connector is given, built per connector by the app factory."""

    settings: Settings  # the configuration (read only); a connector reads its own block
    flow: LoginFlow
    records: ScopedStore  # the store, for keys under `<connector name>:` only
    pages: Pages  # error pages; `pages.add` takes the connector's texts and templates
    audit: AuditLog
    metrics: Metrics
    proxies: TrustedProxies  # the client's address, behind trusted proxies only
    http: httpx.AsyncClient  # outgoing HTTP (SITHS: OCSP and CRLs)
    # An ASGI app the connector brings along, at a path of the main host (the composition
    # mounts the embedded BankID simulator with it).
    mount: Callable[[str, ASGIApp], None]

    @property
    def issuer(self) -> str:
        return self.settings.issuer


class Connector(Protocol):
    """One upstream login method. Mounted under `/login/<name>/`; built by a
    `ConnectorFactory` from its `ConnectorContext`."""

    name: str
    #: acr values this connector can deliver, best first.
    acr_values: tuple[str, ...]

    def routes(self) -> list[BaseRoute]:
        """The connector's own pages and API, relative to its mount point."""

    async def start(self, request: Request, txn: LoginTransaction) -> Response:
        """Begin the upstream login for this transaction (the person chose this method)."""

    async def aclose(self) -> None:
        """Release pools and background tasks."""


ConnectorFactory = Callable[[ConnectorContext], Connector]

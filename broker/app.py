"""Builds the Starlette app from settings: routes, middleware, lifespan.

All wiring is explicit and happens here; handlers receive the `Broker` context they need.
Tests (and `broker demo`) inject their own store, authorization source or connectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from .audit import AuditLog
from .authz import (
    AuthorizationFileError,
    AuthorizationSource,
    AuthorizationSourceError,
    SourceStatus,
    open_source,
)
from .config import ClientSettings, ConfigError, Settings, refuse_test_only
from .connectors import Connector, ConnectorContext, ConnectorFactory
from .context import Broker
from .grants import GrantStore, TokenMinter
from .keys import KeyRing, KeyRingError
from .login_transaction import Transactions
from .logs import RequestContext, current_request_id
from .metrics import Metrics, TimedSource
from .oidc.authorize import AuthorizeEndpoint
from .oidc.backchannel import Courier, Outbox, logout_token_maker
from .oidc.clients import ClientRegistry
from .oidc.discovery import DiscoveryEndpoints
from .oidc.flow import Flow, FlowError
from .oidc.logout import LogoutEndpoint
from .oidc.server import Provider
from .oidc.signer import Signer
from .oidc.token_endpoint import TokenEndpoints
from .oidc.userinfo import UserInfoEndpoint
from .ratelimit import RateLimit
from .security import (
    Cookies,
    CsrfTokens,
    ForwardedHeaders,
    SecurityHeaders,
    TrustedProxies,
    content_security_policy,
    hygiene_headers,
)
from .session import Sessions
from .store import SealingCodec, Store, StoreError, open_store
from .store.epoch import StoreEpoch
from .store.instrumented import InstrumentedStore
from .store.scoped import ScopedStore
from .web.pages import HERE as WEB_DIR
from .web.pages import Pages
from .web.prefs import PreferenceCookie
from .web.wayback import WayBackLinks

if TYPE_CHECKING:
    from .admin.login import AdminLogin

log = logging.getLogger("broker")


def signed_lifetime(settings: Settings) -> int:
    """The longest any JWT we sign stays valid: how long a retired key stays published."""
    lifetimes = [settings.tokens.id_token_ttl, 300]
    for c in settings.clients:
        lifetimes.append(c.id_token_ttl or 0)
        if c.access_token_format == "jwt":
            lifetimes.append(c.access_token_ttl or settings.tokens.access_token_ttl)
    return max(lifetimes) + 60


def longest_family(settings: Settings) -> int:
    """The longest a refresh family can live: how long revocations and ended sessions
    must be remembered."""
    return max([settings.tokens.refresh_token_ttl]
               + [c.refresh_token_ttl or 0 for c in settings.clients])


def record_codec(keyring: KeyRing) -> SealingCodec:
    """Personal identity numbers are sealed wherever they sit in a record (store/codec.py)."""
    return SealingCodec(keyring.derived_keys("personal data at rest"))


def open_state_store(settings: Settings, keyring: KeyRing) -> Store:
    """The store `store.url` names, sealing personal data with the keys directory's secret."""
    return open_store(settings.store.url, settings.store.prefix, settings.store.timeout,
                      codec=record_codec(keyring), replicas=settings.store.replicas,
                      replica_timeout=settings.store.replica_timeout)


def open_keyring(settings: Settings) -> KeyRing:
    directory = settings.path(settings.keys.dir)
    keyring = KeyRing(directory, retention=signed_lifetime(settings))
    try:
        keyring.load()
    except KeyRingError as exc:
        raise ConfigError(f"{settings.source}: keys.dir: {exc}") from None
    missing = keyring.missing()
    if missing:
        if not settings.keys.generate:
            raise ConfigError(
                f"{settings.source}: keys.dir: missing {', '.join(missing)} in "
                f"{directory}; run `broker keys generate --config {settings.source}`")
        made = keyring.generate_missing()
        log.warning("generated %d keys in %s (keys.generate is on: development only)",
                    len(made), directory)
    return keyring


def default_connectors(settings: Settings) -> dict[str, ConnectorFactory]:
    """Connectors named in the config. Only real upstreams can be named there."""
    factories: dict[str, ConnectorFactory] = {}
    if settings.connectors.bankid is not None:
        factories["bankid"] = bankid_connector()
    if settings.connectors.siths is not None:
        from .connectors.siths.connector import create as siths

        factories["siths"] = siths
    return factories


def configured_acr_values(settings: Settings) -> list[str]:
    """The levels the connectors named in the config can reach, without building them
    (`broker check-config`); `Broker.acr_values` answers the same for the built ones."""
    out: list[str] = []
    if settings.connectors.bankid is not None:
        from .connectors.bankid.connector import BankIDConnector

        out.extend(BankIDConnector.acr_values)
    if settings.connectors.siths is not None:
        from .connectors.siths.connector import acr_values

        out.extend(a for a in acr_values(settings.connectors.siths) if a not in out)
    return out


SIMULATOR_PATH = "/bankid-simulator"


def bankid_connector(clock: Callable[[], float] | None = None) -> ConnectorFactory:
    """The BankID connector as `connectors.bankid` describes it. With environment
    `simulator` and no `base_url` the simulator runs in this process: the connector's
    `BankIDClient` reaches its RP API through an in-process transport, exactly as it reaches
    BankID over the network, and its app page is mounted at /bankid-simulator. This (with
    the demo and the CLI) is the only place that imports `broker.simulators`.

    `clock` (tests): one clock for the connector and the simulator."""
    from .connectors.bankid import connector as bankid

    def build(ctx: ConnectorContext) -> Connector:
        settings = ctx.settings.connectors.bankid
        if settings is None or settings.environment != "simulator" or settings.base_url:
            return bankid.create(ctx, clock=clock)
        from .simulators.bankid import create_simulator_app
        from .simulators.bankid_settings import from_config

        sim = create_simulator_app(from_config(settings.simulator, ctx.settings.source),
                                   clock=clock)
        ctx.mount(SIMULATOR_PATH, sim)
        return bankid.create(ctx, transport=httpx.ASGITransport(app=sim),
                             launch_base=f"{SIMULATOR_PATH}/app", clock=clock)

    return build


def open_audit(settings: Settings) -> AuditLog:
    """The audit log; a file path is relative to the config file, like every other path."""
    target = settings.audit.target
    audit = AuditLog(target if target == "stdout" else str(settings.path(target)))
    try:
        audit.open()
    except OSError as exc:
        raise ConfigError(f"{settings.source}: audit.target: cannot write {audit.target} "
                          f"({exc.strerror})") from None
    return audit


def open_authorization(settings: Settings,
                       on_status: Callable[[SourceStatus], None] | None = None
                       ) -> AuthorizationSource:
    """The configured source. A file source reads its file here: one that is missing or
    broken is a configuration error naming the file (exit status 2), not a traceback."""
    try:
        return open_source(settings.authorization, settings.base_dir, on_status)
    except AuthorizationFileError as exc:
        lines = str(exc).splitlines() or ["cannot be read"]
        raise ConfigError("\n".join(
            f"{settings.source}: {line if line.startswith('authorization.') else 'authorization.path: ' + line}"
            for line in lines)) from None


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    source: AuthorizationSource | None = None,
    connectors: dict[str, ConnectorFactory] | None = None,
    extra_routes: list[BaseRoute] | None = None,
    clock: Callable[[], float] = time.time,
    admin_today: Callable[[], date] | None = None,
    allow_test_only: bool = False,
) -> Starlette:
    """The broker app. `allow_test_only` (for `broker demo`) permits the test-only settings
    (the BankID simulator, generated keys, the memory store, the test PKI) whatever the
    issuer; otherwise they need a loopback issuer and anything else is refused here, before
    any of them is built. `admin_today` replaces the admin app's clock (tests of review
    dates)."""
    if not allow_test_only:
        refuse_test_only(settings, store_given=store is not None)
    metrics = Metrics()
    keyring = open_keyring(settings)
    source = source or open_authorization(settings, metrics.authorization_status)
    broker, admin_client = _build_broker(settings, keyring, store, source, metrics, clock)
    flow = Flow(broker, PreferenceCookie(broker.cookies),
                keyring.derived_keys("browser pseudonym")[0])
    _add_connectors(broker, flow, default_connectors(settings) if connectors is None else connectors)
    check_default_acr(settings, broker.acr_values())
    epoch = StoreEpoch(broker.store, clock)
    routes = _routes(broker, flow, epoch)
    admin_login = None
    if admin_client is not None:
        admin_login, admin_routes = _admin_app(broker, source, admin_client, admin_today)
        routes.extend(admin_routes)
    routes.extend(extra_routes or [])
    csp = content_security_policy(_form_targets(settings))
    app = Starlette(routes=routes, middleware=_middleware(broker, csp),
                    lifespan=_lifespan(broker, epoch),
                    exception_handlers=_error_handlers(
                        broker, hygiene_headers(csp, settings.secure_cookies)))
    _without_slash_redirects(app.router)
    app.state.broker = broker
    if admin_login is not None:
        admin_login.app = app  # the admin app redeems its codes at our own token endpoint
    return app


def _build_broker(settings: Settings, keyring: KeyRing, store: Store | None,
                  source: AuthorizationSource, metrics: Metrics, clock: Callable[[], float],
                  ) -> tuple[Broker, ClientSettings | None]:
    """The provider's context, and the admin app's client registration when it is on."""
    store = InstrumentedStore(store or open_state_store(settings, keyring), metrics)
    store.use_codec(record_codec(keyring))
    # Relying parties' jwks_uri and back-channel logout endpoints.
    http = httpx.AsyncClient(timeout=5.0, follow_redirects=False,
                             transport=metrics.transport("relying_party"))
    admin_client = None
    if settings.admin is not None:
        from .admin.login import admin_client as make_admin_client

        # Derived from the shared secret: the same in every replica and worker.
        admin_client = make_admin_client(settings.admin, settings.issuer,
                                         keyring.derived_keys("admin client")[0].hex())
    clients = ClientRegistry([*settings.clients, *([admin_client] if admin_client else [])], http)
    signer = Signer(keyring, settings.issuer)
    minter = TokenMinter(keyring.derived_keys("grant tokens"))
    remember = longest_family(settings)
    audit = open_audit(settings)
    outbox = Outbox(store, clients, settings.backchannel, clock)
    # From the keys directory, like every secret replicas share: a value kept in the store
    # would be made anew when Redis loses its data, and pages served by one replica would
    # then fail their CSRF check on another.
    csrf = CsrfTokens(keyring.derived_keys("csrf")[0])
    cookies = Cookies(settings.secure_cookies)
    broker = Broker(
        settings=settings,
        store=store,
        keyring=keyring,
        signer=signer,
        clients=clients,
        provider=Provider(settings, clients, signer, minter),
        grants=GrantStore(store, minter, clock, remember,
                          lambda token: signer.verify(token, check_exp=False)),
        transactions=Transactions(store, settings.login.transaction_ttl, csrf, clock),
        sessions=Sessions(store, settings.session.idle_timeout, settings.session.absolute_timeout,
                          remember=remember, clock=clock),
        pages=Pages(cookies=cookies, way_back=WayBackLinks(clients, PreferenceCookie(cookies))),
        cookies=cookies,
        proxies=TrustedProxies(settings.http.trusted_proxies),
        source=TimedSource(source, metrics),
        audit=audit,
        http=http,
        outbox=outbox,
        courier=Courier(outbox, http, logout_token_maker(settings, signer), audit, metrics),
        metrics=metrics,
        clock=clock,
        csrf=csrf,
    )
    return broker, admin_client


def _add_connectors(broker: Broker, flow: Flow, factories: dict[str, ConnectorFactory]) -> None:
    """Each connector gets its own ConnectorContext: the flow, its own records, no Broker."""
    for name, factory in factories.items():
        broker.connectors[name] = factory(ConnectorContext(
            settings=broker.settings, flow=flow, records=ScopedStore(broker.store, name),
            pages=broker.pages, audit=broker.audit, metrics=broker.metrics,
            proxies=broker.proxies, http=broker.http, mount=broker.extra_mounts.__setitem__))


def _routes(broker: Broker, flow: Flow, epoch: StoreEpoch) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    authorize_limit = RateLimit(broker.store, "authorize", clock=broker.clock)
    for part in (DiscoveryEndpoints(broker), AuthorizeEndpoint(broker, authorize_limit), flow,
                 TokenEndpoints(broker), UserInfoEndpoint(broker), LogoutEndpoint(broker)):
        routes.extend(part.routes())
    routes.append(Route("/healthz", _healthz, methods=["GET"]))
    routes.append(Route("/favicon.ico", lambda request: Response(status_code=204), methods=["GET"]))
    routes.append(Route("/readyz", _readyz(broker, epoch), methods=["GET"]))
    for name, connector in broker.connectors.items():
        routes.append(Mount(f"/login/{name}", routes=connector.routes()))
    for path, sub_app in broker.extra_mounts.items():
        routes.append(Mount(path, app=sub_app))
    routes.append(Mount("/static", app=StaticFiles(directory=str(WEB_DIR / "static")), name="static"))
    return routes


def _form_targets(settings: Settings) -> list[str]:
    """Where our forms may lead (CSP form-action): the RPs, and the SITHS host."""
    targets = [u for c in settings.clients for u in c.redirect_uris + c.post_logout_redirect_uris]
    if settings.connectors.siths is not None and settings.connectors.siths.login_url:
        # The chooser's POST redirects to the SITHS host; Chromium checks form-action there too.
        targets.append(settings.connectors.siths.login_url)
    return targets


def _middleware(broker: Broker, csp: str) -> list[Middleware]:
    settings = broker.settings
    return [Middleware(ForwardedHeaders, proxies=broker.proxies),
            Middleware(RequestContext, proxies=broker.proxies),
            Middleware(SecurityHeaders, csp=csp, hsts=settings.secure_cookies,
                       max_body=settings.http.max_body_bytes)]


GC_YOUNG = 10_000


def _lifespan(broker: Broker, epoch: StoreEpoch,
              ) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What start-up built lives as long as the process: leave it out of every later
        # garbage collection, whose pauses otherwise show in the p99 of every request
        # (measured in bench/: redemption p99 halved). Collect first: freeze nothing dead.
        gc.collect()
        gc.freeze()
        # Requests free what they allocate by reference counting; a young-generation
        # collection every 700 allocations only walks the objects of requests in flight
        # (60 a second, 3-4 % of a BankID login's CPU in bench/). Cycles are still
        # collected, after GC_YOUNG allocations.
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        with contextlib.suppress(StoreError):  # a store down at start-up: readiness says so
            await epoch.mark()
        broker.courier.start()  # what other replicas (or this one, before a crash) left
        try:
            yield
        finally:
            await broker.courier.aclose()
            for connector in broker.connectors.values():
                await connector.aclose()
            await broker.http.aclose()
            await broker.source.aclose()
            await broker.store.close()
            broker.audit.close()
            broker.metrics.close()

    return lifespan


def _admin_app(broker: Broker, source: AuthorizationSource, client: ClientSettings,
               today: Callable[[], date] | None) -> tuple[AdminLogin, list[BaseRoute]]:
    """The access administration app at /admin (broker/admin), a client of this broker."""
    from .admin.login import AdminLogin
    from .admin.messages import MESSAGES as ADMIN_MESSAGES
    from .admin.service import AdminService
    from .admin.web import AdminPages
    from .mail import Mailer

    settings = broker.settings
    assert settings.admin is not None  # the client exists only then
    broker.pages.add(texts=ADMIN_MESSAGES, templates=Path(__file__).parent / "admin" / "templates")
    from .authz.file import FileSource
    from .authz.sql import SqlSource

    # Requests and reviews need the SQL source; a file is listed read-only; an HTTP
    # service (or anything else) answers lookups by id only.
    engine = source.engine if isinstance(source, SqlSource) else None
    file_source = source if isinstance(source, FileSource) else None
    listed = (lambda: file_source.users) if file_source is not None else None
    kind = "sql" if engine is not None else "file" if file_source is not None else "http"
    service = AdminService(
        settings=settings.admin, issuer=settings.issuer, engine=engine, audit=broker.audit,
        mailer=Mailer(settings.smtp, settings.base_dir) if settings.smtp else None,
        today=today or date.today)
    login = AdminLogin(broker, settings.admin, client)
    pages = AdminPages(broker, settings.admin, login, service, kind, listed)
    return login, pages.routes()


def _without_slash_redirects(router: Router) -> None:
    """Starlette answers `/x/` with a redirect to `/x` whose host comes from the Host header
    (any host an attacker sends); here a path that does not exist is a 404 page, in every
    mounted app too. Every link and redirect we make is built from the issuer."""
    router.redirect_slashes = False
    for route in router.routes:
        if isinstance(route, Mount):
            inner = route.app.router if isinstance(route.app, Starlette) else route.app
            if isinstance(inner, Router):
                _without_slash_redirects(inner)


def check_default_acr(settings: Settings, offered: list[str]) -> None:
    """A client whose default_acr_values no configured login method can give could never
    log anyone in: say so at start-up, naming the key."""
    for i, client in enumerate(settings.clients):
        if client.default_acr_values and not set(client.default_acr_values) & set(offered):
            raise ConfigError(
                f"{settings.source}: clients[{i}].default_acr_values: no configured login "
                f"method gives any of these (they give: {', '.join(offered) or 'nothing'})")


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


READY_TIMEOUT = 1.0  # a probe must answer fast, even when Redis hangs instead of refusing


async def _answers(check: Callable[[], Any], errors: tuple[type[Exception], ...]) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await check()
    except TimeoutError:
        return "timeout"
    except errors:
        return "unavailable"
    return "ok"


def _readyz(broker: Broker, epoch: StoreEpoch) -> Callable[[Request], Any]:
    async def store_ready() -> None:
        await broker.store.ping()
        if await epoch.check():
            broker.metrics.error("store_data_lost")

    async def readyz(request: Request) -> Response:
        store, source = await asyncio.gather(
            _answers(store_ready, (StoreError,)),
            _answers(broker.source.ping, (AuthorizationSourceError,)))
        checks = {"store": store, "keys": "ok" if not broker.keyring.missing() else "missing",
                  "authorization": source}
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
        degraded = broker.source.status().degraded
        if degraded:
            # Still serving (its last good data answers), but an operator must look.
            body["degraded"] = {"authorization": degraded}
        return JSONResponse(body, status_code=200 if ok else 503,
                            headers={"Cache-Control": "no-store"})

    return readyz


_API_PATHS = ("/token", "/userinfo", "/revoke", "/introspect", "/jwks", "/.well-known")


def _error_handlers(broker: Broker, hygiene: list[tuple[bytes, bytes]]) -> dict[Any, Callable]:
    pages = broker.pages

    async def flow_error(request: Request, exc: FlowError) -> Response:
        broker.metrics.error(f"page_{exc.key}")
        return pages.error(request, exc.key, status_code=exc.status_code)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(_API_PATHS):
            return JSONResponse({"error": "invalid_request", "error_description": exc.detail},
                                status_code=exc.status_code, headers=exc.headers)
        return pages.error(request, "error_generic", status_code=exc.status_code)

    async def store_error(request: Request, exc: StoreError) -> Response:
        # Counted per failed operation by the instrumented store; a retry usually succeeds
        # (e.g. a Sentinel fail-over), so say so to machines as well as to people.
        log.error("store unavailable: %s", exc)
        if request.url.path.startswith(_API_PATHS):
            return JSONResponse({"error": "temporarily_unavailable",
                                 "error_description": "the state store is unavailable; retry"},
                                status_code=503, headers={"Retry-After": "1",
                                                          "Cache-Control": "no-store"})
        return pages.error(request, "error_unavailable", status_code=503)

    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client closed the connection (or the server cut off a body that did not
        # arrive in time, broker/http_limits.py) while its request was read: nobody listens.
        log.info("client went away during %s %s", request.method, request.url.path)
        return Response(status_code=400)

    async def unexpected(request: Request, exc: Exception) -> Response:
        broker.metrics.error("unhandled")
        log.exception("unhandled error on %s", request.url.path)
        response = pages.error(request, "error_generic", status_code=500)
        # Starlette answers this outside every middleware: add what they would have.
        for name, value in hygiene:
            response.headers[name.decode()] = value.decode()
        response.headers["Cache-Control"] = "no-store"
        request_id = current_request_id()
        if request_id:
            response.headers["X-Request-ID"] = request_id
        return response

    return {FlowError: flow_error, HTTPException: http_error, StoreError: store_error,
            ClientDisconnect: client_gone, Exception: unexpected}


def app_from_env() -> Starlette:
    """uvicorn factory for `broker serve` (each worker builds its own app)."""
    import os

    from .config import load_settings

    return create_app(load_settings(os.environ["BROKER_CONFIG"]))

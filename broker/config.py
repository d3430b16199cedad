"""One validated settings model, read from one YAML file plus `${VAR}` references.

Bad configuration stops start-up with a message that names the file and the key; the
broker never half-starts.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .admin.settings import AdminSettings
from .authz.settings import AuthorizationSettings
from .connectors.bankid.settings import BankIDSettings
from .connectors.siths.settings import SithsSettings
from .mail import SmtpSettings
from .security import proxy_network
from .validation import error_lines, format_loc

SigningAlg = Literal["RS256", "ES256"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]

# The scopes the broker knows (docs/claims.md says which claims each covers). A client may
# ask only for those its registration lists in `scopes` (default: openid only).
STANDARD_SCOPES = (
    "openid",
    "profile",
    "email",
    "https://id.oidc.se/scope/naturalPersonNumber",
    "https://id.oidc.se/scope/naturalPersonInfo",
    "assignments",
    "authn_info",
)


class ConfigError(Exception):
    """Configuration that cannot be used; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine (localhost or a loopback address)."""
    return _is_loopback(urlsplit(url).hostname)


def check_url(value: str, *, allow_query: bool = True) -> str:
    """An absolute https URL (http only on loopback, for development) without fragment."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("must be an absolute https URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is only allowed for localhost)")
    if parts.fragment or "#" in value:
        raise ValueError("must not contain a fragment")
    if not allow_query and parts.query:
        raise ValueError("must not contain a query")
    return value


class StoreSettings(_Model):
    # memory:// is for tests and `broker demo` only (see `switches_for_tests`).
    url: str = "memory://"
    prefix: str = "broker:"
    timeout: float = Field(2.0, gt=0)
    # Replicas that must have every write before it counts as done (Redis WAIT). With
    # Sentinel, 1: a write only the old master had is lost when a replica is promoted.
    replicas: int = Field(0, ge=0, le=5)
    # How long a write waits for those replicas before it fails (a clean 503).
    replica_timeout: float = Field(0.5, gt=0, le=10)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        from .store import SCHEMES

        if not v.startswith(SCHEMES):
            raise ValueError(f"must start with one of {', '.join(SCHEMES)}")
        return v


class KeySettings(_Model):
    dir: str = "keys"
    # Generate missing keys at start-up; for development and `broker demo` only (refused
    # unless the issuer is loopback, see `switches_for_tests`).
    generate: bool = False


class TokenSettings(_Model):
    code_ttl: int = Field(60, ge=10, le=600)
    id_token_ttl: int = Field(300, ge=30, le=300)
    access_token_ttl: int = Field(600, ge=30, le=86400)
    refresh_token_ttl: int = Field(8 * 3600, ge=60, le=30 * 86400)
    # A spent refresh token presented again within this window (a second tab, a retry
    # after a lost response) gets the very response of the rotation that spent it;
    # later, it revokes the whole family (RFC 9700 4.14.2).
    refresh_grace: int = Field(10, ge=0, le=120)
    # private_key_jwt: the longest an assertion may live (exp after iat, or after now).
    client_assertion_max_lifetime: int = Field(300, ge=30, le=3600)


class LoginSettings(_Model):
    transaction_ttl: int = Field(600, ge=60, le=3600)
    # /authorize requests per client address (IPv6: per /64) per minute; the excess gets
    # 429. A login is one request, so a municipal office behind one NAT address fits.
    authorize_per_address_per_minute: int = Field(300, ge=10, le=100000)


class SessionSettings(_Model):
    # A care shift: 1 h idle, 12 h at most.
    idle_timeout: int = Field(3600, ge=60)
    absolute_timeout: int = Field(12 * 3600, ge=300)


class HttpSettings(_Model):
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # SIGTERM: stop accepting, finish in-flight requests within this time, close pools.
    graceful_shutdown_seconds: int = Field(20, ge=1, le=300)
    # Per connection under `broker serve` (broker/http_limits.py; docs/operations.md): the
    # request line and headers at most this large and this many fields, complete within
    # header_timeout s of their first byte; the body within body_timeout s of the headers;
    # an idle connection closed after keep_alive_timeout s.
    max_header_bytes: int = Field(16 * 1024, ge=4 * 1024, le=1024 * 1024)
    max_header_fields: int = Field(100, ge=20, le=1000)
    header_timeout: float = Field(10.0, gt=0, le=300)
    body_timeout: float = Field(10.0, gt=0, le=300)
    keep_alive_timeout: int = Field(5, ge=1, le=300)

    @field_validator("trusted_proxies")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for item in v:
            proxy_network(item)
        return v


class BackchannelSettings(_Model):
    """Back-channel logout delivery: each notification waits in the store until its RP has
    it, retried with backoff by any replica, until `deadline` seconds after the logout."""

    timeout: float = Field(3.0, gt=0, le=30)  # one delivery attempt
    deadline: int = Field(24 * 3600, ge=60, le=7 * 86400)
    max_backoff: int = Field(300, ge=1, le=3600)  # the longest pause between two attempts
    # A notification a replica took and did not finish (it died) is due again after this.
    lease: int = Field(30, ge=5, le=600)
    concurrency: int = Field(16, ge=1, le=256)  # deliveries in flight per replica


class MetricsSettings(_Model):
    # Prometheus metrics are served on their own port, away from the public ingress.
    port: int = Field(9100, ge=1, le=65535)


class AuditSettings(_Model):
    # "stdout", or a file path that JSON lines are appended to.
    target: str = "stdout"


class ClientSettings(_Model):
    client_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
    client_name: str
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    client_secret: str | None = Field(None, min_length=16, repr=False)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    redirect_uris: list[str] = Field(min_length=1)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    backchannel_logout_uri: str | None = None
    id_token_signed_response_alg: SigningAlg = "RS256"
    userinfo_signed_response_alg: SigningAlg | None = None
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    subject_type: Literal["public", "pairwise"] = "public"
    # What the client may ask for. Only `openid` unless registered: a client registered
    # without scopes must not receive personal identity numbers or names.
    scopes: list[str] = Field(default_factory=lambda: ["openid"])
    # Asked for when a request names no acr (acr_values or an acr claim): each login of
    # this client must reach one of these levels (OIDC Registration 2).
    default_acr_values: list[str] = Field(default_factory=list)
    # PKCE (S256) on every authorization request, or optional for this confidential client,
    # which then relies on `nonce` against code injection (OIDC Core 3.1.2.1; RFC 9700 2.1.1).
    pkce: Literal["required", "optional"] = "required"
    id_token_ttl: int | None = Field(None, ge=30, le=300)
    access_token_ttl: int | None = Field(None, ge=30, le=86400)
    refresh_token_ttl: int | None = Field(None, ge=60, le=30 * 86400)
    # Refresh tokens at all. They rotate at every use and end with the SSO session, so
    # `offline_access` is not offered.
    refresh_tokens: bool = True
    # Claim mapping: rename (`from: to`) or drop (`from: null`) claims for this client, and
    # release values of the user record under a claim name (`user.accounts.lifecare:
    # preferred_username`, `user.email: email`, `user.title: title`); see docs/admin.md.
    claims: dict[str, str | None] = Field(default_factory=dict)
    # Structured claims (the `assignments` list) as flat strings, for RPs that need them.
    flat_claims: bool = False
    # The way back from a login page whose login is gone (OIDC Registration §2): the
    # service's front page, and the URL that starts a new login there (preferred).
    client_uri: str | None = None
    initiate_login_uri: str | None = None

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _uris(cls, v: list[str]) -> list[str]:
        return [check_url(u) for u in v]

    @field_validator("jwks_uri", "backchannel_logout_uri", "client_uri", "initiate_login_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("jwks")
    @classmethod
    def _jwks(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        from joserfc.jwk import KeySet

        try:
            keys = KeySet.import_key_set(v)
        except Exception as exc:  # joserfc raises several types for bad input
            raise ValueError(f"is not a valid JWK set ({exc})") from None
        if any(k.is_private for k in keys):
            raise ValueError("must hold public keys only")
        return v

    @field_validator("claims")
    @classmethod
    def _claims(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        from .oidc.claims import check_claims_mapping

        check_claims_mapping(v)
        return v

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: list[str]) -> list[str]:
        if "openid" not in v:
            raise ValueError("must include 'openid'")
        if "offline_access" in v:
            raise ValueError("offline_access is not offered: refresh tokens end with the SSO "
                             "session (turn them on or off with refresh_tokens)")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> ClientSettings:
        method = self.token_endpoint_auth_method
        if method.startswith("client_secret") and not self.client_secret:
            raise ValueError(f"client_secret is required for {method}")
        if method == "private_key_jwt" and not (self.jwks or self.jwks_uri):
            raise ValueError("private_key_jwt needs jwks or jwks_uri")
        if self.jwks and self.jwks_uri:
            raise ValueError("give jwks or jwks_uri, not both")
        return self

    @property
    def confidential(self) -> bool:
        """A client that authenticates at the token endpoint (RFC 6749 2.1). Every method
        accepted today is; a public client (`none`) would have PKCE forced on it."""
        return self.token_endpoint_auth_method != "none"


class ConnectorSettings(_Model):
    bankid: BankIDSettings | None = None
    siths: SithsSettings | None = None


class Settings(_Model):
    issuer: str
    store: StoreSettings = StoreSettings()
    keys: KeySettings = KeySettings()
    tokens: TokenSettings = TokenSettings()
    login: LoginSettings = LoginSettings()
    session: SessionSettings = SessionSettings()
    http: HttpSettings = HttpSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    backchannel: BackchannelSettings = BackchannelSettings()
    # Discovery's service_documentation: where RP developers read how to integrate (e.g. a
    # published copy of docs/integration.md). Unset, discovery leaves the field out rather
    # than point at a page the broker does not serve.
    service_documentation: str | None = None
    # Secret for pairwise subject identifiers; required when any client uses them.
    pairwise_salt: str | None = Field(None, min_length=16, repr=False)
    clients: list[ClientSettings] = Field(default_factory=list)
    connectors: ConnectorSettings = ConnectorSettings()
    authorization: AuthorizationSettings = AuthorizationSettings()
    # The access administration app at /admin (broker/admin); off unless configured.
    admin: AdminSettings | None = None
    # Outgoing mail (the admin app's notices and review reminders).
    smtp: SmtpSettings | None = None
    # Where the file was read from, for messages and relative paths.
    source: str = Field("<settings>", exclude=True)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        check_url(v, allow_query=False)
        return v.rstrip("/")

    @field_validator("service_documentation")
    @classmethod
    def _documentation(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @model_validator(mode="after")
    def _clients(self) -> Settings:
        seen: set[str] = set()
        for c in self.clients:
            if c.client_id in seen:
                raise ValueError(f"client_id {c.client_id!r} appears twice")
            seen.add(c.client_id)
            if c.subject_type == "pairwise" and not self.pairwise_salt:
                raise ValueError(f"client {c.client_id!r} uses pairwise subjects: set pairwise_salt")
        return self

    @model_validator(mode="after")
    def _admin(self) -> Settings:
        if self.admin is None:
            return self
        known = {c.client_id for c in self.clients}
        if self.admin.client_id in known:
            raise ValueError(f"admin.client_id: {self.admin.client_id!r} is the admin app's own "
                             "client; it must not be listed under clients")
        for i, org in enumerate(self.admin.organizations):
            for client in org.clients:
                if client not in known:
                    raise ValueError(f"admin.organizations[{i}].clients: {client!r} is not a "
                                     "client_id under clients")
        return self

    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source != "<settings>" else Path.cwd()

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file."""
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    def client(self, client_id: str) -> ClientSettings | None:
        for c in self.clients:
            if c.client_id == client_id:
                return c
        return None

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")


def switches_for_tests(settings: Settings, *, store_given: bool = False) -> list[str]:
    """The settings meant for tests and `broker demo` that this config turns on, one line
    each naming the key. Each one lets somebody log in without a real credential, or
    weakens every login, so a deployment (an issuer that is not loopback) refuses them
    (`refuse_test_only`). `store_given`: the caller brings its own store (the URL is unused).
    """
    where = settings.source
    found: list[str] = []
    bankid = settings.connectors.bankid
    if bankid is not None and bankid.environment == "simulator":
        found.append(f"{where}: connectors.bankid.environment: simulator answers every order as "
                     "any test person (its control API approves them): tests and `broker demo` "
                     "only; use test or production")
        if (bankid.simulator or {}).get("auto_approve"):
            found.append(f"{where}: connectors.bankid.simulator.auto_approve: completes every "
                         "order without anybody: tests and `broker demo` only")
    if settings.keys.generate:
        found.append(f"{where}: keys.generate: generated keys are for development only (each "
                     "replica would sign with keys of its own); run `broker keys generate` "
                     "and set it to false")
    if not store_given and settings.store.url.startswith("memory://"):
        found.append(f"{where}: store.url: memory:// keeps logins in one process (workers and "
                     "replicas would not see each other's logouts, spent codes or revocations); "
                     "use redis://, rediss:// or redis+sentinel://")
    siths = settings.connectors.siths
    if siths is not None:
        from .connectors.siths.settings import holds_test_pki

        if holds_test_pki(settings.path(siths.trust.ca_bundle)):
            found.append(f"{where}: connectors.siths.trust.ca_bundle: holds the broker's own "
                         "test PKI (tests and `broker demo`), whose cards anybody can make")
    return found


def refuse_test_only(settings: Settings, *, store_given: bool = False) -> None:
    """Stop start-up (and `broker check-config`) when a test-only setting is on and the
    issuer is not loopback. `broker demo` and tests on localhost may use them."""
    if is_loopback_url(settings.issuer):
        return
    found = switches_for_tests(settings, store_given=store_given)
    if found:
        raise ConfigError("\n".join(found))


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, where: str, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return _VAR.sub(sub, value)
    return value


def format_errors(source: str, exc: ValidationError) -> str:
    return "\n".join(f"{source}: {format_loc(loc)}: {msg}" for loc, msg in error_lines(exc))


def parse_settings(data: Any, source: str = "<settings>", env: dict[str, str] | None = None) -> Settings:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of settings")
    expanded = _expand(data, "", dict(os.environ) if env is None else env)
    try:
        return Settings.model_validate({**expanded, "source": source})
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from None


def load_settings(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Settings:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}") from None
    try:
        return parse_settings(data, source, env)
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from None

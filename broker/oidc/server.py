"""Authlib's authorization server, bridged to the grants module.

Authlib validates (client authentication, grants, PKCE, redirect URIs, assertions, request
objects) and calls synchronous hooks; the store is async. So a token request is an
*exchange* (`TokenExchange`, typed): the endpoint first reads what the hooks will need
(the code, the refresh token's family, the client's keys), Authlib runs synchronously on
it and its hooks record the one change the request asks for (`exchange.change`: redeem,
rotate, revoke), and the endpoint then makes that change as one atomic store operation
(broker/grants/store.py). A request that Authlib refuses changes nothing, except that a
replayed code or a reused refresh token revokes what it belongs to.

Tokens of one generation are made again identically when asked (grants/tokens.py), and
every time in them is the generation's issue time, so a retry inside the grace window
gets the same response the first rotation produced.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError
from authlib.oidc.core import OpenIDJWTAuthenticationRequest
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from joserfc import jws
from starlette.datastructures import FormData, ImmutableMultiDict

from ..config import Settings
from ..grants import (
    AccessToken,
    CodeLookup,
    Family,
    FamilyState,
    Grant,
    PendingCode,
    RefreshLookup,
    TokenMinter,
    TokenRef,
)
from .claims import apply_mapping, release
from .clients import Client, ClientRegistry
from .signer import Signer


# -- requests -----------------------------------------------------------------------------
class _Payload(OAuth2Payload):
    def __init__(self, data: ImmutableMultiDict | FormData) -> None:
        self._multi = data
        self._data = {k: data[k] for k in data}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        out: defaultdict[str, list] = defaultdict(list)
        for key, value in self._multi.multi_items():
            out[key].append(value)
        return out


@dataclass(slots=True)
class ClientAssertion:
    """A verified private_key_jwt assertion; its `jti` is spent when the exchange commits."""

    client_id: str
    jti: str
    expires: int


@dataclass(slots=True)
class Redeem:
    code: str
    family: Family
    state: FamilyState
    access: AccessToken


@dataclass(slots=True)
class Rotate:
    lookup: RefreshLookup
    state: FamilyState
    access: AccessToken


@dataclass(slots=True)
class Revoke:
    family: str
    reason: str
    expires: int | None = None


@dataclass(slots=True)
class RevokeAccess:
    ref: TokenRef


Change = Redeem | Rotate | Revoke | RevokeAccess


@dataclass(slots=True)
class ManagedToken:
    """A token named at /revoke or /introspect, when it is one of ours."""

    kind: str  # "access_token" | "refresh_token"
    ref: TokenRef
    client_id: str
    active: dict[str, Any] | None  # what introspection tells about it; None when not active

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_client_id(self) -> str:
        return self.client_id


@dataclass
class TokenExchange:
    """What one request read before Authlib ran, and the change it asks for."""

    now: int
    code: CodeLookup | None = None
    refresh: RefreshLookup | None = None
    # Answer with this generation instead of rotating (a retry inside the grace window,
    # or the loser of a concurrent rotation).
    answer_as: FamilyState | None = None
    withdrawn: bool = False  # the authorization source says the grant's basis is gone
    managed: ManagedToken | None = None
    assertion: ClientAssertion | None = None
    change: Change | None = None
    # Set by the authorization endpoint's code hook: the code and what it stands for.
    issued_code: tuple[str, PendingCode] | None = None


class BrokerRequest(OAuth2Request):
    """An OAuth2Request built from Starlette's parsed form or query."""

    def __init__(self, method: str, uri: str, data: ImmutableMultiDict | FormData,
                 headers: Any, exchange: TokenExchange | None = None) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _Payload(data)
        self._form = self.payload.data
        self.exchange = exchange or TokenExchange(now=int(time.time()))

    @property
    def args(self) -> dict[str, str]:
        return self._form

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(slots=True)
class GrantUser:
    """The end user of a grant, at one generation of its family: everything tokens and
    claims are made from."""

    grant: Grant
    family: str
    gen: int = 0
    issued: int = field(default_factory=lambda: int(time.time()))
    family_expires: int = 0

    def get_user_id(self) -> str:
        return self.grant.sub

    def access_lifetime(self, ttl: int) -> int:
        """Access tokens never outlive their family."""
        return max(1, min(ttl, self.family_expires - self.issued))


# -- stored records as Authlib's model objects ----------------------------------------------
class StoredCode:
    def __init__(self, pending: PendingCode) -> None:
        self.pending = pending

    def get_redirect_uri(self) -> str:
        return self.pending.redirect_uri

    def get_scope(self) -> str:
        return self.pending.grant.scope

    def get_nonce(self) -> str | None:
        return self.pending.nonce

    def get_auth_time(self) -> int:
        return self.pending.grant.auth_time

    def get_acr(self) -> str | None:
        return self.pending.grant.acr

    def get_amr(self) -> list[str] | None:
        return self.pending.grant.amr


class StoredRefresh:
    def __init__(self, lookup: RefreshLookup) -> None:
        self.lookup = lookup

    def check_client(self, client: Client) -> bool:
        return self.lookup.view.family.grant.client_id == client.client_id

    def get_scope(self) -> str:
        return self.lookup.view.family.grant.scope


# -- grants and extensions -----------------------------------------------------------------
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self) -> str:
        # The family its redemption will create, then 256 random bits.
        return TokenMinter.code(self.request.user.family)

    def save_authorization_code(self, code: str, request: BrokerRequest) -> None:
        server: Provider = self.server  # type: ignore[assignment]
        user: GrantUser = request.user
        data = request.payload.data
        request.exchange.issued_code = (code, PendingCode(
            family=user.family, grant=replace(user.grant, scope=request.scope or ""),
            redirect_uri=data["redirect_uri"],
            nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires=request.exchange.now + server.settings.tokens.code_ttl))

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        exchange: TokenExchange = self.request.exchange
        lookup = exchange.code
        if lookup is None:
            return None
        pending = lookup.pending
        if pending is not None:
            if pending.grant.client_id != client.client_id or pending.expires <= exchange.now:
                return None
            return StoredCode(pending)
        if lookup.spent is not None and lookup.spent.client_id == client.client_id:
            # A second redemption by the client it was issued to: revoke what the first
            # one produced (RFC 6749 4.1.2). Only after the client authenticated, so a
            # leaked used code alone cannot revoke anyone's grant.
            exchange.change = Revoke(lookup.spent.family, "code_replay")
        return None

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        # Taking the code is part of the redemption's one atomic step (see Provider.save_token).
        return None

    def authenticate_user(self, authorization_code: StoredCode) -> GrantUser:
        server: Provider = self.server  # type: ignore[assignment]
        pending = authorization_code.pending
        now = self.request.exchange.now
        client = server.clients.get(pending.grant.client_id)
        return GrantUser(grant=pending.grant, family=pending.family, gen=0, issued=now,
                         family_expires=now + server.refresh_lifetime(client))


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh | None:
        server: Provider = self.server  # type: ignore[assignment]
        exchange: TokenExchange = self.request.exchange
        lookup = exchange.refresh
        if lookup is None or not lookup.view.live(exchange.now):
            return None
        family = lookup.view.family
        if family.grant.client_id != self.request.client.client_id:
            return None  # another client's token: refused, and nothing of theirs changes
        if exchange.answer_as is not None or lookup.within_grace(exchange.now,
                                                                 server.settings.tokens.refresh_grace):
            # A retry (second tab, lost response) inside the grace window: the answer
            # the rotation that spent this token gave.
            exchange.answer_as = exchange.answer_as or lookup.view.state
            return StoredRefresh(lookup)
        if not lookup.current:
            # A rotated token presented again: assume theft (RFC 9700 4.14.2).
            exchange.change = Revoke(family.id, "refresh_reuse", family.expires)
            return None
        if exchange.withdrawn:
            exchange.change = Revoke(family.id, "withdrawn", family.expires)
            return None
        return StoredRefresh(lookup)

    def issue_token(self, user: GrantUser, refresh_token: StoredRefresh) -> dict[str, Any]:
        answer_as = self.request.exchange.answer_as
        scope = answer_as.scope if answer_as else (self.request.payload.scope
                                                   or refresh_token.get_scope())
        return self.generate_token(user=user, scope=scope,
                                   include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN)

    def authenticate_user(self, refresh_token: StoredRefresh) -> GrantUser:
        exchange: TokenExchange = self.request.exchange
        view = refresh_token.lookup.view
        if exchange.answer_as is not None:
            gen, issued = exchange.answer_as.gen, exchange.answer_as.issued
        else:
            gen, issued = view.state.gen + 1, exchange.now
        return GrantUser(grant=view.family.grant, family=view.family.id, gen=gen, issued=issued,
                         family_expires=view.family.expires)

    def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
        # Spending the old token is the rotation's one atomic step (see Provider.save_token).
        return None


class S256Only(CodeChallenge):
    """PKCE per client, S256 only (the Swedish profile refuses plain; so does RFC 9700).

    Required by default and always for public clients; a confidential client registered
    with `pkce: optional` may leave it out (it relies on `nonce`, OIDC Core 3.1.2.1), but
    a challenge it does send is checked like any other. Discovery is the same for all."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    @staticmethod
    def required_for(client: Client) -> bool:
        settings = client.settings
        return settings.pkce != "optional" or not settings.confidential

    def validate_code_challenge(self, grant, redirect_uri):  # type: ignore[no-untyped-def]
        data = grant.request.payload.data
        if not data.get("code_challenge") and not data.get("code_challenge_method"):
            if self.required_for(grant.request.client):
                raise InvalidRequestError("PKCE is required: send code_challenge with method S256",
                                          redirect_uri=redirect_uri)
            return None
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)",
                                      redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):  # type: ignore[no-untyped-def]
        # A code issued without a challenge (pkce: optional) needs no verifier, and Authlib
        # refuses one then (RFC 9700 4.8); a required client's code always has a challenge.
        if self.required_for(grant.request.client) and not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: StoredCode) -> str | None:
        return authorization_code.pending.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: StoredCode) -> str | None:
        return authorization_code.pending.code_challenge_method




class _IDTokenMixin:
    """ID tokens signed by our keyring with the client's algorithm and our claims; every
    time in them is the generation's issue time, so the same generation gives the same
    token again."""

    provider: Provider

    def resolve_client_private_key(self, client: Client):  # type: ignore[no-untyped-def]
        return self.provider.signer.keyring.signing_key(client.id_token_signed_response_alg).key

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = self.provider.signer.keyring.signing_key(client.id_token_signed_response_alg)
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_compatible_claims(self, request: BrokerRequest) -> dict[str, Any]:
        client: Client = request.client
        user: GrantUser = request.user
        ttl = client.settings.id_token_ttl or self.provider.settings.tokens.id_token_ttl
        return {"iss": self.provider.settings.issuer, "aud": client.client_id,
                "iat": user.issued, "exp": user.issued + ttl, "auth_time": user.grant.auth_time}

    def generate_user_info(self, user: GrantUser, scope: str) -> dict[str, Any]:
        grant = user.grant
        claims = release(grant.claims_source(scope), "id_token")
        settings = self.provider.clients.get(grant.client_id).settings
        claims = apply_mapping(claims, settings.claims, settings.flat_claims)
        claims["sub"] = grant.sub
        claims["auth_time"] = grant.auth_time
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.amr:
            claims["amr"] = grant.amr
        if grant.sid:
            claims["sid"] = grant.sid
        return claims


class IDTokenForCode(_IDTokenMixin, OpenIDCode):
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # Codes are single-use and bound to the nonce; replay is stopped there.
        return False


class IDTokenForRefresh(_IDTokenMixin, OpenIDToken):
    def __init__(self, provider: Provider) -> None:
        self.provider = provider


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication, with the rules its update for OAuth servers adds:
    the audience is this server only (the issuer or, as OIDC Core and certified RP
    libraries send it, the token endpoint; an array only when every value is one of
    those), and an assertion lives at most `client_assertion_max_lifetime` seconds. Its
    `jti` is single-use at every endpoint: spent atomically when the exchange commits,
    since only then can the (async) store be asked."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, provider: Provider) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.provider = provider

    def get_audiences(self) -> list[str]:
        issuer = self.provider.settings.issuer
        return [issuer, issuer + "/token"]

    def resolve_client_public_key(self, client: Client):  # type: ignore[no-untyped-def]
        return client.public_keys

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        return True  # checked, and spent, by the exchange's commit (see the class docstring)

    def __call__(self, query_client, request):  # type: ignore[no-untyped-def]
        client = super().__call__(query_client, request)
        if client is None:
            return None
        # The signature and the registered claims were verified above; read them again.
        claims = orjson.loads(jws.extract_compact(request.form["client_assertion"].encode()).payload)
        audiences = self.get_audiences()
        aud = claims.get("aud")
        if not (aud in audiences if isinstance(aud, str) else
                isinstance(aud, list) and aud and all(a in audiences for a in aud)):
            raise InvalidClientError(description="the assertion's aud must name this server only")
        now = request.exchange.now
        # Measured from iat when the client says when it made the assertion, else from now.
        issued = claims.get("iat") if isinstance(claims.get("iat"), int) else now
        longest = self.provider.settings.tokens.client_assertion_max_lifetime
        if int(claims["exp"]) - issued > longest:
            raise InvalidClientError(description=f"the assertion must expire within {longest} s")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidClientError(description="the assertion's jti must be a string")
        request.exchange.assertion = ClientAssertion(client.client_id, jti, int(claims["exp"]))
        return client


class RequestObjects(OpenIDJWTAuthenticationRequest):
    """Request objects by value (RFC 9101, OIDC Core 6.1), signed with the client's
    registered keys. The Swedish profile requires `iss` = client_id and accepts `aud` =
    issuer or the authorization endpoint.

    The object's parameters are used; one given outside as well must have the same value
    (a differing one is refused, never silently overridden), and one given only outside
    is kept (OIDC Core 6.1: e.g. a per-request `state` next to a pre-signed object). So a
    JAR-only request (`client_id` + `request`) works. One exception: the outer `scope` may
    be narrower than the object's, since OIDC Core 6.1 has it always sent outside as the
    `openid` marker (`scope=openid` outside, the real scope inside); the object's wins.
    Inside, `max_age` is a JSON number and `claims` a JSON object; they are carried on as
    the strings the query form uses. Every error carries the object's `state` when the
    outer request has none."""

    # Members of the object that are about the JWT, not authorization parameters.
    JWT_CLAIMS = frozenset({"iss", "aud", "exp", "iat", "nbf", "jti", "sub"})
    RESPONSE_TYPE = re.compile(r"^[A-Za-z0-9_]+( [A-Za-z0-9_]+)*$")  # RFC 6749 A.3

    def __init__(self, provider: Provider) -> None:
        super().__init__(support_request=True, support_request_uri=False)
        self.provider = provider
        from joserfc import jwt

        issuer = provider.settings.issuer
        self.claims_validator = jwt.JWTClaimsRegistry(
            client_id={"essential": True},
            iss={"essential": True},
            aud={"essential": True, "values": [issuer, issuer + "/authorize"]},
        )

    def resolve_client_public_key(self, client: Client):  # type: ignore[no-untyped-def]
        return client.public_keys

    def get_server_metadata(self) -> dict[str, Any]:
        return {"require_signed_request_object": False,
                "request_object_signing_alg_values_supported": ["RS256", "ES256"]}

    def get_client_require_signed_request_object(self, client: Client) -> bool:
        return False

    def parse_authorization_request(self, authorization_server, request):  # type: ignore[no-untyped-def]
        outer = dict(request.payload.data)
        if "request" not in outer:
            return super().parse_authorization_request(authorization_server, request)
        try:
            super().parse_authorization_request(authorization_server, request)
        except OAuth2Error as exc:
            if not exc.state:
                exc.state = outer.get("state") or self._unverified_state(outer["request"])
            raise
        inner = request.payload.data
        state = inner.get("state") if isinstance(inner.get("state"), str) else outer.get("state")
        if inner.get("iss") != outer.get("client_id"):
            raise InvalidRequestError("the request object's iss must be the client_id", state=state)
        merged = {k: v for k, v in outer.items() if k != "request"}
        for name, value in inner.items():
            if name not in self.JWT_CLAIMS:
                merged[name] = self._inner_value(name, value, outer, state)
        request.payload = _Payload(ImmutableMultiDict(merged))

    def _inner_value(self, name: str, value: Any, outer: dict[str, str],
                     state: str | None) -> str:
        """One parameter of a request object as text, when it may stand (it must not
        differ from the same parameter outside)."""
        text = self._text(value)
        if text is None:
            raise InvalidRequestObjectError(
                description=f"{self._named(name)} in the request object must be a string"
                + (", a number" if name == "max_age" else "") + " or a JSON object",
                state=state)
        if name in outer and not self._same(name, outer[name], value, text):
            raise InvalidRequestError(
                f"{self._named(name)} differs between the request and the request object",
                state=state)
        if name == "response_type" and not self.RESPONSE_TYPE.match(text):
            # Authlib echoes it into its own error, which must be plain ASCII.
            raise InvalidRequestObjectError(description="response_type must be code",
                                            state=state)
        return text

    @staticmethod
    def _text(value: Any) -> str | None:
        """A member of the object as the string its query-parameter form would be."""
        import json

        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return None

    @staticmethod
    def _same(name: str, outer: str, inner: Any, inner_text: str) -> bool:
        import json

        if name == "scope":
            return set(outer.split()) <= set(inner_text.split())
        if isinstance(inner, dict):
            try:
                return json.loads(outer) == inner
            except ValueError:
                return False
        return outer == inner_text

    @staticmethod
    def _unverified_state(raw: str) -> str | None:
        """`state` from an object that failed verification, only to echo it with the error
        to the registered redirect URI (the client could as well have sent it outside)."""
        import json

        from joserfc import jws

        try:
            payload = json.loads(jws.extract_compact(raw.encode()).payload)
        except Exception:  # any malformed object: no state to echo
            return None
        state = payload.get("state") if isinstance(payload, dict) else None
        return state if isinstance(state, str) and len(state) <= 4096 else None

    @staticmethod
    def _named(name: str) -> str:
        """A member name fit for an error description (RFC 6749 5.2 characters only)."""
        from .echo import parameter_names

        return parameter_names([name])


# -- the server ---------------------------------------------------------------------------
class Provider(AuthorizationServer):
    def __init__(self, settings: Settings, clients: ClientRegistry, signer: Signer,
                 minter: TokenMinter) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.clients = clients
        self.signer = signer
        self.minter = minter
        self.register_grant(CodeGrant, [S256Only(required=True), IDTokenForCode(self)])
        self.register_grant(RefreshGrant, [IDTokenForRefresh(self)])
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        RequestObjects(self)(self)  # registers its hook on get_authorization_grant
        self.register_token_generator("default", self._generate_token)

    def refresh_lifetime(self, client: Client | None) -> int:
        """How long a family lives: rotation never extends it."""
        own = client.settings.refresh_token_ttl if client else None
        return own or self.settings.tokens.refresh_token_ttl

    # -- Authlib hooks -------------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def create_oauth2_request(self, request: BrokerRequest) -> BrokerRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _access_ttl(self, client: Client, user: GrantUser) -> int:
        return user.access_lifetime(client.settings.access_token_ttl
                                    or self.settings.tokens.access_token_ttl)

    def _generate_token(self, grant_type: str, client: Client, user: GrantUser | None = None,
                        scope: str | None = None, expires_in: int | None = None,
                        include_refresh_token: bool = True) -> dict[str, Any]:
        if user is None:  # only grants with an end user are registered
            raise InvalidGrantError()
        ttl = self._access_ttl(client, user)
        if client.settings.access_token_format == "jwt":
            access = self._jwt_access_token(client, user, scope or "", ttl)
        else:
            access = self.minter.access_token(user.family, user.gen)
        token = {"token_type": "Bearer", "access_token": access, "expires_in": ttl,
                 "scope": scope or ""}
        if include_refresh_token and client.settings.refresh_tokens:
            token["refresh_token"] = self.minter.refresh_token(user.family, user.gen)
        return token

    def _jwt_access_token(self, client: Client, user: GrantUser, scope: str, ttl: int) -> str:
        """RFC 9068 access token; it has a store record too, so revocation works."""
        claims = {"iss": self.settings.issuer, "sub": user.grant.sub, "aud": self.settings.issuer,
                  "client_id": client.client_id, "iat": user.issued, "exp": user.issued + ttl,
                  "jti": f"{user.family}.{user.gen}", "scope": scope,
                  "auth_time": user.grant.auth_time}
        if user.grant.acr:
            claims["acr"] = user.grant.acr
        return self.signer.sign(claims, client.id_token_signed_response_alg, typ="at+jwt")

    def save_token(self, token: dict[str, Any], request: BrokerRequest) -> None:
        exchange = request.exchange
        if exchange.answer_as is not None:
            return  # the same answer again: nothing changes
        user: GrantUser = request.user
        client: Client = request.client
        access = AccessToken(family=user.family, client_id=client.client_id, gen=user.gen,
                             scope=token["scope"], issued=user.issued,
                             expires=user.issued + int(token["expires_in"]))
        state = FamilyState(gen=user.gen, issued=user.issued, scope=token["scope"])
        if exchange.refresh is not None:
            exchange.change = Rotate(exchange.refresh, state, access)
            return
        code = request.form["code"]
        family = Family(id=user.family, grant=user.grant, created=user.issued,
                        expires=user.family_expires, refresh="refresh_token" in token)
        exchange.change = Redeem(code, family, state, access)


__all__ = ["BrokerRequest", "GrantUser", "InvalidGrantError", "Provider", "TokenExchange"]

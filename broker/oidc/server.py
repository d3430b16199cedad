"""Authlib's authorization server, wired to our store, keys and claims.

Authlib validates (clients, grants, PKCE, redirect URIs, assertions, request objects) and
calls synchronous hooks; the store is async. The bridge is a unit of work per request:
the endpoint reads what the hooks will need first (`Work.prefetched`), Authlib runs
synchronously and its hooks record what must change (`Work.writes`, `Work.take`,
`Work.revoke`), then the endpoint commits: the code is taken atomically (of concurrent
redemptions exactly one commits; the other gets `invalid_grant`), then records are
written in one round trip. A request that Authlib rejects changes nothing, except that a
detected replay revokes the family it belongs to.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDJWTAuthenticationRequest
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from starlette.datastructures import FormData, ImmutableMultiDict

from ..config import Settings
from .claims import apply_mapping, release
from .clients import Client, ClientRegistry
from .tokens import (
    Signer,
    access_key,
    code_key,
    family_key,
    new_id,
    new_token,
    refresh_key,
    used_code_key,
)


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


@dataclass
class Work:
    """What one request read before Authlib ran, and what it wants changed."""

    prefetched: dict[str, Any] = field(default_factory=dict)
    writes: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    take: str | None = None
    revoke: list[str] = field(default_factory=list)
    jti: tuple[str, int] | None = None


# The request's unit of work, for Authlib hooks that are not handed the request (validate_jti).
_current_work: ContextVar[Work] = ContextVar("broker_work")


class BrokerRequest(OAuth2Request):
    """An OAuth2Request built from Starlette's parsed form or query."""

    def __init__(self, method: str, uri: str, data: ImmutableMultiDict | FormData,
                 headers: Any, work: Work | None = None) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _Payload(data)
        self._form = self.payload.data
        self.work = work or Work()

    @property
    def args(self) -> dict[str, str]:
        return self._form

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class GrantUser:
    """The end user of a grant: everything tokens and claims are made from."""

    grant: dict[str, Any]
    family: str

    def get_user_id(self) -> str:
        return self.grant["sub"]


# -- stored records as Authlib's model objects ----------------------------------------------
class StoredCode:
    def __init__(self, key: str, record: dict[str, Any]) -> None:
        self.key = key
        self.record = record

    def get_redirect_uri(self) -> str:
        return self.record["redirect_uri"]

    def get_scope(self) -> str:
        return self.record["grant"]["scope"]

    def get_nonce(self) -> str | None:
        return self.record.get("nonce")

    def get_auth_time(self) -> int:
        return self.record["grant"]["auth_time"]

    def get_acr(self) -> str | None:
        return self.record["grant"].get("acr")

    def get_amr(self) -> list[str] | None:
        return self.record["grant"].get("amr")


class StoredRefresh:
    def __init__(self, key: str, record: dict[str, Any]) -> None:
        self.key = key
        self.record = record

    def check_client(self, client: Client) -> bool:
        return self.record["client_id"] == client.client_id

    def get_scope(self) -> str:
        return self.record["grant"]["scope"]


# -- grants and extensions -----------------------------------------------------------------
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self) -> str:
        # 256 random bits; Authlib's default draws characters one by one, far slower.
        return new_id(32)

    def save_authorization_code(self, code: str, request: BrokerRequest) -> None:
        server: Provider = self.server  # type: ignore[assignment]
        user: GrantUser = request.user
        data = request.payload.data
        record = {
            "client_id": request.client.client_id,
            "redirect_uri": data["redirect_uri"],
            "nonce": data.get("nonce"),
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"),
            "grant": {**user.grant, "scope": request.scope},
            "family": user.family,
            "exp": int(time.time()) + server.settings.tokens.code_ttl,
        }
        request.work.writes.append((code_key(code), record, server.settings.tokens.code_ttl))

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        work: Work = self.request.work
        record = work.prefetched.get("code")
        if not record or record["client_id"] != client.client_id or record["exp"] < time.time():
            return None
        return StoredCode(code_key(code), record)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        server: Provider = self.server  # type: ignore[assignment]
        work: Work = self.request.work
        work.take = authorization_code.key
        # The spent code remembers its family, so a replay can revoke what it produced.
        code = self.request.form["code"]
        work.writes.append((used_code_key(code), {"family": authorization_code.record["family"]},
                            server.settings.tokens.refresh_token_ttl))

    def authenticate_user(self, authorization_code: StoredCode) -> GrantUser:
        return GrantUser(grant=authorization_code.record["grant"],
                         family=authorization_code.record["family"])


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh | None:
        server: Provider = self.server  # type: ignore[assignment]
        work: Work = self.request.work
        record, family = work.prefetched.get("refresh"), work.prefetched.get("family")
        if not record or not family or family.get("revoked"):
            return None
        if record.get("spent_at"):
            if time.time() - record["spent_at"] > server.settings.tokens.refresh_grace:
                # Reuse of a rotated token outside the grace window: assume theft.
                work.revoke.append(record["family"])
                return None
        if work.prefetched.get("withdrawn"):
            work.revoke.append(record["family"])
            return None
        return StoredRefresh(refresh_key(refresh_token), record)

    def authenticate_user(self, refresh_token: StoredRefresh) -> GrantUser:
        grant = dict(refresh_token.record["grant"])
        if self.request.payload.scope:
            grant["scope"] = self.request.payload.scope
        if "user" in self.request.work.prefetched:
            grant["user"] = self.request.work.prefetched["user"]
        return GrantUser(grant=grant, family=refresh_token.record["family"])

    def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
        server: Provider = self.server  # type: ignore[assignment]
        if refresh_token.record.get("spent_at"):
            return  # a use inside the grace window: the first rotation already spent it
        spent = {**refresh_token.record, "spent_at": int(time.time())}
        ttl = max(server.settings.tokens.refresh_grace, 1) + 60
        self.request.work.writes.append((refresh_token.key, spent, ttl))


class S256Only(CodeChallenge):
    """PKCE is required for every client, and only S256 (the Swedish profile refuses plain)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):  # type: ignore[no-untyped-def]
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with method S256",
                                      redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)",
                                      redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):  # type: ignore[no-untyped-def]
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: StoredCode) -> str | None:
        return authorization_code.record.get("code_challenge")

    def get_authorization_code_challenge_method(self, authorization_code: StoredCode) -> str | None:
        return authorization_code.record.get("code_challenge_method")


class _IDTokenMixin:
    """ID tokens signed by our keyring with the client's algorithm and our claims."""

    provider: Provider

    def resolve_client_private_key(self, client: Client):  # type: ignore[no-untyped-def]
        return self.provider.signer.keyring.signing_key(client.id_token_signed_response_alg).key

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = self.provider.signer.keyring.signing_key(client.id_token_signed_response_alg)
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        ttl = client.settings.id_token_ttl or self.provider.settings.tokens.id_token_ttl
        return {"iss": self.provider.settings.issuer, "aud": client.client_id,
                "exp": int(time.time()) + ttl}

    def generate_user_info(self, user: GrantUser, scope: str) -> dict[str, Any]:
        grant = user.grant
        claims = release({**grant, "scope": scope}, "id_token")
        settings = self.provider.clients.get(grant["client_id"]).settings
        claims = apply_mapping(claims, settings.claims, settings.flat_claims)
        claims["sub"] = grant["sub"]
        claims["auth_time"] = grant["auth_time"]
        if grant.get("acr"):
            claims["acr"] = grant["acr"]
        if grant.get("amr"):
            claims["amr"] = grant["amr"]
        if grant.get("sid"):
            claims["sid"] = grant["sid"]
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
        work: Work = _current_work.get()
        if work.prefetched.get("jti_seen"):
            return False
        ttl = max(60, int(claims.get("exp", 0)) - int(time.time()) + 60)
        work.jti = (f"jti:{claims['sub']}:{jti}", ttl)
        return True

    def __call__(self, query_client, request):  # type: ignore[no-untyped-def]
        _current_work.set(request.work)
        return super().__call__(query_client, request)


class RequestObjects(OpenIDJWTAuthenticationRequest):
    """Request objects by value, signed with the client's registered keys. The Swedish
    profile requires `iss` = client_id and accepts `aud` = issuer or the authorization
    endpoint."""

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
        super().parse_authorization_request(authorization_server, request)
        if request.payload.data is not outer and "request" in outer:
            inner = request.payload.data
            if inner.get("iss") != outer.get("client_id"):
                raise InvalidRequestError("the request object's iss must be the client_id",
                                          state=outer.get("state"))
            # OIDC Core 6.1: response_type and client_id in the request object must match.
            if "response_type" in inner and inner["response_type"] != outer.get("response_type"):
                raise InvalidRequestError("response_type differs from the request object",
                                          state=outer.get("state"))
            request.payload = _Payload(ImmutableMultiDict(
                {k: v for k, v in inner.items() if isinstance(v, str) or k == "claims"}
                | ({"claims": _json(inner["claims"])} if isinstance(inner.get("claims"), dict) else {})
                | {"response_type": outer.get("response_type", inner.get("response_type", ""))}
            ))


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


# -- the server ---------------------------------------------------------------------------
class Provider(AuthorizationServer):
    def __init__(self, settings: Settings, clients: ClientRegistry, signer: Signer) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.clients = clients
        self.signer = signer
        self.register_grant(CodeGrant, [S256Only(required=True), IDTokenForCode(self)])
        self.register_grant(RefreshGrant, [IDTokenForRefresh(self)])
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        RequestObjects(self)(self)  # registers its hook on get_authorization_grant
        self.register_token_generator("default", self._generate_token)

    # -- Authlib hooks -------------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def create_oauth2_request(self, request: BrokerRequest) -> BrokerRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _generate_token(self, grant_type: str, client: Client, user: GrantUser | None = None,
                        scope: str | None = None, expires_in: int | None = None,
                        include_refresh_token: bool = True) -> dict[str, Any]:
        ttl = client.settings.access_token_ttl or self.settings.tokens.access_token_ttl
        family = user.family if user else new_id()
        if client.settings.access_token_format == "jwt" and user is not None:
            access = self._jwt_access_token(client, user, scope or "", ttl, family)
        else:
            access = new_token(family)
        token = {"token_type": "Bearer", "access_token": access, "expires_in": ttl,
                 "scope": scope or ""}
        if include_refresh_token:
            token["refresh_token"] = new_token(family)
        return token

    def _jwt_access_token(self, client: Client, user: GrantUser, scope: str, ttl: int,
                          family: str) -> str:
        """RFC 9068 access token; it still has a store record, so revocation works."""
        now = int(time.time())
        claims = {"iss": self.settings.issuer, "sub": user.grant["sub"], "aud": self.settings.issuer,
                  "client_id": client.client_id, "iat": now, "exp": now + ttl,
                  "jti": f"{family}.{new_id()}", "scope": scope,
                  "auth_time": user.grant["auth_time"]}
        if user.grant.get("acr"):
            claims["acr"] = user.grant["acr"]
        return self.signer.sign(claims, client.id_token_signed_response_alg, typ="at+jwt")

    def save_token(self, token: dict[str, Any], request: BrokerRequest) -> None:
        user: GrantUser = request.user
        client: Client = request.client
        now = int(time.time())
        grant = {**user.grant, "scope": token["scope"]}
        work = request.work
        family = work.prefetched.get("family")
        if family is None:
            # A new grant (code redemption): its family lives as long as its refresh tokens
            # may; rotation never extends it, so refresh_token_ttl bounds the whole grant.
            rt_ttl = client.settings.refresh_token_ttl or self.settings.tokens.refresh_token_ttl
            family = {"client_id": client.client_id, "sub": grant["sub"], "sid": grant.get("sid"),
                      "user_id": grant["user"]["id"], "revoked": False, "exp": now + rt_ttl}
            work.writes.append((family_key(user.family), family, rt_ttl))
        left = max(1, int(family["exp"]) - now)
        at_ttl = min(int(token["expires_in"]), left)
        work.writes.append((access_key(token["access_token"]),
                            {"client_id": client.client_id, "grant": grant, "family": user.family,
                             "exp": now + at_ttl}, at_ttl))
        if token.get("refresh_token"):
            work.writes.append((refresh_key(token["refresh_token"]),
                                {"client_id": client.client_id, "grant": grant,
                                 "family": user.family, "exp": now + left}, left))


async def commit(work: Work, store: Any) -> bool:
    """Apply a request's unit of work. False when another request took the code first."""
    if work.revoke:
        ttl = 30 * 86400
        await store.put_many([(family_key(f), {"revoked": True}, ttl) for f in work.revoke])
    if work.jti and not await store.put_new(work.jti[0], {"used": True}, work.jti[1]):
        return False
    if work.take is not None:
        if await store.take_and_put(work.take, work.writes) is None:
            # Lost the race with a concurrent redemption: this is a replay too.
            family = work.prefetched.get("code", {}).get("family")
            if family:
                await store.put_many([(family_key(family), {"revoked": True}, 30 * 86400)])
            return False
    elif work.writes:
        await store.put_many(work.writes)
    return True


__all__ = ["BrokerRequest", "GrantUser", "InvalidGrantError", "Provider", "Work", "commit"]

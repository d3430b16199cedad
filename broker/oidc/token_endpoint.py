"""Token, revocation and introspection endpoints (RFC 6749, 7009, 7662).

Each request is an exchange (see `server.py`): read what it names, let Authlib validate
and decide, then make the one change it asks for as one atomic store operation. A
dependency that cannot answer (the store, the authorization source) gives HTTP 503
`temporarily_unavailable` and changes nothing: an outage is never a revocation."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jws
from starlette.background import BackgroundTask
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..authz import AuthorizationSourceError, User
from ..context import Broker
from ..grants import RefreshLookup, spent_within_grace
from ..secret_ids import digest
from .echo import parameter_names
from .http_auth import check_client_authorization
from .logout import deliver_soon, end_session
from .server import (
    AUTH_METHODS,
    BrokerRequest,
    ClientAssertion,
    ManagedToken,
    Redeem,
    Revoke,
    RevokeAccess,
    Rotate,
    TokenExchange,
)

log = logging.getLogger(__name__)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | dict | None = None) -> Response:
    out = dict(NO_STORE)
    out.update(dict(headers or {}))
    out["Content-Type"] = "application/json"
    return Response(orjson.dumps(body), status, headers=out)


def oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return json_response(status, dict(body), headers)


async def read_form(request: Request) -> ImmutableMultiDict:
    check_client_authorization(request.headers.get("authorization"))  # before Authlib reads it
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    # A urlencoded body is parsed directly: the multipart machinery of request.form()
    # costs more than the rest of the parsing on this hot path.
    try:
        items = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                          max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the body is not a valid form") from None
    too_long = [key for key, value in items if len(value) > 8192 or len(key) > 256]
    if too_long:
        raise InvalidRequestError(f"too long: {parameter_names(too_long)}")
    names = [k for k, _ in items]
    repeated = {k for k in names if names.count(k) > 1} if len(set(names)) != len(names) else set()
    if repeated:
        raise InvalidRequestError(f"repeated parameter: {parameter_names(repeated)}")
    return ImmutableMultiDict(items)


class TemporarilyUnavailable(OAuth2Error):
    """A dependency could not answer; the client should retry (RFC 6749 5.2 has no code
    for it at the token endpoint, so the authorization endpoint's is used, with 503)."""

    error = "temporarily_unavailable"
    status_code = 503

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", "5")]


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> ManagedToken | None:
        return self.request_exchange.managed

    def revoke_token(self, token: ManagedToken, request: BrokerRequest) -> None:
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token revokes the grant's access tokens too.
            request.exchange.change = Revoke(token.ref.family, "revoked_by_client")
        else:
            request.exchange.change = RevokeAccess(token.ref)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> ManagedToken | None:
        return self.request_exchange.managed

    def check_permission(self, token: ManagedToken, client: Any, request: BrokerRequest) -> bool:
        # A client may only introspect its own tokens (others learn nothing, not even existence).
        return token.check_client(client)

    def introspect_token(self, token: ManagedToken) -> dict[str, Any]:
        return token.active or {"active": False}

    def create_introspection_payload(self, token: ManagedToken | None) -> dict[str, Any]:
        if not token or token.active is None:
            return {"active": False}
        return token.active


class TokenEndpoints:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.grants = broker.grants
        self.revocation = Revocation(broker.provider)
        self.introspection = Introspection(broker.provider)

    def routes(self) -> list[Route]:
        return [
            Route("/token", self.token, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/introspect", self.introspect, methods=["POST"]),
        ]

    async def _prefetch_client(self, form: ImmutableMultiDict) -> None:
        """Fetch the keys of a private_key_jwt client (jwks_uri) before Authlib needs them."""
        assertion = form.get("client_assertion")
        if not assertion:
            return
        try:
            obj = jws.extract_compact(assertion.encode())
            claims = json.loads(obj.payload)
            kid = obj.headers().get("kid")
        except Exception:
            return  # Authlib answers invalid_client with the reason
        client = self.broker.clients.get(claims.get("sub") if isinstance(claims, dict) else None)
        if client is not None:
            await self.broker.clients.ensure_keys(client, kid)

    def _request(self, request: Request, form: ImmutableMultiDict,
                 exchange: TokenExchange) -> BrokerRequest:
        return BrokerRequest("POST", self.broker.issuer + request.scope["path"], form,
                             request.headers, exchange)

    # -- /token ------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        try:
            form = await read_form(request)
        except OAuth2Error as exc:
            return oauth_error(exc)
        exchange = TokenExchange(now=self.grants.now())
        grant_type = form.get("grant_type")
        try:
            if grant_type == "authorization_code" and form.get("code"):
                exchange.code = await self.grants.find_code(form["code"])
            elif grant_type == "refresh_token" and form.get("refresh_token"):
                exchange.refresh = await self.grants.find_refresh(form["refresh_token"])
                if exchange.refresh is not None:
                    await self._recheck(exchange.refresh, exchange)
            await self._prefetch_client(form)
        except AuthorizationSourceError as exc:
            log.error("authorization source failed at refresh: %s", exc)
            self.broker.metrics.error("token_temporarily_unavailable")
            return oauth_error(TemporarilyUnavailable("the authorization source is unavailable; "
                                                      "retry"))
        oauth_req = self._request(request, form, exchange)
        # Synchronous on the loop, RS256 signature included. A worker thread, for the whole
        # call or for the signature alone, measured slower in bench/: the hand-offs cost
        # more CPU per redemption than the overlap saves (RS256 1100 vs 1400 ops/s).
        status, body, headers = self.broker.provider.create_token_response(oauth_req)
        if not await self._spend_assertion(exchange.assertion):
            return oauth_error(InvalidClientError(description="the assertion's jti was used before"))
        change = exchange.change
        if isinstance(change, Redeem) and not await self.grants.redeem(
                change.code, change.family, change.state, change.access):
            # Another redemption of this code won the race: this one is a replay too.
            change = Revoke(change.family.id, "code_replay", change.family.expires)
            status, body, headers = InvalidGrantError("the code was already used")()
        elif isinstance(change, Rotate):
            status, body, headers, change = await self._rotate(oauth_req, change,
                                                               (status, body, headers))
        response = json_response(status, body, headers)
        if isinstance(change, Revoke):
            response.background = await self._revoke(change, exchange)
        _count(self.broker, grant_type, status, body)
        return response

    async def _recheck(self, lookup: RefreshLookup, exchange: TokenExchange) -> None:
        """Ask the authorization source again before a rotation: a withdrawn authorization
        ends the grant. Only a definite answer withdraws; an error propagates (503)."""
        if not lookup.current or not lookup.view.live(exchange.now):
            return  # a reuse or a retry inside the grace window: no new tokens are made
        grant = lookup.view.family.grant
        user = await self.broker.source.get_user(grant.user_id)
        if not _still_valid(user, grant.client_id, grant.assignment):
            exchange.withdrawn = True

    async def _rotate(self, oauth_req: BrokerRequest, change: Rotate, answer: tuple,
                      ) -> tuple[int, Any, Any, Revoke | None]:
        """Make the rotation Authlib answered for. On losing the race to a concurrent
        rotation: inside the grace window answer as the winner did, else it is a reuse."""
        exchange = oauth_req.exchange
        moved, won = await self.grants.rotate(change.lookup, change.state, change.access)
        if moved:
            return *answer, None
        grace = self.broker.settings.tokens.refresh_grace
        if won is not None and spent_within_grace(change.lookup.ref.gen, won, exchange.now, grace):
            exchange.answer_as, exchange.change = won, None
            return *self.broker.provider.create_token_response(oauth_req), None
        family = change.lookup.view.family
        return (*InvalidGrantError("the refresh token was already used")(),
                Revoke(family.id, "refresh_reuse", family.expires))

    async def _revoke(self, change: Revoke, exchange: TokenExchange) -> BackgroundTask | None:
        """Revoke a family. A withdrawal also ends the person's SSO session, so every RP of
        it hears so over the back-channel, not just this client."""
        await self.grants.revoke(change.family, change.reason, change.expires)
        self.broker.audit.event("grant_revoked", family=change.family, reason=change.reason)
        if change.reason != "withdrawn" or exchange.refresh is None:
            return None
        grant = exchange.refresh.view.family.grant
        self.broker.audit.event("authorization_withdrawn", client=grant.client_id,
                                user=grant.user_id, sid=grant.sid)
        if not grant.sid:
            return None
        ended = await end_session(self.broker, grant.sid, reason="withdrawn")
        return deliver_soon(self.broker, ended)

    async def _spend_assertion(self, assertion: ClientAssertion | None) -> bool:
        """A private_key_jwt assertion authenticates once (its jti, any length, is kept
        until the assertion expires). False when it was used before."""
        if assertion is None:
            return True
        ttl = max(1, assertion.expires - self.grants.now()) + 60  # + Authlib's leeway
        return await self.broker.store.put_new(
            f"jti:{assertion.client_id}:{digest(assertion.jti)}", {"used": True}, ttl)

    # -- /revoke and /introspect ------------------------------------------------------
    async def _find_managed(self, form: ImmutableMultiDict, exchange: TokenExchange) -> None:
        token = form.get("token")
        if not token:
            return
        grants = self.grants
        ref = grants.minter.read(token, "refresh")
        if ref is not None:
            lookup = await grants.find_refresh(token)
            if lookup is None:
                return
            grant = lookup.view.family.grant
            active = None
            if lookup.current and lookup.view.live(exchange.now):
                family = lookup.view.family
                active = self._describe(grant, "refresh_token", family.expires,
                                        lookup.view.state.issued, grant.scope)
            exchange.managed = ManagedToken("refresh_token", ref, grant.client_id, active)
            return
        ref = grants.access_ref(token)
        found = await grants.find_access(ref) if ref is not None else None
        if ref is None or found is None:
            # Nothing active; whose it was matters only for /revoke, which then has
            # nothing left to do, so an unknown owner is fine.
            return
        access = found.token
        exchange.managed = ManagedToken("access_token", ref, access.client_id, self._describe(
            found.family.grant, "Bearer", access.expires, access.issued, access.scope))

    def _describe(self, grant: Any, token_type: str, expires: int, issued: int,
                  scope: str) -> dict[str, Any]:
        out = {"active": True, "client_id": grant.client_id, "token_type": token_type,
               "scope": scope, "sub": grant.sub, "exp": expires, "iat": issued,
               "iss": self.broker.issuer, "aud": grant.client_id, "auth_time": grant.auth_time,
               "sid": grant.sid}
        return {k: v for k, v in out.items() if v is not None}

    async def _token_management(self, request: Request, endpoint: Any) -> Response:
        try:
            form = await read_form(request)
        except OAuth2Error as exc:
            return oauth_error(exc)
        exchange = TokenExchange(now=self.grants.now())
        await self._find_managed(form, exchange)
        await self._prefetch_client(form)
        oauth_req = self._request(request, form, exchange)
        endpoint.request_exchange = exchange
        try:
            req = endpoint.create_endpoint_request(oauth_req)
            status, body, headers = endpoint(req)
        except OAuth2Error as exc:
            return oauth_error(exc)
        if not await self._spend_assertion(exchange.assertion):
            return oauth_error(InvalidClientError(description="the assertion's jti was used before"))
        change = exchange.change
        if isinstance(change, Revoke):
            await self.grants.revoke(change.family, change.reason, change.expires)
        elif isinstance(change, RevokeAccess):
            await self.grants.revoke_access(change.ref)
        return json_response(status, body if body != "" else {}, headers)

    async def revoke(self, request: Request) -> Response:
        return await self._token_management(request, self.revocation)

    async def introspect(self, request: Request) -> Response:
        return await self._token_management(request, self.introspection)


_OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant",
                           "unauthorized_client", "unsupported_grant_type", "invalid_scope"})


def _count(broker: Broker, grant_type: str | None, status: int, body: Any) -> None:
    """Tokens issued by grant type; refusals as errors by their OAuth error code."""
    if status == 200:
        broker.metrics.token_issued(grant_type)
        return
    error = dict(body).get("error") if body else None
    broker.metrics.error(f"token_{error if error in _OAUTH_ERRORS else 'other'}")


def _still_valid(user: User | None, client_id: str, assignment: dict | None) -> bool:
    if user is None or not user.active:
        return False
    valid = user.valid_assignments(client_id, date.today())
    if assignment is None:
        return bool(valid)
    return any(a.id == assignment["id"] for a in valid)

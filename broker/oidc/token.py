"""Token, revocation and introspection endpoints (RFC 6749, 7009, 7662).

Each request reads the records it names, lets Authlib validate, then commits the unit
of work (see `server.py`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jws
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..authz import AuthorizationSourceError, User
from ..context import Broker
from .logout import backchannel_task, end_session
from .server import AUTH_METHODS, BrokerRequest, Work, commit
from .tokens import (
    access_key,
    code_key,
    family_key,
    family_of,
    refresh_key,
    used_code_key,
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
    for key, value in items:
        if len(value) > 8192:
            raise InvalidRequestError(f"'{key}' is too long")
    names = [k for k, _ in items]
    repeated = {k for k in names if names.count(k) > 1} if len(set(names)) != len(names) else set()
    if repeated:
        raise InvalidRequestError(f"repeated parameter: {', '.join(sorted(repeated))}")
    return ImmutableMultiDict(items)


class _StoredToken:
    def __init__(self, key: str, record: dict[str, Any], kind: str) -> None:
        self.key, self.record, self.kind = key, record, kind

    def check_client(self, client: Any) -> bool:
        return self.record["client_id"] == client.client_id

    def get_client_id(self) -> str:
        return self.record["client_id"]


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _StoredToken | None:
        return self.request_work.prefetched.get("token")

    def revoke_token(self, token: _StoredToken, request: BrokerRequest) -> None:
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token revokes the grant's access tokens too.
            request.work.revoke.append(token.record["family"])
        request.work.writes.append((token.key, {**token.record, "revoked": True}, 60))


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _StoredToken | None:
        return self.request_work.prefetched.get("token")

    def check_permission(self, token: _StoredToken, client: Any, request: BrokerRequest) -> bool:
        # A client may only introspect its own tokens (others learn nothing, not even existence).
        return token.check_client(client)

    def introspect_token(self, token: _StoredToken) -> dict[str, Any]:
        grant = token.record["grant"]
        return {"active": True, "client_id": token.record["client_id"], "token_type": "Bearer"
                if token.kind == "access_token" else "refresh_token",
                "scope": grant["scope"], "sub": grant["sub"], "exp": token.record["exp"],
                "iat": token.record.get("iat"), "iss": self._issuer, "aud": token.record["client_id"],
                "auth_time": grant["auth_time"], "sid": grant.get("sid")}

    def create_introspection_payload(self, token: _StoredToken | None) -> dict[str, Any]:
        if not token or token.record.get("revoked") or token.record["exp"] < time.time():
            return {"active": False}
        return {k: v for k, v in self.introspect_token(token).items() if v is not None}


class TokenEndpoints:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.revocation = Revocation(broker.provider)
        self.introspection = Introspection(broker.provider)
        self.introspection._issuer = broker.issuer  # type: ignore[attr-defined]

    def routes(self) -> list[Route]:
        return [
            Route("/token", self.token, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/introspect", self.introspect, methods=["POST"]),
        ]

    async def _prefetch_client(self, form: ImmutableMultiDict, work: Work) -> None:
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
        if client is None:
            return
        await self.broker.clients.ensure_keys(client, kid)
        jti = claims.get("jti")
        if isinstance(jti, str) and len(jti) < 256:
            work.prefetched["jti_seen"] = await self.broker.store.get(f"jti:{client.client_id}:{jti}") is not None

    async def _request(self, request: Request, form: ImmutableMultiDict, work: Work) -> BrokerRequest:
        await self._prefetch_client(form, work)
        return BrokerRequest("POST", self.broker.issuer + request.scope["path"], form,
                             request.headers, work)

    async def token(self, request: Request) -> Response:
        broker = self.broker
        store = broker.store
        try:
            form = await read_form(request)
        except OAuth2Error as exc:
            return oauth_error(exc)
        work = Work()
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code" and form.get("code"):
            code = form["code"]
            record, used = await store.get_many([code_key(code), used_code_key(code)])
            if record:
                work.prefetched["code"] = record
            elif used:
                # A second redemption: revoke everything the first one produced.
                work.revoke.append(used["family"])
                broker.audit.event("code_replay", family=used["family"])
        elif grant_type == "refresh_token" and form.get("refresh_token"):
            await self._prefetch_refresh(form["refresh_token"], work)
        oauth_req = await self._request(request, form, work)
        # Synchronous on the loop, RS256 signature included. A worker thread, for the whole
        # call or for the signature alone, measured slower in bench/: the hand-offs cost
        # more CPU per redemption than the overlap saves (RS256 1100 vs 1400 ops/s).
        status, body, headers = broker.provider.create_token_response(oauth_req)
        if not await commit(work, store):
            broker.metrics.error("token_invalid_grant")
            return oauth_error(InvalidGrantError("the code or token was already used"))
        _count(broker, grant_type, status, body)
        response = json_response(status, body, headers)
        if work.prefetched.get("end_sid") and dict(body).get("error") == "invalid_grant":
            # Authorization withdrawn or expired: the person's whole SSO session ends and
            # every RP of it hears so, not just this client's refresh family.
            ended = await end_session(broker, work.prefetched["end_sid"], reason="withdrawn")
            response.background = backchannel_task(broker, ended)
        return response

    async def _prefetch_refresh(self, token: str, work: Work) -> None:
        family = family_of(token)
        if family is None:
            return
        record, fam = await self.broker.store.get_many([refresh_key(token), family_key(family)])
        if not record or not fam:
            return
        work.prefetched["refresh"], work.prefetched["family"] = record, fam
        if fam.get("revoked") or await self.broker.store.get("sid-ended:" + str(fam.get("sid"))):
            work.prefetched["family"] = {**fam, "revoked": True}
            return
        # Ask the authorization source again: a withdrawn authorization ends the grant.
        try:
            user = await self.broker.source.get_user(fam["user_id"])
        except AuthorizationSourceError:
            work.prefetched["withdrawn"] = True  # fail closed
            return
        assignment = record["grant"].get("assignment")
        valid = _still_valid(user, record["client_id"], assignment)
        if not valid:
            work.prefetched["withdrawn"] = True
            work.prefetched["end_sid"] = fam.get("sid")  # not on an outage: fail closed only
            self.broker.audit.event("authorization_withdrawn", client=record["client_id"],
                                    user=fam["user_id"], sid=fam.get("sid"))
        elif user is not None:
            fresh = user.to_record()
            fresh.pop("assignments", None)
            work.prefetched["user"] = fresh

    async def _prefetch_token(self, form: ImmutableMultiDict, work: Work) -> None:
        token = form.get("token")
        if not token:
            return
        hint = form.get("token_type_hint")
        kinds = [("refresh_token", refresh_key), ("access_token", access_key)]
        if hint == "access_token":
            kinds.reverse()
        store = self.broker.store
        for kind, keyf in kinds:
            record = await store.get(keyf(token))
            if record:
                fam = await store.get(family_key(record["family"]))
                if not fam or fam.get("revoked"):
                    record = {**record, "revoked": True}
                work.prefetched["token"] = _StoredToken(keyf(token), record, kind)
                return

    async def _token_management(self, request: Request, endpoint: Any) -> Response:
        try:
            form = await read_form(request)
        except OAuth2Error as exc:
            return oauth_error(exc)
        work = Work()
        await self._prefetch_token(form, work)
        oauth_req = await self._request(request, form, work)
        endpoint.request_work = work
        try:
            req = endpoint.create_endpoint_request(oauth_req)
            status, body, headers = endpoint(req)
        except OAuth2Error as exc:
            return oauth_error(exc)
        await commit(work, self.broker.store)
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
    from datetime import date

    if user is None or not user.active:
        return False
    valid = user.valid_assignments(client_id, date.today())
    if assignment is None:
        return bool(valid)
    return any(a.id == assignment["id"] for a in valid)

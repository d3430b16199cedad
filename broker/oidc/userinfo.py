"""UserInfo (GET and POST, bearer token): plain JSON, or a signed JWT when the client
registered `userinfo_signed_response_alg` (the Swedish profile wants it signed).

Ours, not Authlib's `oidc.core.UserInfoEndpoint` (evaluated for issue 17): that endpoint
takes the token from a synchronous `ResourceProtector`, while ours is found in the store
(`GrantStore.find_access_token`, which also answers whether the family, the session and
the user are still good); and it signs with a header of `alg` alone, without the `kid`
an RP needs to pick our key while keys rotate, and without `iat`/`exp`. What it would
save is the scope check and the choice between JSON and JWT, a few lines below."""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import Broker
from .claims import apply_mapping, release


def _bearer_error(error: str, description: str, status: int = 401) -> Response:
    value = f'Bearer error="{error}", error_description="{description}"'
    return Response(json.dumps({"error": error, "error_description": description}), status,
                    headers={"WWW-Authenticate": value, "Content-Type": "application/json",
                             "Cache-Control": "no-store"})


class UserInfoEndpoint:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def routes(self) -> list[Route]:
        return [Route("/userinfo", self.userinfo, methods=["GET", "POST"])]

    async def _token(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            form = await request.form()
            value = form.get("access_token")
            return value if isinstance(value, str) else None
        return None

    async def userinfo(self, request: Request) -> Response:
        token = await self._token(request)
        if not token:
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer",
                                                      "Cache-Control": "no-store"})
        if len(token) > 4096:
            return _bearer_error("invalid_token", "the access token is not valid")
        found = await self.broker.grants.find_access_token(token)
        if found is None:
            return _bearer_error("invalid_token", "the access token is not valid")
        access, grant = found.token, found.family.grant
        if "openid" not in access.scope.split():
            return _bearer_error("insufficient_scope", "the token was not issued for openid", 403)
        client = self.broker.clients.get(access.client_id)
        claims = apply_mapping(release(grant.claims_source(access.scope), "userinfo"),
                               client.settings.claims, client.settings.flat_claims)
        claims["sub"] = grant.sub
        alg = client.settings.userinfo_signed_response_alg
        if alg:
            now = int(time.time())
            body = self.broker.signer.sign(
                {**claims, "iss": self.broker.issuer, "aud": client.client_id, "iat": now,
                 "exp": now + 300}, alg)
            return Response(body, headers={"Content-Type": "application/jwt",
                                           "Cache-Control": "no-store"})
        return Response(json.dumps(claims, ensure_ascii=False, separators=(",", ":")),
                        headers={"Content-Type": "application/json", "Cache-Control": "no-store"})

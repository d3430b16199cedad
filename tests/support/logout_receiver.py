"""A relying party's back-channel logout endpoint that can be away: it verifies every
logout token against the broker's JWKS and keeps the sids it was told about."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.redis import free_port
from tests.support.server import running

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutReceiver:
    def __init__(self, issuer: str, client_id: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.port = free_port()
        self.sids: list[str] = []
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self._keys: KeySet | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel"

    async def backchannel(self, request: Request) -> Response:
        token = str((await request.form()).get("logout_token", ""))
        try:
            if self._keys is None:  # an RP caches the JWKS
                async with httpx.AsyncClient(timeout=10) as http:
                    self._keys = KeySet.import_key_set((await http.get(self.issuer + "/jwks")).json())
            claims = jwt.decode(token, self._keys, algorithms=["RS256", "ES256"]).claims
            assert claims["iss"] == self.issuer and claims["aud"] == self.client_id
            assert EVENT in claims["events"] and "nonce" not in claims
        except Exception as exc:
            with self.lock:
                self.bad.append(repr(exc))
            return Response(status_code=400)
        with self.lock:
            self.sids.append(claims["sid"])
        return Response(status_code=200)

    @contextmanager
    def up(self) -> Iterator[LogoutReceiver]:
        """The RP is reachable inside this block; outside, connections are refused."""
        app = Starlette(routes=[Route("/backchannel", self.backchannel, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        with running(config):
            yield self

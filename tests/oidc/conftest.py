"""A broker for the OIDC semantics tests (real Redis): clients with either PKCE policy, a
scope-limited one, one with default_acr_values, one that signs request objects, and a
login method that, like SITHS with reserve cards allowed, ends at LoA 3 or LoA 2."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pytest
from joserfc.jwk import ECKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.app import create_app
from broker.authz import User
from broker.config import STANDARD_SCOPES, parse_settings
from broker.connectors import LOA2, LOA3, Identity
from broker.store import open_store
from tests.support.fakes import PEOPLE, FakeSource, assignment, default_users
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

REDIRECT = "https://rp.example/cb"
SECRET = "c" * 32
CLIENT_IDS = ("optional", "required", "narrow", "loa3", "jar", "pairwise")
ERIK = "198112189876"  # one role, like Anna: no picker


class CardConnector:
    """Logs in at once as the person in `login_hint`; `reserve:<pnr>` is a reserve card,
    which reaches LoA 2 only (the method itself offers both levels)."""

    name = "card"
    acr_values = (LOA3, LOA2)

    def __init__(self, ctx) -> None:
        self.flow = ctx.flow
        self.logins = 0

    def routes(self) -> list[Route]:
        return []

    async def start(self, request: Request, txn) -> Response:
        self.logins += 1
        hint = txn.params.get("login_hint", "199001012385")
        reserve = hint.startswith("reserve:")
        pnr = hint.removeprefix("reserve:")
        given, family = PEOPLE.get(pnr, ("Okänd", "Person"))
        identity = Identity(method="card", acr=LOA2 if reserve else LOA3, amr=("smartcard",),
                            auth_time=int(time.time()), personal_identity_number=pnr,
                            given_name=given, family_name=family, name=f"{given} {family}",
                            claims={"https://id.oidc.se/claim/deviceIp": "192.0.2.7"})
        return await self.flow.finish(request, txn, identity)

    async def aclose(self) -> None:
        return None


@dataclass
class Stack:
    issuer: str
    app: object
    source: FakeSource
    connector: CardConnector
    jar_key: ECKey
    redis: str

    @property
    def broker(self):
        return self.app.state.broker

    def rp(self, client_id: str) -> FakeRP:
        if client_id == "jar":
            return FakeRP(self.issuer, "jar", REDIRECT, auth="private_key_jwt", key=self.jar_key)
        return FakeRP(self.issuer, client_id, REDIRECT, SECRET)

    def browser(self):
        import httpx

        return httpx.Client(base_url=self.issuer, timeout=10)


def client(client_id: str, **extra) -> dict:
    """A client registered for every scope the broker knows, unless `scopes` says less."""
    return {"client_id": client_id, "client_name": client_id.capitalize(),
            "client_secret": SECRET, "redirect_uris": [REDIRECT],
            "scopes": list(STANDARD_SCOPES), **extra}


@pytest.fixture(scope="module")
def stack(redis, tmp_path_factory):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    tmp = tmp_path_factory.mktemp("oidc")
    jar_key = ECKey.generate_key("P-256", auto_kid=True)
    jar = client("jar", token_endpoint_auth_method="private_key_jwt",
                 jwks={"keys": [jar_key.as_dict(private=False)]})
    jar.pop("client_secret")
    config = {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"o{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "pairwise_salt": "pairwise-salt-for-tests-0123456789",
        "clients": [
            client("optional", pkce="optional"),
            client("required"),
            client("narrow", scopes=["openid"]),
            client("loa3", default_acr_values=[LOA3]),
            jar,
            client("pairwise", subject_type="pairwise", pkce="optional"),
        ],
    }
    settings = parse_settings(config, str(tmp / "broker.yaml"))
    erik = User(id="u-erik", personal_identity_number=ERIK, given_name="Erik", family_name="Ek",
                assignments=(assignment("a-erik", "handlaggare", "U9", CLIENT_IDS),))
    source = FakeSource([*default_users(CLIENT_IDS), erik])
    box: list[CardConnector] = []

    def factory(ctx):
        box.append(CardConnector(ctx))
        return box[-1]

    app = create_app(settings, store=open_store(redis, settings.store.prefix), source=source,
                     connectors={"card": factory})
    with serve(app, port) as url:
        assert url == issuer
        yield Stack(issuer, app, source, box[0], jar_key, redis)

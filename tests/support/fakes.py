"""A connector and an authorization source for tests of the provider core.

They live under tests/ only: the config model cannot name them, so no deployment can use
them by mistake.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from broker.authz import (
    Assignment,
    AuthorizationSourceError,
    Named,
    SourceStatus,
    User,
    match_user,
)
from broker.connectors import LOA3, Identity

PEOPLE = {
    "199001012385": ("Anna", "Andersson"),
    "198505152384": ("Bertil", "Berg"),
    "197212127797": ("Cecilia", "Carlsson"),
}


def assignment(aid: str, role: str, unit: str, clients: tuple[str, ...], **kw) -> Assignment:
    return Assignment(
        id=aid, role=Named(role, role.capitalize()), unit=Named(unit, f"Enhet {unit}"),
        organization=Named("2120001234", "Exempel kommun"), clients=frozenset(clients), **kw,
    )


class FakeSource:
    """Users in memory; tests change them to withdraw or expire an authorization."""

    def __init__(self, users: list[User]) -> None:
        self.users = {u.id: u for u in users}
        self.down = False

    async def find_user(self, identity: Identity) -> User | None:
        if self.down:
            raise AuthorizationSourceError("down")
        return match_user(list(self.users.values()), identity)

    async def get_user(self, user_id: str) -> User | None:
        if self.down:
            raise AuthorizationSourceError("down")
        return self.users.get(user_id)

    async def ping(self) -> None:
        if self.down:
            raise AuthorizationSourceError("down")

    def status(self) -> SourceStatus:
        return SourceStatus()

    async def aclose(self) -> None:
        return None

    def withdraw(self, user_id: str) -> None:
        self.users[user_id] = replace(self.users[user_id], assignments=())


def default_users(clients: tuple[str, ...]) -> list[User]:
    return [
        User(id="u-anna", personal_identity_number="199001012385", hsa_id="SE2321000016-1234",
             given_name="Anna", family_name="Andersson", email="anna@example.se",
             assignments=(assignment("a-anna-1", "sjukskoterska", "SE2321000016-ABCD", clients,
                                     valid_to=date(2099, 1, 1)),)),
        User(id="u-bertil", personal_identity_number="198505152384", given_name="Bertil",
             family_name="Berg",
             assignments=(assignment("a-b-1", "handlaggare", "U1", clients),
                          assignment("a-b-2", "chef", "U2", clients),
                          assignment("a-b-old", "chef", "U3", clients, valid_to=date(2020, 1, 1)))),
        User(id="u-cecilia", personal_identity_number="197212127797", given_name="Cecilia",
             family_name="Carlsson", assignments=()),
    ]


class FakeConnector:
    """Logs in at once as the person named by `login_hint` (a personal number)."""

    name = "test"
    acr_values = (LOA3,)

    def __init__(self, ctx) -> None:
        self.flow = ctx.flow
        self.logins = 0

    def routes(self) -> list[Route]:
        return [Route("/again/{txn_id}", self.again, methods=["GET"])]

    async def start(self, request: Request, txn) -> Response:
        self.logins += 1
        pnr = txn.params.get("login_hint", "199001012385")
        given, family = PEOPLE.get(pnr, ("Okänd", "Person"))
        identity = Identity(method="test", acr=LOA3, amr=("test",), auth_time=int(time.time()),
                            personal_identity_number=pnr, given_name=given, family_name=family,
                            name=f"{given} {family}",
                            claims={"https://id.oidc.se/claim/deviceIp": "192.0.2.7"},
                            evidence={"upstream": "fake"})
        return await self.flow.finish(request, txn, identity)

    async def again(self, request: Request) -> Response:
        txn = await self.flow.load(request, request.path_params["txn_id"])
        return await self.start(request, txn)

    async def aclose(self) -> None:
        return None

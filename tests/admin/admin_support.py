"""Shared data and helpers for the admin app's tests (imported by name)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import httpx

from broker.authz.records import UserRecord
from broker.authz.sql import admin, schema
from broker.authz.sql.engine import create_engine

IT = "196004042393"          # Lars Nilsson, municipal IT
MANAGER_A = "200005052386"   # Fatima Ali, manager at Omsorg AB
MANAGER_B = "198502022398"   # Erik Eriksson, manager at Vård AB
STAFF_A = "199001012385"     # Anna Andersson, staff at Omsorg AB
NEW_PERSON = "197003032385"  # Maria Johansson, not in the database yet

ORG_A = "5561234567"
ORG_B = "5569876543"
LIFECARE_REDIRECT = "https://lifecare.example/cb"
MCSS_REDIRECT = "https://mcss.example/cb"


def _assignment(code: str, name: str, unit: tuple[str, str], org: tuple[str, str],
                clients: list[str], **extra: Any) -> dict[str, Any]:
    return {"role": {"code": code, "name": name}, "unit": {"id": unit[0], "name": unit[1]},
            "organization": {"id": org[0], "name": org[1]}, "clients": clients, **extra}


KOMMUN = ("2120001234", "Exempel kommun")
OMSORG = (ORG_A, "Omsorg AB")
VARD = (ORG_B, "Vård AB")

USERS = [
    {"id": "u-lars", "personal_identity_number": IT, "given_name": "Lars",
     "family_name": "Nilsson", "email": "lars@kommun.example",
     "assignments": [_assignment("it-admin", "IT-administratör", ("K-IT", "IT-avdelningen"),
                                 KOMMUN, ["admin"])]},
    {"id": "u-fatima", "personal_identity_number": MANAGER_A, "given_name": "Fatima",
     "family_name": "Ali", "email": "fatima@omsorg.example", "title": "Enhetschef",
     "assignments": [_assignment("enhetschef", "Enhetschef", ("U-A1", "Hemtjänst Väster"),
                                 OMSORG, ["admin", "lifecare"])]},
    {"id": "u-erik", "personal_identity_number": MANAGER_B, "given_name": "Erik",
     "family_name": "Eriksson", "email": "erik@vard.example",
     "assignments": [_assignment("enhetschef", "Enhetschef", ("U-B1", "Vård Öst"), VARD,
                                 ["admin"])]},
    {"id": "u-anna", "personal_identity_number": STAFF_A, "given_name": "Anna",
     "family_name": "Andersson", "email": "anna@omsorg.example",
     "accounts": {"lifecare": "anna.a"},
     "assignments": [_assignment("underskoterska", "Undersköterska",
                                 ("U-A1", "Hemtjänst Väster"), OMSORG, ["lifecare"],
                                 id="a-anna")]},
]


def admin_config(issuer: str, redis: str, tmp: Path, db_url: str, smtp_port: int) -> dict:
    return {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"adm{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [
            {"client_id": "lifecare", "client_name": "Lifecare", "client_secret": "l" * 32,
             "redirect_uris": [LIFECARE_REDIRECT], "scopes": ["openid", "assignments"],
             "claims": {"user.accounts.lifecare": "preferred_username"}},
            {"client_id": "mcss", "client_name": "MCSS", "client_secret": "m" * 32,
             "redirect_uris": [MCSS_REDIRECT], "scopes": ["openid", "assignments"],
             "claims": {"user.email": "email"}},
        ],
        "connectors": {"bankid": {"environment": "simulator",
                                  "simulator": {"start_timeout": 60, "order_timeout": 170}}},
        "authorization": {"source": "sql", "url": db_url, "auto_migrate": True},
        "admin": {
            "roles": {"it": ["it-admin"], "manager": ["enhetschef"]},
            "requestable_roles": [{"code": "underskoterska", "name": "Undersköterska"},
                                  {"code": "sjukskoterska", "name": "Sjuksköterska"}],
            "organizations": [
                {"id": ORG_A, "name": "Omsorg AB", "clients": ["lifecare", "mcss"],
                 "units": [{"id": "U-A1", "name": "Hemtjänst Väster"},
                           {"id": "U-A2", "name": "Hemtjänst Norr"}]},
                {"id": ORG_B, "name": "Vård AB", "clients": ["lifecare"],
                 "units": [{"id": "U-B1", "name": "Vård Öst"}]},
            ],
            "it_email": "behorighet@kommun.example",
            "review": {"period_days": 182, "remind_days": 14},
        },
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                 "from_address": "behorighet@kommun.example", "timeout": 5},
    }


async def seed(db_url: str, users: list[dict[str, Any]] | None = None) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await schema.migrate(conn)
            for user in users or USERS:
                await admin.add_user(conn, UserRecord.model_validate(user))
    finally:
        await engine.dispose()


class Today:
    """The admin app's clock: a date that moves only when a test says so."""

    def __init__(self, value: date) -> None:
        self.value = value

    def __call__(self) -> date:
        return self.value


@dataclass
class Outbox:
    """aiosmtpd handler: every accepted message, parsed."""

    port: int = 0
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content,
                                 policy=policy.default)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, address: str, count: int = 1, seconds: float = 10) -> list[Message]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no mail to {address}; got {[m['To'] for m in self.messages]}")


def body(msg: Message) -> str:
    return msg.get_content()  # type: ignore[attr-defined]


@dataclass
class AdminBroker:
    issuer: str
    app: Any
    tmp: Path
    db_url: str
    smtp: Outbox
    today: Today

    @property
    def broker(self) -> Any:
        return self.app.state.broker

    def audit(self) -> list[dict[str, Any]]:
        path = self.tmp / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines()] \
            if path.exists() else []

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.issuer, timeout=15)


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def bankid_login(client: httpx.Client, pnr: str, start: str) -> httpx.Response:
    """Walk a BankID login (simulator control API as the person's phone) starting at
    `start`; returns the first response that leaves the broker's login pages."""
    page = client.get(start, follow_redirects=True)
    action = re.search(r'action="(/login/bankid/[^"]+/start)"', page.text)
    assert action, page.text[:800]
    txn_id = action.group(1).split("/")[3]
    waiting = client.post(action.group(1), data={"csrf": csrf(page.text), "device": "other"})
    assert waiting.status_code == 303, waiting.text[:500]
    deadline = time.monotonic() + 15
    ref = None
    while ref is None and time.monotonic() < deadline:
        orders = client.get("/bankid-simulator/control/orders").json()["orders"]
        pending = [o for o in orders if o["status"] == "pending"]
        ref = pending[-1]["orderRef"] if pending else None
        if ref is None:
            time.sleep(0.1)
    assert ref, "no pending BankID order"
    approved = client.post("/bankid-simulator/control/approve",
                           json={"orderRef": ref, "personalNumber": pnr})
    assert approved.status_code == 200, approved.text
    while time.monotonic() < deadline:
        status = client.get(f"/login/bankid/{txn_id}/status").json()
        if status.get("next"):
            return client.get(status["next"])
        time.sleep(0.1)
    raise AssertionError(f"the login did not finish: {status}")


@contextmanager
def admin_login(ab: AdminBroker, pnr: str) -> Iterator[httpx.Client]:
    """A client logged in to the admin app as `pnr` (closed when the block ends)."""
    with ab.client() as client:
        done = bankid_login(client, pnr, "/admin/login")
        assert done.status_code in (302, 303), done.text[:500]
        home = client.get(done.headers["location"], follow_redirects=True)
        assert home.status_code == 200, home.text[:800]
        yield client


def days(n: int) -> timedelta:
    return timedelta(days=n)

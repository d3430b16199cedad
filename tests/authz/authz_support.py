"""Shared data and helpers for the authorization tests (imported by name: tests/authz is on
sys.path, as pytest's rootdir-less test folders are)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from broker.connectors.base import Identity

ANNA_PNR = "199001012385"
ANNA_HSA = "SE2321000016-1234"

USERS_YAML = """\
users:
  - id: u-anna
    personal_identity_number: "199001012385"
    hsa_id: SE2321000016-1234
    given_name: Anna
    family_name: Andersson
    email: anna@example.se
    assignments:
      - role: {code: sjukskoterska, name: Sjuksköterska}
        unit: {id: SE2321000016-ABCD, name: Hemsjukvården Norr}
        organization: {id: "2120001234", name: Exempel kommun}
        clients: [lifecare, mcss]
        valid_from: 2024-01-01
        valid_to: 2027-12-31
      - id: a-old
        role: {code: underskoterska, name: Undersköterska}
        unit: {id: SE2321000016-EFGH, name: Hemtjänsten Söder}
        organization: {id: "2120001234", name: Exempel kommun}
        clients: [lifecare]
        valid_to: 2023-12-31
  - id: u-bo
    hsa_id: SE2321000016-5678
    given_name: Bo
    family_name: Berg
    assignments:
      - role: {code: handlaggare, name: Handläggare}
        unit: {id: U-BIST, name: Biståndsenheten}
        organization: {id: 2120001234, name: Exempel kommun}
        clients: [lifecare]
        valid_from: 2099-01-01
"""


def bankid(pnr: str = ANNA_PNR) -> Identity:
    return Identity(method="bankid", acr="loa3", amr=("bankid",), auth_time=0,
                    personal_identity_number=pnr)


def siths(hsa: str = ANNA_HSA) -> Identity:
    return Identity(method="siths", acr="loa3", amr=("siths",), auth_time=0, hsa_id=hsa)


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    """What the fake external system knows and how it behaves; reset for every test."""

    url: str = ""
    users: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    status: int | None = None
    override: dict[str, Any] | None = None
    requests: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def reset(self) -> None:
        self.users, self.delay, self.status, self.override = [], 0.0, None, None
        self.requests = []

    def lookups(self) -> int:
        return sum(1 for body, _ in self.requests if "ping" not in body)

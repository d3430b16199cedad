"""Who may log in to which system, in which role and unit.

The authorization source owns the stable user id: it becomes `sub`, so the same person
arriving by BankID or SITHS is the same user to every relying party.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..connectors.base import Identity


@dataclass(frozen=True)
class Named:
    """A code or id with a display name (role, unit, organisation)."""

    id: str
    name: str


@dataclass(frozen=True)
class Assignment:
    """One authorization: a role in a unit of an organisation, for some clients, for a time."""

    id: str
    role: Named
    unit: Named
    organization: Named
    clients: frozenset[str]
    valid_from: date | None = None
    valid_to: date | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The last day the assignment counts without a periodic review (inclusive, like
    # `valid_to`): a provider manager confirms it before then, or it ends (see broker/admin).
    review_due: date | None = None

    def valid_for(self, client_id: str, today: date) -> bool:
        if client_id not in self.clients:
            return False
        return self.current(today)

    def current(self, today: date) -> bool:
        """Within its period and not past an unconfirmed review date, for any client."""
        if self.valid_from and today < self.valid_from:
            return False
        if self.review_due and today > self.review_due:
            return False
        return not (self.valid_to and today > self.valid_to)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": {"id": self.role.id, "name": self.role.name},
            "unit": {"id": self.unit.id, "name": self.unit.name},
            "organization": {"id": self.organization.id, "name": self.organization.name},
            "clients": sorted(self.clients),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "review_due": self.review_due.isoformat() if self.review_due else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Assignment:
        return cls(
            id=r["id"],
            role=Named(**r["role"]),
            unit=Named(**r["unit"]),
            organization=Named(**r["organization"]),
            clients=frozenset(r["clients"]),
            valid_from=date.fromisoformat(r["valid_from"]) if r.get("valid_from") else None,
            valid_to=date.fromisoformat(r["valid_to"]) if r.get("valid_to") else None,
            extra=dict(r.get("extra") or {}),
            review_due=date.fromisoformat(r["review_due"]) if r.get("review_due") else None,
        )


@dataclass(frozen=True)
class User:
    id: str
    personal_identity_number: str | None = None
    hsa_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    # The work e-mail address (care systems such as MCSS use it; the admin app mails it).
    email: str | None = None
    # True only when the source vouches that the address belongs to the person.
    email_verified: bool = False
    active: bool = True
    assignments: tuple[Assignment, ...] = ()
    # The person's function, e.g. "Enhetschef" (as the provider reports it).
    title: str | None = None
    # The person's user name in each care system, by system: {"lifecare": "anna.a", ...}.
    # Relying parties map a login to their local account with it (client `claims` mapping).
    accounts: dict[str, str] = field(default_factory=dict)

    def valid_assignments(self, client_id: str, today: date) -> list[Assignment]:
        if not self.active:
            return []
        return [a for a in self.assignments if a.valid_for(client_id, today)]

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "personal_identity_number": self.personal_identity_number,
            "hsa_id": self.hsa_id,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "email": self.email,
            "email_verified": self.email_verified,
            "active": self.active,
            "title": self.title,
            "accounts": dict(self.accounts),
            "assignments": [a.to_record() for a in self.assignments],
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> User:
        data = dict(r)
        data["assignments"] = tuple(Assignment.from_record(a) for a in r.get("assignments", ()))
        data["accounts"] = dict(r.get("accounts") or {})
        return cls(**data)


class AuthorizationSourceError(Exception):
    """The source did not answer in time or answered badly: logins fail closed."""


@dataclass(frozen=True)
class SourceStatus:
    """How current the data a source serves is: a readiness *detail*, never a failure (a
    source that keeps its last good data still answers correctly for everyone else)."""

    degraded: str | None = None  # why it serves older data than it should, or None
    last_good_load: float | None = None  # when the data served was loaded (epoch seconds)


class AuthorizationSource(Protocol):
    """Turns an upstream identity into a user with assignments. Async, with timeouts."""

    async def find_user(self, identity: Identity) -> User | None:
        """The user this identity belongs to (by personal identity number or HSA-id)."""

    async def get_user(self, user_id: str) -> User | None:
        """The user by stable id, asked again at every refresh (withdrawal ends sessions)."""

    async def ping(self) -> None:
        """Raise AuthorizationSourceError when the source cannot answer (readiness)."""

    def status(self) -> SourceStatus:
        """How current the data is (readiness detail and metrics)."""

    async def aclose(self) -> None: ...


def match_user(users: Sequence[User], identity: Identity) -> User | None:
    """The matching rule every source shares: personal number first, then HSA-id."""
    if identity.personal_identity_number:
        for user in users:
            if user.personal_identity_number == identity.personal_identity_number:
                return user
    if identity.hsa_id:
        for user in users:
            if user.hsa_id == identity.hsa_id:
                return user
    return None

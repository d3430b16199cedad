"""Who may do what in the admin app, and what a request may ask for. Pure functions.

Municipal IT (an assignment whose role code is in `admin.roles.it`) sees and changes
everything. A provider manager (`admin.roles.manager`) acts for the organisation of that
assignment only: they see the people who have an assignment there, and request access in
its units, for its clients, in the requestable roles; nothing else, however the form is
filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from ..authz.model import Assignment, Named, User
from ..authz.sql.access import GrantRecord
from .settings import AdminSettings


class Forbidden(Exception):
    """The logged-in person may not do this (403, nothing changed)."""


class OutsideOrganization(Exception):
    """A request asks for more than the organisation owns; `problems` name the fields."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Staff:
    """The logged-in administrator as their chosen assignment makes them."""

    user_id: str
    name: str
    email: str | None
    assignment_id: str
    kind: Literal["it", "manager"]
    organization: Named

    @property
    def is_it(self) -> bool:
        return self.kind == "it"

    def sees_assignment(self, a: Assignment) -> bool:
        return self.is_it or a.organization.id == self.organization.id

    def sees(self, user: User) -> bool:
        return self.is_it or any(self.sees_assignment(a) for a in user.assignments)

    def require_it(self) -> None:
        if not self.is_it:
            raise Forbidden("municipal IT only")

    def require_sees(self, user: User | None) -> User:
        if user is None or not self.sees(user):
            # The same answer for "no such person" and "not yours": nothing to probe.
            raise Forbidden("not a person of this organisation")
        return user


def staff_for(user: User | None, assignment_id: str, settings: AdminSettings,
              today: date) -> Staff | None:
    """The administrator this login makes, or None: the chosen assignment must still be
    valid for the admin client and carry one of the configured roles."""
    if user is None or not user.active:
        return None
    a = next((x for x in user.assignments if x.id == assignment_id), None)
    if a is None or not a.valid_for(settings.client_id, today):
        return None
    if a.role.id in settings.roles.it:
        kind: Literal["it", "manager"] = "it"
    elif a.role.id in settings.roles.manager:
        kind = "manager"
    else:
        return None
    name = " ".join(p for p in (user.given_name, user.family_name) if p) or user.id
    return Staff(user.id, name, user.email, a.id, kind, a.organization)


def check_grant(settings: AdminSettings, organization_id: str, grant: GrantRecord,
                today: date) -> tuple[Named, Named, Named]:
    """(organisation, role, unit) of a grant within what the organisation owns, or
    OutsideOrganization naming every field that asks for more."""
    problems: dict[str, str] = {}
    org = settings.organization(organization_id)
    if org is None:
        raise OutsideOrganization({"organization": "the organisation is not configured "
                                                   "under admin.organizations"})
    unit = org.unit(grant.unit_id)
    if unit is None:
        problems["unit_id"] = "not a unit of the organisation"
    role = settings.role(grant.role_code)
    if role is None:
        problems["role_code"] = "not a role that can be requested"
    extra = sorted(set(grant.clients) - set(org.clients))
    if extra:
        problems["clients"] = f"the organisation has no access to {', '.join(extra)}"
    systems = sorted(set(grant.accounts) - set(settings.systems))
    if systems:
        problems["accounts"] = f"unknown system {', '.join(systems)}"
    if grant.valid_to and grant.valid_to < today:
        problems["valid_to"] = "the end date has passed"
    if problems:
        raise OutsideOrganization(problems)
    assert unit is not None and role is not None
    return Named(org.id, org.name), Named(role.code, role.name), Named(unit.id, unit.name)

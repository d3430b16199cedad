"""Settings under `admin`: who administers access, and what each provider owns.

    admin:
      roles:
        it: [it-admin]                 # role codes of municipal IT (every organisation)
        manager: [enhetschef]          # provider managers, for the organisation of the assignment
      requestable_roles:               # what a manager may request (never an IT role)
        - {code: underskoterska, name: Undersköterska}
      organizations:                   # what each provider owns: a request never grants more
        - id: "5561234567"
          name: Omsorg AB
          clients: [lifecare, mcss]
          units: [{id: SE5561234567-HT1, name: Hemtjänst Väster}]
      systems: [lifecare, mcss, treserva, tes]   # care systems whose user names are kept
      it_email: behorighet@example.kommun.se     # new requests are announced here
      review: {period_days: 182, remind_days: 14}
      session: {idle_timeout: 900, absolute_timeout: 28800}

Staff reach the admin app through the broker's own login as the built-in client
`client_id` (default `admin`), so their assignments for that client decide what they may do.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..authz.records import check_system

_Code = Annotated[str, Field(min_length=1, max_length=64)]
_Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class RoleSettings(_Model):
    code: _Code
    name: _Name


class UnitSettings(_Model):
    id: _Code
    name: _Name


class OrganizationSettings(_Model):
    id: _Code
    name: _Name
    clients: list[_Code] = Field(min_length=1)
    units: list[UnitSettings] = Field(min_length=1)

    def unit(self, unit_id: str) -> UnitSettings | None:
        return next((u for u in self.units if u.id == unit_id), None)


class AdminRoles(_Model):
    it: list[_Code] = Field(min_length=1)
    manager: list[_Code] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> AdminRoles:
        both = sorted(set(self.it) & set(self.manager))
        if both:
            raise ValueError(f"{', '.join(both)}: a role code is either IT or manager")
        return self


class ReviewSettings(_Model):
    # Days from a grant or a confirmation to the next review date (about six months).
    period_days: int = Field(182, ge=7, le=3 * 366)
    # Days before the review date that the manager is reminded (`broker authz reviews remind`).
    remind_days: int = Field(14, ge=1, le=90)


class AdminSessionSettings(_Model):
    idle_timeout: int = Field(900, ge=60, le=86400)
    absolute_timeout: int = Field(8 * 3600, ge=300, le=86400)


class AdminSettings(_Model):
    client_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")] = "admin"
    roles: AdminRoles
    requestable_roles: list[RoleSettings] = Field(default_factory=list)
    organizations: list[OrganizationSettings] = Field(default_factory=list)
    systems: list[str] = Field(default_factory=lambda: ["lifecare", "mcss", "treserva", "tes"])
    it_email: str | None = Field(None, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
    review: ReviewSettings = ReviewSettings()
    session: AdminSessionSettings = AdminSessionSettings()

    @field_validator("systems")
    @classmethod
    def _systems(cls, v: list[str]) -> list[str]:
        for name in v:
            try:
                check_system(name)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if len(set(v)) != len(v):
            raise ValueError("a system appears twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AdminSettings:
        it = set(self.roles.it)
        for i, role in enumerate(self.requestable_roles):
            if role.code in it:
                raise ValueError(f"requestable_roles[{i}]: {role.code} is an IT role; only IT "
                                 "grants it")
        codes = [r.code for r in self.requestable_roles]
        if len(set(codes)) != len(codes):
            raise ValueError("requestable_roles: a role code appears twice")
        ids = [o.id for o in self.organizations]
        if len(set(ids)) != len(ids):
            raise ValueError("organizations: an organisation id appears twice")
        return self

    def organization(self, org_id: str | None) -> OrganizationSettings | None:
        return next((o for o in self.organizations if o.id == org_id), None)

    def role(self, code: str) -> RoleSettings | None:
        return next((r for r in self.requestable_roles if r.code == code), None)

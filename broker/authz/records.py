"""The user record shape shared by the YAML file, the HTTP contract and the admin CLI.

One validation for every way users come in, so a personal number that the file accepts is
the same one the database or an external system may hand over: 12 digits with a valid
date and check digit, HSA-ids in their canonical upper-case form.

    id: u-anna
    personal_identity_number: "199001012385"
    hsa_id: SE2321000016-1234
    given_name: Anna
    family_name: Andersson
    email: anna@example.se                         # the work e-mail address
    email_verified: true                           # optional, default false: the source vouches for the address
    title: Sjuksköterska                           # optional, the person's function
    accounts: {lifecare: anna.a, mcss: AANDE01}    # optional, user name per care system
    active: true                                   # optional, default true
    assignments:
      - id: a-1                                    # optional, derived when missing
        role: {code: sjukskoterska, name: Sjuksköterska}
        unit: {id: SE2321000016-ABCD, name: Hemsjukvården Norr}
        organization: {id: "2120001234", name: Exempel kommun}
        clients: [lifecare, mcss]
        valid_from: 2024-01-01                     # optional, inclusive
        valid_to: 2027-12-31                       # optional, inclusive
        review_due: 2026-06-30                     # optional, ends unless reviewed by then
        username: anna.a                           # optional, the user name in the care system
        extra: {}                                  # optional, passed through
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..identifiers import check_hsa_id, check_personal_number
from .model import Assignment, Named, User

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
ID_RULE = "1-64 characters: letters, digits and . _ : @ - (starting with a letter or digit)"
_ID = re.compile(ID_PATTERN)


def check_id(value: str) -> str:
    """User and assignment ids end up in tokens (`sub`) and URLs: keep them plain."""
    if not _ID.match(value):
        raise ValueError(f"an id has {ID_RULE}")
    return value


def _pnr(value: str) -> str:
    return check_personal_number(value)


def _hsa(value: str) -> str:
    # HSA-ids compare case-insensitively; certificates and people write them either way.
    return check_hsa_id(value.strip().upper())


SYSTEM_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
SYSTEM_RULE = "1-32 lower-case letters, digits, _ or - (starting with a letter), e.g. lifecare"
_SYSTEM = re.compile(SYSTEM_PATTERN)


def check_system(value: str) -> str:
    """A care system's name as a key of `accounts` (and in `user.accounts.<system>`)."""
    if not _SYSTEM.match(value):
        raise ValueError(f"a system name has {SYSTEM_RULE}")
    return value


def _account(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a user name must not contain control characters")
    return value


def _email(value: str) -> str:
    v = value.strip()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", v):
        raise ValueError("is not an e-mail address")
    return v


Id = Annotated[str, AfterValidator(check_id)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
PersonalNumber = Annotated[str, AfterValidator(_pnr)]
HsaId = Annotated[str, AfterValidator(_hsa)]
Email = Annotated[str, AfterValidator(_email)]
System = Annotated[str, AfterValidator(check_system)]
Account = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_account)]


class _Record(BaseModel):
    # Unquoted YAML numbers (a personal number, an organisation number) arrive as ints.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True,
                              str_strip_whitespace=True)


class RoleRecord(_Record):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    name: Text


class NamedRecord(_Record):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: Text


class AssignmentRecord(_Record):
    id: Id | None = None
    role: RoleRecord
    unit: NamedRecord
    organization: NamedRecord
    clients: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    valid_from: date | None = None
    valid_to: date | None = None
    username: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    review_due: date | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _period(self) -> AssignmentRecord:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def to_assignment(self, user_id: str) -> Assignment:
        extra = dict(self.extra)
        if self.username:
            extra["username"] = self.username
        return Assignment(
            id=self.id or derive_assignment_id(user_id, self.role.code, self.unit.id,
                                               self.organization.id),
            role=Named(self.role.code, self.role.name),
            unit=Named(self.unit.id, self.unit.name),
            organization=Named(self.organization.id, self.organization.name),
            clients=frozenset(self.clients),
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            extra=extra,
            review_due=self.review_due,
        )


class UserRecord(_Record):
    id: Id
    personal_identity_number: PersonalNumber | None = None
    hsa_id: HsaId | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    email: Email | None = None
    title: Text | None = None
    accounts: dict[System, Account] = Field(default_factory=dict)
    email_verified: bool = False
    active: bool = True
    assignments: list[AssignmentRecord] = Field(default_factory=list)

    @model_validator(mode="after")
    def _identifiable(self) -> UserRecord:
        if not (self.personal_identity_number or self.hsa_id):
            raise ValueError("a user needs personal_identity_number or hsa_id (or both)")
        return self

    @field_validator("assignments")
    @classmethod
    def _no_duplicates(cls, v: list[AssignmentRecord]) -> list[AssignmentRecord]:
        seen: set[tuple[str, ...]] = set()
        for a in v:
            key = (a.id,) if a.id else (a.role.code, a.unit.id, a.organization.id)
            if key in seen:
                raise ValueError(
                    "two assignments with the same id, or the same role, unit and "
                    "organisation without ids"
                )
            seen.add(key)
        return v

    def to_user(self) -> User:
        return User(
            id=self.id,
            personal_identity_number=self.personal_identity_number,
            hsa_id=self.hsa_id,
            given_name=self.given_name,
            family_name=self.family_name,
            email=self.email,
            email_verified=self.email_verified,
            active=self.active,
            assignments=tuple(a.to_assignment(self.id) for a in self.assignments),
            title=self.title,
            accounts=dict(self.accounts),
        )


def derive_assignment_id(user_id: str, role: str, unit: str, organization: str) -> str:
    """A stable id for an assignment given without one.

    Built from who, what and where only, so changing an assignment's validity or clients
    keeps its id (a relying party may remember the chosen assignment by id).
    """
    digest = hashlib.sha256("\x1f".join((user_id, role, unit, organization)).encode()).hexdigest()
    return "a-" + digest[:16]


def user_from_record(data: Any) -> User:
    """Validate one user in the record shape; raises pydantic's ValidationError."""
    return UserRecord.model_validate(data).to_user()


def user_to_record(user: User) -> dict[str, Any]:
    """The record shape of a user (the inverse of `user_from_record`), for files and JSON."""
    out: dict[str, Any] = {"id": user.id}
    for key in ("personal_identity_number", "hsa_id", "given_name", "family_name", "email",
                "title"):
        value = getattr(user, key)
        if value is not None:
            out[key] = value
    if user.email_verified:
        out["email_verified"] = True
    if user.accounts:
        out["accounts"] = dict(sorted(user.accounts.items()))
    if not user.active:
        out["active"] = False
    out["assignments"] = [assignment_to_record(a) for a in user.assignments]
    return out


def assignment_to_record(a: Assignment) -> dict[str, Any]:
    extra = dict(a.extra)
    rec: dict[str, Any] = {
        "id": a.id,
        "role": {"code": a.role.id, "name": a.role.name},
        "unit": {"id": a.unit.id, "name": a.unit.name},
        "organization": {"id": a.organization.id, "name": a.organization.name},
        "clients": sorted(a.clients),
    }
    if a.valid_from:
        rec["valid_from"] = a.valid_from.isoformat()
    if a.valid_to:
        rec["valid_to"] = a.valid_to.isoformat()
    if a.review_due:
        rec["review_due"] = a.review_due.isoformat()
    if "username" in extra:
        rec["username"] = extra.pop("username")
    if extra:
        rec["extra"] = extra
    return rec



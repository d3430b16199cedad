"""Access requests and periodic reviews in the SQL source (the admin app and `broker authz`).

A provider manager's request is stored with its state (pending, approved, rejected); an
approval changes the user and the assignment in the caller's transaction, which first
moves the request out of `pending` (`UPDATE ... WHERE state = 'pending'`): of two people
approving at once one wins, and the other is told the request was decided already.

Every assignment granted here gets a review date; confirming moves it a period ahead,
and an assignment not confirmed by then stops counting (`Assignment.current`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..model import Assignment, Named, User
from ..records import (
    Account,
    Email,
    HsaId,
    PersonalNumber,
    System,
    Text,
    _Record,
    derive_assignment_id,
)
from . import queries
from .admin import AdminError, new_user_id, set_accounts
from .schema import access_requests, assignments, now, users

Kind = Literal["grant", "end"]
State = Literal["pending", "approved", "rejected"]


class GrantRecord(_Record):
    """What a grant request asks for: the person (new, or `user_id` for one who exists)
    and one assignment in the requesting organisation. Validated like every user record."""

    user_id: str | None = None
    personal_identity_number: PersonalNumber | None = None
    hsa_id: HsaId | None = None
    given_name: Text | None = None
    family_name: Text | None = None
    email: Email | None = None
    title: Text | None = None
    accounts: dict[System, Account] = Field(default_factory=dict)
    role_code: Text
    unit_id: Text
    clients: list[Text] = Field(min_length=1)
    valid_to: date | None = None

    @model_validator(mode="after")
    def _person(self) -> GrantRecord:
        if not self.user_id:
            if not (self.personal_identity_number or self.hsa_id):
                raise ValueError("a new person needs a personal identity number or an HSA-id")
            if not (self.given_name and self.family_name):
                raise ValueError("a new person needs a given name and a family name")
        return self


@dataclass(frozen=True)
class AccessRequest:
    id: str
    kind: Kind
    state: State
    organization_id: str
    user_id: str | None
    assignment_id: str | None
    payload: dict[str, Any]
    requested_by: str
    requested_by_name: str | None
    requested_by_email: str | None
    locale: str
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None

    @property
    def grant(self) -> GrantRecord:
        return GrantRecord.model_validate(self.payload)

    def to_record(self) -> dict[str, Any]:
        """For `--json` and the audit log (the payload may hold a whole personal number)."""
        return {
            "id": self.id, "kind": self.kind, "state": self.state,
            "organization_id": self.organization_id, "user_id": self.user_id,
            "assignment_id": self.assignment_id, "payload": self.payload,
            "requested_by": self.requested_by, "requested_by_name": self.requested_by_name,
            "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
            "decided_at": (self.decided_at.isoformat(timespec="seconds") + "Z"
                           if self.decided_at else None),
            "decided_by": self.decided_by, "reason": self.reason,
        }


@dataclass(frozen=True)
class Requester:
    """Who asks (the admin app's logged-in manager, or a script)."""

    user_id: str
    name: str | None = None
    email: str | None = None
    locale: str = "sv"


@dataclass(frozen=True)
class Decision:
    """What an approval changed: the request as decided, and the user before and after."""

    request: AccessRequest
    before: User | None
    after: User | None
    assignment_id: str | None = None
    notes: list[str] = field(default_factory=list)


def _from_row(row: Any) -> AccessRequest:
    return AccessRequest(
        id=row.id, kind=row.kind, state=row.state, organization_id=row.organization_id,
        user_id=row.user_id, assignment_id=row.assignment_id, payload=json.loads(row.payload),
        requested_by=row.requested_by, requested_by_name=row.requested_by_name,
        requested_by_email=row.requested_by_email, locale=row.locale,
        created_at=row.created_at, decided_at=row.decided_at, decided_by=row.decided_by,
        reason=row.reason,
    )


def new_request_id() -> str:
    return "r-" + secrets.token_hex(8)


async def create_request(conn: AsyncConnection, *, kind: Kind, organization_id: str,
                         requester: Requester, payload: dict[str, Any] | None = None,
                         user_id: str | None = None,
                         assignment_id: str | None = None) -> AccessRequest:
    """Store a pending request (the caller has checked it is within the organisation)."""
    request = AccessRequest(
        id=new_request_id(), kind=kind, state="pending", organization_id=organization_id,
        user_id=user_id, assignment_id=assignment_id, payload=payload or {},
        requested_by=requester.user_id, requested_by_name=requester.name,
        requested_by_email=requester.email, locale=requester.locale, created_at=now(),
    )
    await conn.execute(access_requests.insert().values(
        id=request.id, kind=kind, state="pending", organization_id=organization_id,
        user_id=user_id, assignment_id=assignment_id,
        payload=json.dumps(request.payload, ensure_ascii=False, default=str),
        requested_by=requester.user_id, requested_by_name=requester.name,
        requested_by_email=requester.email, locale=requester.locale,
        created_at=request.created_at))
    return request


async def get_request(conn: AsyncConnection, request_id: str) -> AccessRequest | None:
    row = (await conn.execute(select(access_requests)
                              .where(access_requests.c.id == request_id))).first()
    return _from_row(row) if row else None


async def list_requests(conn: AsyncConnection, *, state: State | None = None,
                        organization_id: str | None = None) -> list[AccessRequest]:
    query = select(access_requests).order_by(access_requests.c.created_at.desc(),
                                             access_requests.c.id)
    if state:
        query = query.where(access_requests.c.state == state)
    if organization_id is not None:
        query = query.where(access_requests.c.organization_id == organization_id)
    return [_from_row(r) for r in (await conn.execute(query)).all()]


async def _decide(conn: AsyncConnection, request_id: str, state: State, by: str,
                  reason: str | None) -> AccessRequest:
    result = await conn.execute(
        update(access_requests)
        .where(access_requests.c.id == request_id, access_requests.c.state == "pending")
        .values(state=state, decided_at=now(), decided_by=by, reason=reason))
    request = await get_request(conn, request_id)
    if request is None:
        raise AdminError(f"no request {request_id}")
    if result.rowcount != 1:
        raise AdminError(f"request {request_id} was {request.state} already")
    return request


async def reject(conn: AsyncConnection, request_id: str, by: str, reason: str) -> AccessRequest:
    if not reason.strip():
        raise AdminError("say why the request is rejected")
    return await _decide(conn, request_id, "rejected", by, reason.strip())


async def approve(conn: AsyncConnection, request_id: str, by: str, *, today: date,
                  organization: Named, role: Named, unit: Named,
                  review_days: int) -> Decision:
    """Carry out a pending request in the caller's transaction.

    `organization`, `role` and `unit` are what the caller resolved (and checked against
    what the organisation owns) from the request: the approval writes exactly those.
    """
    request = await _decide(conn, request_id, "approved", by, None)
    if request.kind == "end":
        before, after = await end_assignment(conn, request.user_id or "",
                                             request.assignment_id or "", today,
                                             organization_id=request.organization_id)
        return Decision(request, before, after, request.assignment_id)
    grant = request.grant
    before = await _grant_target(conn, grant)
    notes: list[str] = []
    if before is None:
        user_id = new_user_id()
        await conn.execute(users.insert().values(
            id=user_id, personal_identity_number=grant.personal_identity_number,
            hsa_id=grant.hsa_id, given_name=grant.given_name, family_name=grant.family_name,
            email=grant.email, title=grant.title, active=True, created_at=now(),
            updated_at=now()))
        await set_accounts(conn, user_id, dict(grant.accounts))
    else:
        user_id = before.id
        # A person who exists already (perhaps employed by another provider too): the
        # request fills in what is missing and never overwrites what someone else set.
        values: dict[str, Any] = {}
        for key in ("personal_identity_number", "hsa_id", "email", "title"):
            given, stored = getattr(grant, key), getattr(before, key)
            if given and not stored:
                values[key] = given
            elif given and given != stored:
                notes.append(f"{key}: kept the stored value")
        if values:
            await conn.execute(update(users).where(users.c.id == user_id)
                               .values(updated_at=now(), **values))
        accounts = dict(before.accounts)
        for system, name in grant.accounts.items():
            if accounts.get(system, name) != name:
                notes.append(f"accounts.{system}: kept the stored user name")
            accounts.setdefault(system, name)
        await set_accounts(conn, user_id, accounts)
    assignment = Assignment(
        id=derive_assignment_id(user_id, role.id, unit.id, organization.id),
        role=role, unit=unit, organization=organization, clients=frozenset(grant.clients),
        valid_from=None, valid_to=grant.valid_to,
        review_due=today + timedelta(days=review_days),
    )
    if assignment.valid_to and assignment.valid_to < today:
        raise AdminError("the requested end date has passed")
    await _put_assignment(conn, user_id, assignment, by)
    after = await queries.user_where(conn, "id", user_id)
    await conn.execute(update(access_requests).where(access_requests.c.id == request_id)
                       .values(user_id=user_id, assignment_id=assignment.id))
    request = replace(request, user_id=user_id, assignment_id=assignment.id)
    return Decision(request, before, after, assignment.id, notes)


async def _grant_target(conn: AsyncConnection, grant: GrantRecord) -> User | None:
    if grant.user_id:
        user = await queries.user_where(conn, "id", grant.user_id)
        if user is None:
            raise AdminError(f"no user {grant.user_id}")
        return user
    return await queries.find_user(conn, grant.personal_identity_number, grant.hsa_id)


async def _put_assignment(conn: AsyncConnection, user_id: str, a: Assignment, by: str) -> None:
    """Insert, or grant again an assignment with the same role, unit and organisation."""
    values = {k: v for k, v in queries.assignment_values(user_id, a).items()}
    stamp = now()
    where = and_(assignments.c.user_id == user_id, assignments.c.id == a.id)
    exists = (await conn.execute(select(assignments.c.id).where(where))).first()
    if exists:
        await conn.execute(update(assignments).where(where).values(
            **{k: v for k, v in values.items() if k not in ("user_id", "id")},
            reviewed_at=stamp, reviewed_by=by, reminded_at=None))
    else:
        await conn.execute(assignments.insert().values(created_at=stamp, reviewed_at=stamp,
                                                       reviewed_by=by, **values))


async def owned(conn: AsyncConnection, user_id: str, assignment_id: str,
                 organization_id: str | None) -> tuple[User, Assignment]:
    """The user and their assignment, in `organization_id` when given; else AdminError."""
    user = await queries.user_where(conn, "id", user_id)
    target = next((a for a in user.assignments if a.id == assignment_id), None) if user \
        else None
    if user is None or target is None or (
            organization_id is not None and target.organization.id != organization_id):
        raise AdminError(f"user {user_id} has no assignment {assignment_id}"
                         + (" in this organisation" if organization_id else ""))
    return user, target


async def end_assignment(conn: AsyncConnection, user_id: str, assignment_id: str, today: date,
                         *, organization_id: str | None = None) -> tuple[User, User]:
    """End an assignment now: it was valid until yesterday (one not yet begun goes)."""
    before, target = await owned(conn, user_id, assignment_id, organization_id)
    yesterday = today - timedelta(days=1)
    where = and_(assignments.c.user_id == user_id, assignments.c.id == assignment_id)
    if target.valid_from and target.valid_from > yesterday:
        await conn.execute(delete(assignments).where(where))
    elif not (target.valid_to and target.valid_to <= yesterday):
        await conn.execute(update(assignments).where(where).values(valid_to=yesterday))
    after = await queries.user_where(conn, "id", user_id)
    assert after is not None
    return before, after


# --- reviews --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """An assignment with a review date, and its user."""

    user: User
    assignment: Assignment

    @property
    def key(self) -> tuple[str, str]:
        return (self.user.id, self.assignment.id)


async def reviews(conn: AsyncConnection, *, until: date, since: date | None = None,
                  organization_id: str | None = None, today: date) -> list[Due]:
    """Assignments whose review date is between `since` and `until` (inclusive), that have
    not ended otherwise (by `valid_to` before the review date), oldest date first."""
    conditions = [assignments.c.review_due.is_not(None), assignments.c.review_due <= until]
    if since is not None:
        conditions.append(assignments.c.review_due >= since)
    if organization_id is not None:
        conditions.append(assignments.c.organization_id == organization_id)
    conditions.append(or_(assignments.c.valid_to.is_(None),
                          assignments.c.valid_to >= assignments.c.review_due,
                          assignments.c.valid_to >= today))
    rows = (await conn.execute(
        select(assignments.c.user_id, assignments.c.id).where(*conditions)
        .order_by(assignments.c.review_due, assignments.c.user_id, assignments.c.id))).all()
    out: list[Due] = []
    cache: dict[str, User | None] = {}
    for user_id, assignment_id in rows:
        if user_id not in cache:
            cache[user_id] = await queries.user_where(conn, "id", user_id)
        user = cache[user_id]
        if user is None:
            continue
        a = next((x for x in user.assignments if x.id == assignment_id), None)
        if a is not None:
            out.append(Due(user, a))
    return out


async def confirm(conn: AsyncConnection, user_id: str, assignment_id: str, by: str, *,
                  today: date, review_days: int, organization_id: str | None = None,
                  reinstate: bool = False) -> tuple[User, User]:
    """The assignment is still needed: its next review is a period from today.

    Past its review date it has ended; only `reinstate` (municipal IT) brings it back.
    """
    before, target = await owned(conn, user_id, assignment_id, organization_id)
    if target.review_due and target.review_due < today and not reinstate:
        raise AdminError(f"assignment {assignment_id} ended at its review date "
                         f"{target.review_due}; ask municipal IT to grant it again")
    if target.valid_to and target.valid_to < today:
        raise AdminError(f"assignment {assignment_id} has ended ({target.valid_to})")
    await conn.execute(update(assignments).where(
        assignments.c.user_id == user_id, assignments.c.id == assignment_id).values(
        review_due=today + timedelta(days=review_days), reviewed_at=now(), reviewed_by=by,
        reminded_at=None))
    after = await queries.user_where(conn, "id", user_id)
    assert after is not None
    return before, after


async def unreminded(conn: AsyncConnection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (user id, assignment id) have had no reminder for their review date."""
    if not keys:
        return set()
    rows = (await conn.execute(select(assignments.c.user_id, assignments.c.id).where(
        or_(*(and_(assignments.c.user_id == u, assignments.c.id == a) for u, a in keys)),
        assignments.c.reminded_at.is_(None)))).all()
    return {(r[0], r[1]) for r in rows}


async def mark_reminded(conn: AsyncConnection, keys: list[tuple[str, str]]) -> None:
    stamp = now()
    for user_id, assignment_id in keys:
        await conn.execute(update(assignments).where(
            assignments.c.user_id == user_id, assignments.c.id == assignment_id)
            .values(reminded_at=stamp))


async def users_in_organization(conn: AsyncConnection, organization_id: str) -> list[User]:
    """Everyone with an assignment (current or not) in the organisation."""
    ids = select(assignments.c.user_id).where(
        assignments.c.organization_id == organization_id).distinct()
    return await queries.all_users(conn, users.c.id.in_(ids))

"""Changes to the SQL source, for the admin CLI. Each function runs in the caller's transaction.

Identifiers are validated before anything is written (through `records`), and conflicts
(a personal number or HSA-id that already belongs to someone else) are reported as
AdminError with a message for the person at the keyboard, never as a database error.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ...identifiers import IdentifierError, check_hsa_id, check_personal_number
from ..csvio import CsvUser
from ..model import Assignment, User
from ..records import AssignmentRecord, UserRecord
from . import queries
from .schema import assignments, now, user_accounts, users


class AdminError(Exception):
    """A change that cannot be made; the message says why, for a person."""


class ImportFailed(AdminError):
    """An import with problems; nothing was written. `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    assignments: int


def new_user_id() -> str:
    """A random id. Never derived from a personal number: `sub` must not reveal it, and a
    hash of one is reversible by trying every date and serial."""
    return "u-" + secrets.token_hex(8)


def key_column(key: str) -> tuple[str, str]:
    """What a user key typed at the command line is: an id, a personal number or an HSA-id."""
    k = key.strip()
    if k[:2].upper() == "SE" and k[2:3].isdigit():
        try:
            return "hsa_id", check_hsa_id(k)
        except IdentifierError:
            pass
    digits = k.replace("-", "").replace("+", "")
    if digits.isdigit() and len(digits) == 12:
        return "personal_identity_number", check_personal_number(k)
    return "id", k


async def resolve_user(conn: AsyncConnection, key: str) -> User:
    """The user named by id, personal number or HSA-id; AdminError when there is none."""
    try:
        column, value = key_column(key)
    except IdentifierError as exc:
        raise AdminError(str(exc)) from None
    user = await queries.user_where(conn, column, value)
    if user is None:
        raise AdminError(f"no user with this {column.replace('_', ' ')}: {_shown(column, key)}")
    return user


def _shown(column: str, value: str) -> str:
    return "(not shown)" if column == "personal_identity_number" else value


async def _conflicts(conn: AsyncConnection, record: UserRecord, user_id: str) -> list[str]:
    """Which of the record's identifiers already belong to another user."""
    conditions = []
    if record.personal_identity_number:
        conditions.append(users.c.personal_identity_number == record.personal_identity_number)
    if record.hsa_id:
        conditions.append(users.c.hsa_id == record.hsa_id)
    if not conditions:
        return []
    rows = (await conn.execute(select(users).where(or_(*conditions), users.c.id != user_id))).all()
    out = []
    for row in rows:
        if record.personal_identity_number and \
                row.personal_identity_number == record.personal_identity_number:
            out.append(f"personal_identity_number: already belongs to user {row.id}")
        if record.hsa_id and row.hsa_id == record.hsa_id:
            out.append(f"hsa_id: already belongs to user {row.id}")
    return out + await account_conflicts(conn, record.accounts, user_id)


async def account_conflicts(conn: AsyncConnection, accounts: dict[str, str],
                            user_id: str) -> list[str]:
    """Which of these care-system user names already belong to another user."""
    if not accounts:
        return []
    owned = or_(*(and_(user_accounts.c.system == system, user_accounts.c.username == name)
                  for system, name in accounts.items()))
    rows = (await conn.execute(select(user_accounts).where(
        owned, user_accounts.c.user_id != user_id))).all()
    return [f"accounts.{r.system}: the user name {r.username} already belongs to user "
            f"{r.user_id}" for r in sorted(rows, key=lambda r: r.system)]


async def set_accounts(conn: AsyncConnection, user_id: str, accounts: dict[str, str]) -> None:
    """Replace the user's care-system user names with `accounts` (conflicts checked first)."""
    problems = await account_conflicts(conn, accounts, user_id)
    if problems:
        raise AdminError("; ".join(problems))
    await conn.execute(delete(user_accounts).where(user_accounts.c.user_id == user_id))
    if accounts:
        await conn.execute(user_accounts.insert(), [
            {"user_id": user_id, "system": system, "username": name}
            for system, name in sorted(accounts.items())])


def _user_values(record: UserRecord) -> dict[str, object]:
    return {
        "personal_identity_number": record.personal_identity_number,
        "hsa_id": record.hsa_id,
        "given_name": record.given_name,
        "family_name": record.family_name,
        "email": record.email,
        "title": record.title,
        "active": record.active,
        "updated_at": now(),
    }


async def add_user(conn: AsyncConnection, record: UserRecord) -> User:
    """Create a user (and the record's assignments, if any)."""
    if await queries.user_where(conn, "id", record.id) is not None:
        raise AdminError(f"user id {record.id} is taken")
    problems = await _conflicts(conn, record, record.id)
    if problems:
        raise AdminError("; ".join(problems))
    await conn.execute(users.insert().values(id=record.id, created_at=now(),
                                             **_user_values(record)))
    user = record.to_user()
    await set_accounts(conn, user.id, user.accounts)
    await _insert_assignments(conn, user.id, user.assignments)
    return user


async def _insert_assignments(conn: AsyncConnection, user_id: str,
                              assigned: tuple[Assignment, ...] | list[Assignment]) -> None:
    if assigned:
        stamp = now()
        await conn.execute(
            assignments.insert(),
            [{**queries.assignment_values(user_id, a), "created_at": stamp} for a in assigned],
        )


async def set_active(conn: AsyncConnection, key: str, active: bool) -> User:
    user = await resolve_user(conn, key)
    await conn.execute(
        update(users).where(users.c.id == user.id).values(active=active, updated_at=now())
    )
    return await resolve_user(conn, user.id)


async def add_assignment(conn: AsyncConnection, key: str, record: AssignmentRecord,
                         review_due: date | None = None) -> Assignment:
    """Add one assignment; `review_due` is its review date when the record gives none."""
    user = await resolve_user(conn, key)
    assignment = record.to_assignment(user.id)
    if assignment.review_due is None and review_due is not None:
        assignment = replace(assignment, review_due=review_due)
    if any(a.id == assignment.id for a in user.assignments):
        raise AdminError(
            f"user {user.id} already has assignment {assignment.id} (the same role, unit and "
            "organisation); remove it first to change it"
        )
    await _insert_assignments(conn, user.id, [assignment])
    return assignment


async def remove_assignment(conn: AsyncConnection, key: str, assignment_id: str) -> None:
    user = await resolve_user(conn, key)
    result = await conn.execute(
        delete(assignments).where(assignments.c.user_id == user.id,
                                  assignments.c.id == assignment_id)
    )
    if result.rowcount == 0:
        raise AdminError(f"user {user.id} has no assignment {assignment_id}")


async def import_users(conn: AsyncConnection, rows: list[CsvUser],
                       review_due: date | None = None) -> ImportResult:
    """Write users from a validated CSV: each named user is created or replaced whole
    (columns and assignments); users not in the file are left as they are.

    Review dates belong to the review routine, not to the HR system a file comes from: an
    assignment without one keeps the date its earlier version had (same id), else gets
    `review_due`. Columns the file's header lacks among `title` and `accounts` keep the
    stored values, so a file written before those columns existed wipes nothing.

    Every conflict is collected before raising ImportFailed, so one run lists all of them;
    the caller's transaction then rolls back and nothing is half-written.
    """
    problems: list[str] = []
    plan: list[tuple[CsvUser, str, bool]] = []
    claimed: dict[str, int] = {}
    for row in rows:
        user_id, exists = await _import_target(conn, row)
        if user_id in claimed:
            problems.append(f"line {row.line}: the same user as line {claimed[user_id]}")
            continue
        claimed[user_id] = row.line
        record = row.record.model_copy(update={"id": user_id})
        problems += [f"line {row.line}: {p}" for p in await _conflicts(conn, record, user_id)]
        plan.append((row, user_id, exists))
    if problems:
        raise ImportFailed(problems)

    created = updated = count = 0
    for row, user_id, exists in plan:
        previous = await queries.user_where(conn, "id", user_id) if exists else None
        record, assigned = _imported(row, user_id, previous, review_due)
        user = record.to_user()
        if exists:
            await conn.execute(update(users).where(users.c.id == user_id)
                               .values(**_user_values(record)))
            await conn.execute(delete(assignments).where(assignments.c.user_id == user_id))
            updated += 1
        else:
            await conn.execute(users.insert().values(id=user_id, created_at=now(),
                                                     **_user_values(record)))
            created += 1
        await set_accounts(conn, user_id, user.accounts)
        await _insert_assignments(conn, user_id, assigned)
        count += len(assigned)
    return ImportResult(created=created, updated=updated, assignments=count)


def _imported(row: CsvUser, user_id: str, previous: User | None,
              review_due: date | None) -> tuple[UserRecord, list[Assignment]]:
    """The user record a row writes (keeping what its columns leave out), and its
    assignments with their review dates (kept from the earlier version, else `review_due`)."""
    data = {**row.record.model_dump(), "id": user_id}
    if previous is not None:
        if "title" not in row.columns:
            data["title"] = previous.title
        if "accounts" not in row.columns:
            data["accounts"] = dict(previous.accounts)
    record = UserRecord.model_validate(data)
    kept = {a.id: a.review_due for a in previous.assignments} if previous else {}
    assigned = [a if a.review_due else replace(a, review_due=kept.get(a.id) or review_due)
                for a in record.to_user().assignments]
    return record, assigned


async def _import_target(conn: AsyncConnection, row: CsvUser) -> tuple[str, bool]:
    """The id a CSV user is written under, and whether that user exists already."""
    if row.user_id:
        found = await queries.user_where(conn, "id", row.user_id)
        return row.user_id, found is not None
    for column in ("personal_identity_number", "hsa_id"):
        value = getattr(row.record, column)
        if value:
            found = await queries.user_where(conn, column, value)
            if found is not None:
                return found.id, True
    return new_user_id(), False

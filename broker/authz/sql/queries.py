"""Reading users from the SQL schema; shared by the source and the admin CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..model import Assignment, Named, User
from .schema import assignments, user_accounts, users


def assignment_from_row(row: Row[Any]) -> Assignment:
    extra = json.loads(row.extra) if row.extra else {}
    if row.username:
        extra["username"] = row.username
    return Assignment(
        id=row.id,
        role=Named(row.role_code, row.role_name),
        unit=Named(row.unit_id, row.unit_name),
        organization=Named(row.organization_id, row.organization_name),
        clients=frozenset(row.clients.split()),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        extra=extra,
        review_due=row.review_due,
    )


def assignment_values(user_id: str, a: Assignment) -> dict[str, Any]:
    """Column values for one assignment (the inverse of `assignment_from_row`)."""
    extra = dict(a.extra)
    username = extra.pop("username", None)
    return {
        "user_id": user_id,
        "id": a.id,
        "role_code": a.role.id,
        "role_name": a.role.name,
        "unit_id": a.unit.id,
        "unit_name": a.unit.name,
        "organization_id": a.organization.id,
        "organization_name": a.organization.name,
        "clients": " ".join(sorted(a.clients)),
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "username": username,
        "extra": json.dumps(extra, ensure_ascii=False) if extra else None,
        "review_due": a.review_due,
    }


def user_from_row(row: Row[Any], assigned: Sequence[Assignment],
                  accounts: dict[str, str] | None = None) -> User:
    return User(
        id=row.id,
        personal_identity_number=row.personal_identity_number,
        hsa_id=row.hsa_id,
        given_name=row.given_name,
        family_name=row.family_name,
        email=row.email,
        active=bool(row.active),
        assignments=tuple(assigned),
        title=row.title,
        accounts=dict(accounts or {}),
    )


async def _with_assignments(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[User]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    by_user: dict[str, list[Assignment]] = {i: [] for i in ids}
    query = (
        select(assignments)
        .where(assignments.c.user_id.in_(ids))
        # NULLS placement spelled out: SQLite and PostgreSQL differ by default.
        .order_by(assignments.c.user_id, assignments.c.valid_from.asc().nulls_first(),
                  assignments.c.id)
    )
    for a in (await conn.execute(query)).all():
        by_user[a.user_id].append(assignment_from_row(a))
    accounts: dict[str, dict[str, str]] = {i: {} for i in ids}
    for acc in (await conn.execute(
            select(user_accounts).where(user_accounts.c.user_id.in_(ids))
            .order_by(user_accounts.c.user_id, user_accounts.c.system))).all():
        accounts[acc.user_id][acc.system] = acc.username
    return [user_from_row(r, by_user[r.id], accounts[r.id]) for r in rows]


async def user_where(conn: AsyncConnection, column: str, value: str) -> User | None:
    """The user whose `column` (id, personal_identity_number or hsa_id) equals `value`."""
    row = (await conn.execute(select(users).where(users.c[column] == value))).first()
    if row is None:
        return None
    return (await _with_assignments(conn, [row]))[0]


async def find_user(conn: AsyncConnection, pnr: str | None, hsa: str | None) -> User | None:
    """Personal number first, then HSA-id: the rule of `model.match_user`."""
    if pnr:
        user = await user_where(conn, "personal_identity_number", pnr)
        if user is not None:
            return user
    if hsa:
        return await user_where(conn, "hsa_id", hsa)
    return None


async def all_users(conn: AsyncConnection, *where: Any) -> list[User]:
    """Every user (or those matching the `where` conditions), by name."""
    order = (users.c.family_name.asc().nulls_last(), users.c.given_name.asc().nulls_last(),
             users.c.id)
    rows = (await conn.execute(select(users).where(*where).order_by(*order))).all()
    return await _with_assignments(conn, rows)

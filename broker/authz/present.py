"""How the admin CLI shows users to a person: tables, details, masked personal numbers."""

from __future__ import annotations

from datetime import date
from typing import Any

from ..identifiers import mask_personal_number
from .model import Assignment, User
from .records import user_to_record


def name(user: User) -> str:
    return " ".join(p for p in (user.given_name, user.family_name) if p) or "-"


def state(a: Assignment, today: date) -> str:
    if a.valid_from and today < a.valid_from:
        return "not yet valid"
    if a.valid_to and today > a.valid_to:
        return "expired"
    if a.review_due and today > a.review_due:
        return "ended at review"
    return "valid"


def masked_record(user: User) -> dict[str, Any]:
    record = user_to_record(user)
    if "personal_identity_number" in record:
        record["personal_identity_number"] = mask_personal_number(
            record["personal_identity_number"])
    return record


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def describe(user: User, today: date) -> str:
    lines = [
        f"User {user.id} ({'active' if user.active else 'DISABLED'})",
        f"  Personal identity number: {user.personal_identity_number or '-'}",
        f"  HSA-id:                   {user.hsa_id or '-'}",
        f"  Name:                     {name(user)}",
        f"  E-mail:                   {user.email or '-'}",
        f"  Title:                    {user.title or '-'}",
        f"  Accounts:                 "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(user.accounts.items())) or '-'}",
        f"  Assignments:              {len(user.assignments) or 'none'}",
    ]
    for a in user.assignments:
        period = f"{a.valid_from or '…'} – {a.valid_to or '…'}"
        lines += [
            f"    {a.id}  [{state(a, today)}]",
            f"      role:         {a.role.name} ({a.role.id})",
            f"      unit:         {a.unit.name} ({a.unit.id})",
            f"      organisation: {a.organization.name} ({a.organization.id})",
            f"      clients:      {', '.join(sorted(a.clients))}",
            f"      valid:        {period}",
        ]
        if a.review_due:
            lines.append(f"      review by:    {a.review_due}")
        if a.extra.get("username"):
            lines.append(f"      username:     {a.extra['username']}")
    return "\n".join(lines)

"""CSV import and export of users and assignments, for what a care provider's HR or staff
system can report.

One row per assignment; a user with several assignments has several rows that repeat the
user's columns, and a user without assignments has one row with the assignment columns
empty. The header row names the columns, in any order; unknown columns are an error, so a
misspelt header is not silently ignored. UTF-8 (a BOM, as Excel writes it, is fine).

=========================  ==================================================================
column                     meaning
=========================  ==================================================================
user_id                    stable user id (becomes `sub`); empty: the user is found by
                           personal number, then HSA-id, or created with a new random id
personal_identity_number   12 digits, YYYYMMDDNNNN (a hyphen is allowed); checked
hsa_id                     the person's HSA-id, e.g. SE2321000016-1234; checked
given_name, family_name    the person's name
email                      the work e-mail address
active                     yes/no, true/false, ja/nej, 1/0; empty means yes
title                      the person's function, e.g. Enhetschef
accounts                   user names in the care systems: system=name separated by ;
                           e.g. "lifecare=anna.a;treserva=ANAN01"
role_code, role_name       the function (role), e.g. sjukskoterska / Sjuksköterska
unit_id, unit_name         the unit, e.g. SE2321000016-ABCD / Hemsjukvården Norr
organization_id,           the organisation (care provider), e.g. 2120001234 / Exempel kommun
organization_name
clients                    the systems the assignment is for: client ids separated by ; or
                           spaces, e.g. "lifecare;mcss"
valid_from, valid_to       first and last day (YYYY-MM-DD, inclusive); empty: open-ended
username                   the person's user name in the care system for this assignment
assignment_id              optional; derived from user, role, unit and organisation if empty
review_due                 the review date (YYYY-MM-DD); empty keeps the stored one
=========================  ==================================================================

A row needs personal_identity_number or hsa_id. The assignment columns are all empty (a user
without assignments) or role, unit, organisation and clients are all given. A file without
a `title` or `accounts` column leaves those of existing users as they are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..validation import error_lines
from .model import User
from .records import AssignmentRecord, UserRecord

USER_COLUMNS = (
    "user_id",
    "personal_identity_number",
    "hsa_id",
    "given_name",
    "family_name",
    "email",
    "active",
    "title",
    "accounts",
)
ASSIGNMENT_COLUMNS = (
    "role_code",
    "role_name",
    "unit_id",
    "unit_name",
    "organization_id",
    "organization_name",
    "clients",
    "valid_from",
    "valid_to",
    "username",
    "assignment_id",
    "review_due",
)
COLUMNS = USER_COLUMNS + ASSIGNMENT_COLUMNS

_TRUE = {"", "yes", "y", "true", "1", "ja", "j"}
_FALSE = {"no", "n", "false", "0", "nej"}
# A placeholder id while a row is validated; the real one is decided at import.
_PENDING = "pending"


class CsvError(Exception):
    """The file cannot be imported; `problems` lists every one as 'line N: ...'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class CsvUser:
    """One user from the file: validated columns, assignments, and where they came from."""

    user_id: str | None
    record: UserRecord
    lines: list[int] = field(default_factory=list)
    # The file's header: which columns it has (a missing one may keep a stored value).
    columns: frozenset[str] = frozenset(COLUMNS)

    @property
    def line(self) -> int:
        return self.lines[0]


def _column(loc: tuple[Any, ...], assignment: bool) -> str:
    if assignment:
        if not loc:
            return ""
        if loc[0] == "id":
            return "assignment_id"
        if loc[0] in ("role", "unit", "organization") and len(loc) > 1:
            return f"{loc[0]}_{loc[1]}"
        return str(loc[0])
    if not loc:
        return ""
    return "user_id" if loc[0] == "id" else str(loc[0])


def _problems(exc: ValidationError, line: int, assignment: bool) -> list[str]:
    out = []
    for loc, msg in error_lines(exc):
        if msg == "required key is missing":
            msg = "is required (the cell is empty)"
        column = _column(loc, assignment)
        out.append(f"line {line}: {column}: {msg}" if column else f"line {line}: {msg}")
    return out


def _row_user(row: dict[str, str], line: int) -> tuple[UserRecord | None, list[str]]:
    active = row.get("active", "").strip().lower()
    if active not in _TRUE | _FALSE:
        return None, [f"line {line}: active: write yes or no"]
    data: dict[str, Any] = {
        key: row[key] for key in ("personal_identity_number", "hsa_id", "given_name",
                                  "family_name", "email", "title")
        if row.get(key, "").strip()
    }
    data["id"] = row.get("user_id", "").strip() or _PENDING
    data["active"] = active in _TRUE
    accounts, problem = parse_accounts(row.get("accounts", ""))
    if problem:
        return None, [f"line {line}: accounts: {problem}"]
    data["accounts"] = accounts
    try:
        return UserRecord.model_validate(data), []
    except ValidationError as exc:
        return None, _problems(exc, line, assignment=False)


def parse_accounts(cell: str) -> tuple[dict[str, str], str | None]:
    """`lifecare=anna.a;mcss=AANDE01` as a mapping, or a problem in words."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in cell.split(";")):
        if not part:
            continue
        system, sep, name = part.partition("=")
        if not sep or not system.strip() or not name.strip():
            return {}, "write system=user name, separated by ;"
        if system.strip() in out:
            return {}, f"the system {system.strip()} appears twice"
        out[system.strip()] = name.strip()
    return out, None


def format_accounts(accounts: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(accounts.items()))


def _row_assignment(row: dict[str, str], line: int) -> tuple[AssignmentRecord | None, list[str]]:
    def cells(**names: str) -> dict[str, str]:
        return {key: row[col].strip() for key, col in names.items() if row.get(col, "").strip()}

    data: dict[str, Any] = {
        **cells(id="assignment_id", valid_from="valid_from", valid_to="valid_to",
                username="username", review_due="review_due"),
        "role": cells(code="role_code", name="role_name"),
        "unit": cells(id="unit_id", name="unit_name"),
        "organization": cells(id="organization_id", name="organization_name"),
        "clients": [c for c in re.split(r"[;,\s]+", row.get("clients", "")) if c],
    }
    try:
        return AssignmentRecord.model_validate(data), []
    except ValidationError as exc:
        return None, _problems(exc, line, assignment=True)


def _group_key(record: UserRecord, user_id: str | None) -> tuple[str, str]:
    if user_id:
        return ("id", user_id)
    if record.personal_identity_number:
        return ("pnr", record.personal_identity_number)
    return ("hsa", record.hsa_id or "")


def parse_csv(text: str, delimiter: str = ",") -> list[CsvUser]:
    """Validate the whole file; raises CsvError naming every bad row by its line number."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvError(["line 1: the file is empty (it needs a header row)"]) from None
    problems = _header_problems(header)
    if problems:
        raise CsvError(problems)

    users: dict[tuple[str, str], CsvUser] = {}
    seen: dict[tuple[str, str], int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                problems.append(f"line {line}: {len(cells)} cells, the header has {len(header)}")
                continue
            problems.extend(_read_row(dict(zip(header, cells, strict=True)), line, users, seen))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV ({exc})")
    problems.extend(_cross_user_problems(list(users.values())))
    if problems:
        raise CsvError(problems)
    if not users:
        raise CsvError(["the file has a header but no rows"])
    return list(users.values())


def _header_problems(header: list[str]) -> list[str]:
    problems = [f"line 1: unknown column {h!r}" for h in header if h not in COLUMNS]
    for h in {h for h in header if header.count(h) > 1}:
        problems.append(f"line 1: column {h!r} appears twice")
    if not {"personal_identity_number", "hsa_id", "user_id"} & set(header):
        problems.append("line 1: a personal_identity_number or hsa_id column is needed")
    return problems


def _read_row(
    row: dict[str, str],
    line: int,
    users: dict[tuple[str, str], CsvUser],
    seen: dict[tuple[str, str], int],
) -> list[str]:
    record, problems = _row_user(row, line)
    has_assignment = any(row.get(c, "").strip() for c in ASSIGNMENT_COLUMNS)
    assignment = None
    if has_assignment:
        assignment, more = _row_assignment(row, line)
        problems += more
    if record is None or problems:
        return problems
    user_id = row.get("user_id", "").strip() or None
    key = _group_key(record, user_id)
    current = users.get(key)
    if current is None:
        current = users[key] = CsvUser(user_id, record, [line], frozenset(row))
    elif current.record.model_dump(exclude={"assignments"}) != record.model_dump(
        exclude={"assignments"}
    ):
        return [f"line {line}: the user's columns differ from line {current.line} "
                "for the same user"]
    else:
        current.lines.append(line)
    if assignment is not None:
        akey = (current.user_id or repr(key), assignment.id or
                f"{assignment.role.code}\x1f{assignment.unit.id}\x1f{assignment.organization.id}")
        if akey in seen:
            return [f"line {line}: the same assignment as line {seen[akey]}"]
        seen[akey] = line
        current.record = current.record.model_copy(
            update={"assignments": [*current.record.assignments, assignment]}
        )
    return []


def _cross_user_problems(users: list[CsvUser]) -> list[str]:
    problems = []
    owner: dict[tuple[str, str], int] = {}
    for u in users:
        for system, name in u.record.accounts.items():
            if (system, name) in owner:
                problems.append(f"line {u.line}: accounts: the {system} user name is the same "
                                f"as another user's on line {owner[(system, name)]}")
            else:
                owner[(system, name)] = u.line
    for key in ("personal_identity_number", "hsa_id"):
        first: dict[str, int] = {}
        for u in users:
            value = getattr(u.record, key)
            if value is None:
                continue
            if value in first:
                problems.append(f"line {u.line}: {key}: the same as another user's on line "
                                f"{first[value]}")
            else:
                first[value] = u.line
    return problems


def write_csv(users: Iterable[User], delimiter: str = ",") -> str:
    """The export: every column, one row per assignment, readable by `parse_csv`."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(COLUMNS)
    for user in users:
        base = [
            user.id,
            user.personal_identity_number or "",
            user.hsa_id or "",
            user.given_name or "",
            user.family_name or "",
            user.email or "",
            "yes" if user.active else "no",
            user.title or "",
            format_accounts(user.accounts),
        ]
        if not user.assignments:
            writer.writerow(base + [""] * len(ASSIGNMENT_COLUMNS))
        for a in user.assignments:
            writer.writerow(
                [*base, a.role.id, a.role.name, a.unit.id, a.unit.name, a.organization.id, a.organization.name, ";".join(sorted(a.clients)), a.valid_from.isoformat() if a.valid_from else "", a.valid_to.isoformat() if a.valid_to else "", str(a.extra.get("username") or ""), a.id, a.review_due.isoformat() if a.review_due else ""]
            )
    return out.getvalue()

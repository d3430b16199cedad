"""Swedish identifiers: personal identity numbers, coordination numbers and HSA-ids.

Validated before any upstream call or database write, so that a typo is a clear message
and never a cost (a BankID order) or a half-written record.
"""

from __future__ import annotations

import re
from datetime import date

_PNR = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{4})$")
_HSA = re.compile(r"^SE\d{10}-[A-Za-z0-9]{1,31}$")


class IdentifierError(ValueError):
    """A personal number or HSA-id that is not well formed; the message says why."""


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def check_personal_number(value: str, *, today: date | None = None) -> str:
    """Return the 12-digit form (YYYYMMDDNNNN) or raise IdentifierError.

    Accepts a hyphen or plus between date and serial. Coordination numbers (day + 60)
    pass too; the checksum is over the last ten digits, as on the card.
    """
    raw = value.strip().replace("-", "").replace("+", "")
    m = _PNR.match(raw)
    if not m:
        raise IdentifierError("a personal identity number has 12 digits: YYYYMMDDNNNN")
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if day > 60:
        day -= 60
    try:
        born = date(year, month, day)
    except ValueError:
        raise IdentifierError("the personal identity number does not start with a real date") from None
    if born > (today or date.today()) or year < 1850:
        raise IdentifierError("the personal identity number has a birth date out of range")
    if not luhn_ok(raw[2:]):
        raise IdentifierError("the personal identity number's check digit is wrong")
    return raw


def is_coordination_number(value: str) -> bool:
    return len(value) == 12 and value.isdigit() and int(value[6:8]) > 60


def check_hsa_id(value: str) -> str:
    """HSA-ids are `SE` + the 10-digit organisation number + `-` + a local part."""
    v = value.strip()
    if not _HSA.match(v):
        raise IdentifierError("an HSA-id looks like SE2321000016-ABC1 (SE, 10 digits, '-', letters or digits)")
    return v.upper()


def mask_personal_number(value: str | None) -> str | None:
    """`19900101****` style, for ordinary logs and admin listings; the audit log has it whole."""
    if not value:
        return value
    return value[:8] + "****" if len(value) >= 12 else "****"

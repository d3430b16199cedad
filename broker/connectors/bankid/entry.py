"""The personal-number field as people fill it in: 10 or 12 digits, with or without `-`/`+`.

People write `900101-2385` (as on cards and forms) at least as often as `19900101-2385`.
The 10-digit form leaves out the century; Skatteverket's rule supplies it: `-` (or no
separator) means under 100 years old, `+` means 100 or older, counted from today.
Errors are message keys, so the page says what is wrong in the person's language.
"""

from __future__ import annotations

import re
from datetime import date

from ...identifiers import IdentifierError, check_personal_number, luhn_ok

_ENTRY = re.compile(r"^(\d{2})?(\d{6})([-+]?)(\d{4})$")


class EntryError(ValueError):
    """What is wrong with the entered number, as a key of the page texts."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def parse_personal_number(value: str, *, today: date | None = None) -> str:
    """The 12-digit form (YYYYMMDDNNNN) of what was typed, or EntryError.

    Spaces are ignored; the checks are those of `identifiers.check_personal_number`.
    """
    today = today or date.today()
    text = "".join(value.split())
    m = _ENTRY.match(text)
    if not m:
        raise EntryError("bankid_pnr_format")
    century, yymmdd, separator, serial = m.groups()
    if century is None:
        century = _century(yymmdd, plus=separator == "+", today=today)
    digits = century + yymmdd + serial
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]) % 60)
    except ValueError:
        raise EntryError("bankid_pnr_date") from None
    if not luhn_ok(digits[2:]):
        raise EntryError("bankid_pnr_check_digit")
    try:
        return check_personal_number(digits, today=today)
    except IdentifierError:
        raise EntryError("bankid_pnr_date") from None


def _century(yymmdd: str, *, plus: bool, today: date) -> str:
    """The century that makes the person under 100 (`-`) or 100 or older (`+`) today."""
    yy = int(yymmdd[:2])
    year = today.year - (today.year - yy) % 100  # the latest year ending in yy, <= this year
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6]) % 60  # coordination numbers: day + 60
    if year == today.year and (month, day) > (today.month, today.day):
        year -= 100  # born later this year: not yet, so a century ago
    if plus:
        year -= 100
    return str(year // 100)

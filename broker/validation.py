"""Readable messages from pydantic validation errors, shared by every file we validate
(the config, the authorization file, CSV imports, HTTP answers).

The input is never echoed: it may be a secret or a personal identity number.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def error_lines(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) per error, without echoing the input (it may be a personal number)."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        out.append((loc, msg))
    return out


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"

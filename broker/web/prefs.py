"""What this browser chose before, in a first-party cookie: the person's shortcuts.

- the last login method that worked (a SITHS card user goes straight to the card);
- per client, the role and unit picked last (preselected in the picker - the person still
  confirms it, so a stale or forged value can only preselect one of their own choices);
- the client of the latest login, so that a page whose login is gone (expired, finished,
  logged out) can still offer the way back to that service.

Nothing in it is personal data or a secret: the assignment is kept as a short digest, and
every value is checked against what the page may offer before it is used.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..security import Cookies

PREFS_COOKIE = "broker_prefs"
PREFS_MAX_AGE = 365 * 86400
MAX_CLIENTS = 8  # roles remembered; the oldest is forgotten first
_MAX_COOKIE = 1024
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


@dataclass
class Preferences:
    method: str | None = None
    client: str | None = None
    roles: dict[str, str] = field(default_factory=dict)  # client_id -> assignment digest

    def to_cookie(self) -> str:
        raw = orjson.dumps({"m": self.method, "c": self.client, "r": self.roles})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def snapshot(self) -> tuple[object, ...]:
        """What the cookie would hold, cheaply (the order of `roles` is part of it)."""
        return self.method, self.client, tuple(self.roles.items())

    @classmethod
    def from_cookie(cls, value: str | None) -> Preferences:
        """Whatever the browser sent; anything malformed is simply no preference."""
        if not value or len(value) > _MAX_COOKIE:
            return cls()
        try:
            data = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        roles = data.get("r") if isinstance(data.get("r"), dict) else {}
        return cls(method=_name(data.get("m")), client=_name(data.get("c")),
                   roles={k: v for k, v in roles.items() if _name(k) and _name(v)})

    def remember_role(self, client_id: str, assignment: Mapping[str, Any]) -> None:
        self.roles.pop(client_id, None)
        self.roles[client_id] = assignment_digest(assignment)
        while len(self.roles) > MAX_CLIENTS:
            self.roles.pop(next(iter(self.roles)))


def assignment_digest(assignment: Mapping[str, Any]) -> str:
    """Stable across sources that renumber assignments: role, unit and organisation."""
    try:
        key = "|".join(str(assignment[k]["id"]) for k in ("role", "unit", "organization"))
    except (KeyError, TypeError):
        key = str(assignment.get("id"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _name(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 128 and set(value) <= _NAME_CHARS:
        return value
    return None


class PreferenceCookie:
    """Reads and writes `Preferences` through the broker's cookie rules (`__Host-`,
    Secure on https, HttpOnly: the pages' scripts never need it)."""

    def __init__(self, cookies: Cookies) -> None:
        self.cookies = cookies

    def read(self, request: Request) -> Preferences:
        return Preferences.from_cookie(self.cookies.get(request, PREFS_COOKIE))

    def write(self, response: Response, prefs: Preferences) -> None:
        self.cookies.set(response, PREFS_COOKIE, prefs.to_cookie(), max_age=PREFS_MAX_AGE)

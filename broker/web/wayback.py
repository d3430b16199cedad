"""The way back to the service from a page whose login is gone (no dead ends).

An expired or finished login, a logged-out page or an error page can always offer the
service the person came from: its `initiate_login_uri` (a fresh login), else its
`client_uri` (its front page). The client is the page's own login's when it has one,
else the one this browser's latest login was for (the preference cookie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .prefs import PreferenceCookie


@dataclass(frozen=True)
class WayBack:
    url: str
    client_name: str
    # True: the link starts a new login at the service; False: its front page.
    fresh_login: bool


class WayBackLinks:
    def __init__(self, clients: Any, prefs: PreferenceCookie) -> None:
        self.clients = clients
        self.prefs = prefs

    def __call__(self, request: Request, client_id: str | None = None) -> WayBack | None:
        client_id = client_id or self.prefs.read(request).client
        client = self.clients.get(client_id) if client_id else None
        if client is None:
            return None
        s = client.settings
        if s.initiate_login_uri:
            return WayBack(s.initiate_login_uri, s.client_name, True)
        if s.client_uri:
            return WayBack(s.client_uri, s.client_name, False)
        return None

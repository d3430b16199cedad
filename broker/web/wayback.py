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
        """`client_id`: the page's own login, still alive - leaving it is going back to the
        service's page. Without one the login is gone, and a fresh one is the way on."""
        live = client_id is not None
        client_id = client_id or self.prefs.read(request).client
        client = self.clients.get(client_id) if client_id else None
        if client is None:
            return None
        s = client.settings
        links = [(s.initiate_login_uri, True), (s.client_uri, False)]
        for url, fresh in (reversed(links) if live else links):
            if url:
                return WayBack(url, s.client_name, fresh)
        return None

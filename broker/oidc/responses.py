"""Answers to the relying party through the browser: redirects with a code or an error,
by query or by form_post (RFC 9207 `iss` included in both)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..context import Broker


def add_query(uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


def to_client(broker: Broker, request: Request, redirect_uri: str, params: list[tuple[str, str]],
              response_mode: str | None) -> Response:
    params = [(k, v) for k, v in params if v is not None]
    if not any(k == "iss" for k, _ in params):
        params.append(("iss", broker.issuer))
    if response_mode == "form_post":
        return broker.pages.render(request, "form_post.html",
                                   {"action": redirect_uri, "params": params, "hide_switch": True})
    return RedirectResponse(add_query(redirect_uri, params), status_code=303)


def error_to_client(broker: Broker, request: Request, redirect_uri: str, error: str,
                    description: str | None, state: str | None,
                    response_mode: str | None) -> Response:
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state:
        params.append(("state", state))
    return to_client(broker, request, redirect_uri, params, response_mode)


def location_params(location: str) -> tuple[str, list[tuple[str, str]]]:
    """Split Authlib's redirect into the bare redirect URI and the params it added."""
    parts = urlsplit(location)
    return urlunsplit(parts._replace(query="")), parse_qsl(parts.query, keep_blank_values=True)

"""Renders the pages a person sees, in their language, with the shared layout."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..security import Cookies
from .messages import LOCALES, Texts

HERE = Path(__file__).parent
LANG_COOKIE = "broker_lang"
LANG_MAX_AGE = 365 * 86400
_SLASHES = re.compile(r"/{2,}")


def local_path(path: str) -> str:
    """The request's path as a link on this site: percent-encoded (a backslash is %5C, which
    browsers would otherwise read as '/') with runs of '/' made one, so that it never reads
    as a protocol-relative `//host/...` link, whatever path the request came with."""
    return _SLASHES.sub("/", "/" + quote(path, safe="/:@!$&'()*+,;=-._~"))


def pick_locale(request: Request, ui_locales: str | None = None) -> str:
    """`?lang=` (the switch), the cookie the switch set, the RP's `ui_locales`,
    Accept-Language; sv. The person's own choice outranks the RP's hint: otherwise the next
    page of a login whose RP asked for Swedish would switch back from the English chosen."""
    lang = request.query_params.get("lang")
    if lang in LOCALES:
        return lang
    # __Host-broker_lang on https; the plain name on a localhost demo (and from before).
    cookie = request.cookies.get(f"__Host-{LANG_COOKIE}") or request.cookies.get(LANG_COOKIE)
    if cookie in LOCALES:
        return cookie
    for tag in (ui_locales or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    for part in request.headers.get("accept-language", "").split(","):
        base = part.split(";")[0].strip().split("-")[0].lower()
        if base in LOCALES:
            return base
    return "sv"


class Pages:
    """`way_back` (see wayback.py) gives every page the link back to the service."""

    def __init__(self, extra_template_dirs: list[Path] | None = None, *,
                 cookies: Cookies | None = None,
                 way_back: Callable[[Request, str | None], Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """`cookies` sets the language cookie like every other (`__Host-`, Secure on https)."""
        self.cookies = cookies or Cookies(secure=True)
        self.texts = Texts()
        dirs = [HERE / "templates", *(extra_template_dirs or [])]
        self.env = Environment(
            loader=FileSystemLoader([str(d) for d in dirs]),
            autoescape=select_autoescape(["html"]),
            auto_reload=False,
        )
        self.way_back = way_back
        self.clock = clock

    def add(self, *, texts: Mapping[str, Mapping[str, str]] | None = None,
            templates: Path | None = None) -> None:
        """What a part of the app (a connector, the admin app) brings: its texts and its
        template directory. Called while the app is built, never while it serves."""
        if texts:
            self.texts.add(texts)
        if templates is not None:
            self.env.loader.searchpath.append(str(templates))  # type: ignore[union-attr]

    def translate(self, locale: str, key: str, **values: Any) -> str:
        return self.texts.translate(locale, key, **values)

    def render(self, request: Request, template: str, context: dict[str, Any],
               status_code: int = 200, locale: str | None = None) -> HTMLResponse:
        locale = locale or pick_locale(request, context.get("ui_locales"))
        other = "en" if locale == "sv" else "sv"
        query = dict(request.query_params)
        query["lang"] = other
        # A page answering a POST switches language through the GET page of the same
        # state (`switch_path`, built by us): the POST's own URL would answer 405.
        path = context.get("switch_path") or local_path(request.scope["path"])
        if context.get("switch_path"):
            query = {"lang": other}
        ctx = {
            "lang": locale,
            "t": lambda key, **kw: self.texts.translate(locale, key, **kw),
            "switch_url": f"{path}?{urlencode(query)}",
            **context,
        }
        if "way_back" not in ctx and self.way_back is not None:
            ctx["way_back"] = self.way_back(request, context.get("client_id"))
        if context.get("expires_at"):
            # Seconds left of the login, for the warning before it expires (WCAG 2.2.1).
            ctx["expires_in"] = max(0, int(context["expires_at"] - self.clock()))
        body = self.env.get_template(template).render(ctx)
        response = HTMLResponse(body, status_code=status_code)
        if request.query_params.get("lang") in LOCALES:
            self.cookies.set(response, LANG_COOKIE, locale, max_age=LANG_MAX_AGE)
        return response

    def error(self, request: Request, key: str, status_code: int = 400, **values: Any) -> HTMLResponse:
        return self.render(request, "error.html", {"message_key": key, "values": values},
                           status_code=status_code)

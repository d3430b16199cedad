"""The admin pages: server-rendered, Swedish and English, no JavaScript.

Every page asks `_staff` who is logged in: the admin session, then the authorization source
again (a withdrawn manager loses access at the next click, not at the session's end).
Every POST carries the session's CSRF token (`broker.security.CsrfTokens`); a change
redirects to a page (303), so a reload never repeats it. What a person may see or change
is decided in `rules.py`, what a change does in `service.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..authz import present
from ..authz.model import Assignment, AuthorizationSourceError, User
from ..authz.records import AssignmentRecord
from ..authz.sql.access import GrantRecord
from ..authz.sql.admin import AdminError
from ..authz.sql.schema import SchemaError
from ..identifiers import mask_personal_number
from ..validation import error_lines
from ..web.pages import pick_locale
from .login import AdminLogin, AdminSession, LoginError
from .rules import Forbidden, OutsideOrganization, Staff, staff_for
from .service import Actor, AdminService, ReadOnly
from .settings import AdminSettings

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
SourceKind = Literal["sql", "file", "http"]

# Notices a redirect may ask a page to show (`?done=`): keys only, never text from the URL.
DONE = {"request_sent": "admin_request_sent", "approved": "admin_approved",
        "rejected": "admin_rejected", "saved": "admin_saved", "reviews": "admin_reviews_saved"}


class NeedLogin(Exception):
    """No admin session: GET pages send the browser to log in, POSTs are refused."""


class PageError(Exception):
    def __init__(self, key: str, status_code: int, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.status_code = status_code
        self.values = values


@dataclass(frozen=True)
class Visit:
    """One request of a logged-in administrator."""

    cookie: str
    session: AdminSession
    staff: Staff
    locale: str

    @property
    def actor(self) -> Actor:
        return Actor(self.staff.user_id, self.staff.name, self.staff.email, self.locale,
                     self.staff.assignment_id)


class AdminPages:
    def __init__(self, broker: Any, settings: AdminSettings, login: AdminLogin,
                 service: AdminService, source_kind: SourceKind,
                 listed: Callable[[], tuple[User, ...]] | None = None) -> None:
        self.broker = broker
        self.settings = settings
        self.login = login
        self.service = service
        self.source_kind = source_kind
        self.listed = listed  # the file source's users (read-only listing)

    def routes(self) -> list[BaseRoute]:
        from pathlib import Path

        here = Path(__file__).parent
        page = self._page
        return [Mount("/admin", routes=[
            Route("/", page(self.home), methods=["GET"]),
            Route("/login", self.start_login, methods=["GET"]),
            Route("/callback", self.callback, methods=["GET"]),
            Route("/logout", page(self.logout), methods=["POST"]),
            Route("/users", page(self.users), methods=["GET"]),
            Route("/users/{user_id}", page(self.user), methods=["GET"]),
            Route("/users/{user_id}", page(self.edit_user), methods=["POST"]),
            Route("/users/{user_id}/assignments", page(self.add_assignment), methods=["POST"]),
            Route("/users/{user_id}/assignments/{assignment_id}/end", page(self.end),
                  methods=["POST"]),
            Route("/requests", page(self.requests), methods=["GET"]),
            Route("/requests", page(self.create_request), methods=["POST"]),
            Route("/requests/new", page(self.request_form), methods=["GET"]),
            Route("/requests/{request_id}", page(self.request_page), methods=["GET"]),
            Route("/requests/{request_id}/approve", page(self.approve), methods=["POST"]),
            Route("/requests/{request_id}/reject", page(self.reject), methods=["POST"]),
            Route("/reviews", page(self.reviews), methods=["GET"]),
            Route("/reviews", page(self.save_reviews), methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(here / "static")), name="admin_static"),
        ])]

    # -- plumbing -----------------------------------------------------------------------
    def _render(self, request: Request, template: str, context: dict[str, Any],
                status_code: int = 200, visit: Visit | None = None) -> Response:
        locale = visit.locale if visit else pick_locale(request)

        def t(key: str, **values: Any) -> str:
            return self.broker.pages.translate(locale, "admin_title" if key == "title" else key,
                                               **values)

        ctx = {"t": t, "visit": visit, "staff": visit.staff if visit else None,
               "csrf": self.broker.csrf.token(visit.session.binding) if visit else "",
               "writable": self.service.writable, "source_kind": self.source_kind,
               "systems": self.settings.systems, "mask": mask_personal_number,
               "today": self.service.today(), "state_of": _state, **context}
        done = request.query_params.get("done")
        if done in DONE and "notice" not in ctx:
            ctx["notice"] = t(DONE[done], confirmed=request.query_params.get("c", "0"),
                              ended=request.query_params.get("e", "0"))
        if request.query_params.get("mail") == "failed":
            ctx["mail_failed"] = True
        return self.broker.pages.render(request, template, ctx, status_code, locale=locale)

    def _page(self, handler: Callable[[Request, Visit], Awaitable[Response]]) -> Handler:
        async def run(request: Request) -> Response:
            visit: Visit | None = None
            try:
                visit = await self._visit(request)
                if request.method == "POST":
                    form = await request.form()
                    if not self.broker.csrf.valid(visit.session.binding, form.get("csrf")):
                        raise PageError("error_csrf", 403)
                return await handler(request, visit)
            except NeedLogin:
                if request.method != "GET":
                    return self._render(request, "admin_message.html",
                                        {"message_key": "admin_error_login_state",
                                         "login_link": True}, 403)
                query = urlencode({"next": request.url.path})
                return RedirectResponse(f"/admin/login?{query}", status_code=303)
            except Forbidden:
                return self._render(request, "admin_message.html",
                                    {"title_key": "admin_forbidden_title",
                                     "message_key": "admin_forbidden"}, 403, visit)
            except ReadOnly:
                return self._render(request, "admin_message.html",
                                    {"title_key": "admin_readonly_title",
                                     "message_key": "admin_readonly"}, 409, visit)
            except AdminError as exc:
                return self._render(request, "admin_message.html",
                                    {"message_key": "admin_conflict",
                                     "values": {"detail": str(exc)}}, 409, visit)
            except PageError as exc:
                return self._render(request, "admin_message.html",
                                    {"message_key": exc.key, "values": exc.values},
                                    exc.status_code, visit)
            except (AuthorizationSourceError, SQLAlchemyError, SchemaError, OSError,
                    TimeoutError) as exc:
                # An outage: retryable, and nothing was changed (the transaction rolled back).
                log.error("admin: the authorization source failed: %s", type(exc).__name__)
                return self._render(request, "admin_message.html",
                                    {"message_key": "error_unavailable"}, 503, visit)

        return run

    async def _visit(self, request: Request) -> Visit:
        loaded = await self.login.load(request)
        if loaded is None:
            raise NeedLogin
        cookie, session = loaded
        user = await self.broker.source.get_user(session.user_id)
        staff = staff_for(user, session.assignment_id, self.settings, self.service.today())
        if staff is None:
            await self.login.end(cookie)
            raise PageError("admin_error_no_rights", 403)
        await self.login.save(cookie, session)  # the idle timeout starts again
        return Visit(cookie, session, staff, pick_locale(request))

    async def _form(self, request: Request) -> dict[str, Any]:
        form = await request.form()
        out: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            out[key] = values if key == "clients" else (values[0].strip() if values else "")
        return out

    def _go(self, path: str, **query: str) -> Response:
        return RedirectResponse(f"/admin{path}" + (f"?{urlencode(query)}" if query else ""),
                                status_code=303)

    async def _visible_user(self, visit: Visit, user_id: str) -> User:
        if self.service.writable:
            user = await self.service.user(user_id)
        else:
            user = await self.broker.source.get_user(user_id)
        return visit.staff.require_sees(user)

    # -- login --------------------------------------------------------------------------
    async def start_login(self, request: Request) -> Response:
        return await self.login.start(request, pick_locale(request),
                                      request.query_params.get("next") or "/admin/")

    async def callback(self, request: Request) -> Response:
        try:
            value, _, next_path = await self.login.finish(request)
        except LoginError as exc:
            return self._render(request, "admin_message.html",
                                {"message_key": exc.key, "login_link": True}, exc.status_code)
        response = RedirectResponse(next_path, status_code=303)
        self.login.set_cookie(response, value)
        return response

    async def logout(self, request: Request, visit: Visit) -> Response:
        await self.login.end(visit.cookie)
        response = RedirectResponse(self.login.logout_url(visit.session), status_code=303)
        self.login.clear_cookie(response)
        return response

    # -- pages --------------------------------------------------------------------------
    async def home(self, request: Request, visit: Visit) -> Response:
        org = None if visit.staff.is_it else visit.staff.organization.id
        context: dict[str, Any] = {"pending": [], "overdue": [], "due": []}
        if self.service.writable:
            context["pending"] = await self.service.requests("pending", org)
            context["due"] = await self.service.to_review(org)
            context["overdue"] = await self.service.overdue(org)
        context["days"] = self.settings.review.remind_days
        return self._render(request, "admin_home.html", context, visit=visit)

    async def users(self, request: Request, visit: Visit) -> Response:
        staff = visit.staff
        listed: list[User] | None
        if self.service.writable:
            listed = await self.service.users(None if staff.is_it else staff.organization.id)
        elif self.listed is not None:
            listed = [u for u in self.listed() if staff.sees(u)]
        else:
            listed = None
        return self._render(request, "admin_users.html", {"users": listed}, visit=visit)

    async def user(self, request: Request, visit: Visit) -> Response:
        user = await self._visible_user(visit, request.path_params["user_id"])
        shown = [a for a in user.assignments if visit.staff.sees_assignment(a)]
        return self._render(request, "admin_user.html",
                            {"user": user, "assignments": shown, "errors": {}}, visit=visit)

    async def edit_user(self, request: Request, visit: Visit) -> Response:
        visit.staff.require_it()
        user = await self._visible_user(visit, request.path_params["user_id"])
        form = await self._form(request)
        changes: dict[str, Any] = {
            key: form.get(key) or None
            for key in ("given_name", "family_name", "email", "title")}
        changes["active"] = form.get("active") == "yes"
        changes["accounts"] = _accounts(form, self.settings.systems)
        try:
            await self.service.update_user(visit.actor, user.id, changes)
        except ValidationError as exc:
            return self._render(request, "admin_user.html", {
                "user": user, "assignments": user.assignments, "errors": _errors(exc)},
                400, visit)
        return self._go(f"/users/{user.id}", done="saved")

    async def add_assignment(self, request: Request, visit: Visit) -> Response:
        visit.staff.require_it()
        user = await self._visible_user(visit, request.path_params["user_id"])
        form = await self._form(request)
        data = {
            "role": {"code": form.get("role_code"), "name": form.get("role_name")},
            "unit": {"id": form.get("unit_id"), "name": form.get("unit_name")},
            "organization": {"id": form.get("organization_id"),
                             "name": form.get("organization_name")},
            "clients": [c.strip() for c in str(form.get("client_list", "")).split(",")
                        if c.strip()],
            "valid_to": form.get("valid_to") or None,
        }
        try:
            record = AssignmentRecord.model_validate(data)
        except ValidationError as exc:
            return self._render(request, "admin_user.html", {
                "user": user, "assignments": user.assignments, "errors": _errors(exc)},
                400, visit)
        await self.service.add_assignment(visit.actor, user.id, record)
        return self._go(f"/users/{user.id}", done="saved")

    async def end(self, request: Request, visit: Visit) -> Response:
        staff = visit.staff
        user = await self._visible_user(visit, request.path_params["user_id"])
        target = _assignment(user, request.path_params["assignment_id"])
        if target is None or not staff.sees_assignment(target):
            raise Forbidden("not an assignment of this organisation")
        if staff.is_it:
            await self.service.end_assignment(visit.actor, user.id, target.id)
            return self._go(f"/users/{user.id}", done="saved")
        outcome = await self.service.request_end(visit.actor, staff.organization.id, user.id,
                                                 target.id)
        return self._go(f"/requests/{outcome.value.id}", done="request_sent",
                        **({"mail": "failed"} if outcome.mail_failed else {}))

    async def request_form(self, request: Request, visit: Visit) -> Response:
        staff = visit.staff
        if staff.is_it:
            raise Forbidden("municipal IT changes users directly")
        if not self.service.writable:
            raise ReadOnly
        user = None
        if request.query_params.get("user"):
            user = await self._visible_user(visit, request.query_params["user"])
        return self._render(request, "admin_request_form.html",
                            self._form_context(staff, user, {}, {}), visit=visit)

    def _form_context(self, staff: Staff, user: User | None, values: dict[str, Any],
                      errors: dict[str, str]) -> dict[str, Any]:
        org = self.settings.organization(staff.organization.id)
        if org is None:
            raise PageError("admin_error_no_org", 409)
        return {"user": user, "org": org, "roles": self.settings.requestable_roles,
                "values": values, "errors": errors}

    async def create_request(self, request: Request, visit: Visit) -> Response:
        staff = visit.staff
        if staff.is_it:
            raise Forbidden("municipal IT changes users directly")
        form = await self._form(request)
        user = None
        if form.get("user_id"):
            # Asking for someone of another organisation: refused before anything is read
            # into the request (and the answer does not tell whether the person exists).
            user = await self._visible_user(visit, str(form["user_id"]))
        grant, errors = self._requested_grant(form, user)
        if errors or grant is None:
            return self._render(request, "admin_request_form.html",
                                self._form_context(staff, user, form, errors), 400, visit)
        try:
            outcome = await self.service.request_grant(visit.actor, staff.organization.id,
                                                       grant)
        except OutsideOrganization:
            raise Forbidden("more than the organisation owns") from None
        return self._go(f"/requests/{outcome.value.id}", done="request_sent",
                        **({"mail": "failed"} if outcome.mail_failed else {}))

    def _requested_grant(self, form: dict[str, Any], user: User | None,
                         ) -> tuple[GrantRecord | None, dict[str, str]]:
        """The grant the form asks for, or the errors to show (field -> message key)."""
        data: dict[str, Any] = {
            key: form.get(key) or None
            for key in ("personal_identity_number", "hsa_id", "given_name", "family_name",
                        "email", "title", "role_code", "unit_id", "valid_to")}
        data["user_id"] = user.id if user else None
        data["clients"] = form.get("clients") or []
        data["accounts"] = _accounts(form, self.settings.systems)
        if user is not None:
            for key in ("personal_identity_number", "hsa_id", "given_name", "family_name"):
                data[key] = None  # the person is known: their identifiers are not requested
        try:
            grant = GrantRecord.model_validate({k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            return None, _errors(exc)
        if grant.valid_to and grant.valid_to < self.service.today():
            return grant, {"valid_to": "valid_to"}
        return grant, {}

    async def requests(self, request: Request, visit: Visit) -> Response:
        org = None if visit.staff.is_it else visit.staff.organization.id
        listed = await self.service.requests(None, org) if self.service.writable else []
        return self._render(request, "admin_requests.html", {"requests": listed}, visit=visit)

    async def _visible_request(self, visit: Visit, request_id: str) -> Any:
        found = await self.service.request(request_id)
        if found is None or not (visit.staff.is_it
                                 or found.organization_id == visit.staff.organization.id):
            raise Forbidden("not a request of this organisation")
        return found

    async def request_page(self, request: Request, visit: Visit) -> Response:
        found = await self._visible_request(visit, request.path_params["request_id"])
        subject = await self.service.user(found.user_id) if found.user_id else None
        existing = None
        if visit.staff.is_it and found.kind == "grant" and found.state == "pending" \
                and subject is None:
            from ..authz.sql import queries

            grant = found.grant
            async with self.service.transaction() as conn:
                existing = await queries.find_user(conn, grant.personal_identity_number,
                                                   grant.hsa_id)
        return self._render(request, "admin_request.html", {
            "request_": found, "grant": found.grant if found.kind == "grant" else None,
            "subject": subject, "existing": existing,
            "org": self.settings.organization(found.organization_id),
            "role": self.settings.role(found.payload.get("role_code", "")),
            "errors": {}}, visit=visit)

    async def approve(self, request: Request, visit: Visit) -> Response:
        visit.staff.require_it()
        request_id = request.path_params["request_id"]
        try:
            outcome = await self.service.approve(visit.actor, request_id)
        except OutsideOrganization as exc:
            raise AdminError(str(exc)) from None
        return self._go(f"/requests/{request_id}", done="approved",
                        **({"mail": "failed"} if outcome.mail_failed else {}))

    async def reject(self, request: Request, visit: Visit) -> Response:
        visit.staff.require_it()
        request_id = request.path_params["request_id"]
        form = await self._form(request)
        if not form.get("reason"):
            found = await self._visible_request(visit, request_id)
            return self._render(request, "admin_request.html", {
                "request_": found, "grant": found.grant if found.kind == "grant" else None,
                "subject": None, "existing": None,
                "org": self.settings.organization(found.organization_id),
                "role": self.settings.role(found.payload.get("role_code", "")),
                "errors": {"reason": "reason"}}, 400, visit)
        outcome = await self.service.reject(visit.actor, request_id, str(form["reason"]))
        return self._go(f"/requests/{request_id}", done="rejected",
                        **({"mail": "failed"} if outcome.mail_failed else {}))

    async def reviews(self, request: Request, visit: Visit) -> Response:
        org = None if visit.staff.is_it else visit.staff.organization.id
        due = await self.service.to_review(org) if self.service.writable else []
        overdue = await self.service.overdue(org) if self.service.writable else []
        return self._render(request, "admin_reviews.html",
                            {"due": due, "overdue": overdue}, visit=visit)

    async def save_reviews(self, request: Request, visit: Visit) -> Response:
        staff = visit.staff
        form = await self._form(request)
        org = None if staff.is_it else staff.organization.id
        due = {d.key: d for d in await self.service.to_review(org)}
        overdue = {d.key: d for d in await self.service.overdue(org)} if staff.is_it else {}
        decisions: list[tuple[tuple[str, str], str]] = []
        for key, value in form.items():
            if not key.startswith("decision:"):
                continue
            parts = key.split(":")
            if len(parts) != 3 or value not in ("confirm", "end", "later"):
                raise PageError("error_generic", 400)
            item = (parts[1], parts[2])
            if item not in due and not (item in overdue and value != "end"):
                # Not on this person's page: another organisation's, or made up.
                raise Forbidden("not an assignment to review here")
            decisions.append((item, value))
        confirmed = ended = 0
        for (user_id, assignment_id), value in decisions:
            if value == "confirm":
                await self.service.confirm(visit.actor, user_id, assignment_id, org,
                                           reinstate=(user_id, assignment_id) in overdue)
                confirmed += 1
            elif value == "end":
                await self.service.end_assignment(visit.actor, user_id, assignment_id, org)
                ended += 1
        return self._go("/reviews", done="reviews", c=str(confirmed), e=str(ended))


def _assignment(user: User, assignment_id: str) -> Assignment | None:
    return next((a for a in user.assignments if a.id == assignment_id), None)


def _accounts(form: dict[str, Any], systems: list[str]) -> dict[str, str]:
    return {s: str(form[f"account_{s}"]) for s in systems if form.get(f"account_{s}")}


def _errors(exc: ValidationError) -> dict[str, str]:
    """Field name -> message, for the form (the message is pydantic's, in English; the
    page names the field in the person's language)."""
    out: dict[str, str] = {}
    for loc, msg in error_lines(exc):
        names = [str(p) for p in loc if not isinstance(p, int)]
        if names and names[0] in ("role", "unit", "organization") and len(names) > 1:
            key = f"{names[0]}_{names[1]}"
        else:
            key = names[0] if names else "person"
        out.setdefault(key, msg)
    return out


_STATE_KEYS = {"not yet valid": "admin_state_future", "expired": "admin_state_expired",
               "ended at review": "admin_state_review_passed", "valid": "admin_state_valid"}


def _state(a: Assignment, today: date) -> str:
    """The message key of an assignment's state (the CLI's `present.state`, in words)."""
    return _STATE_KEYS[present.state(a, today)]

"""What the admin app and `broker authz requests|reviews` do, in one place.

Each change runs in one database transaction, is written to the audit log with who, what,
before and after, and then tells the people concerned by e-mail. A mail server that is down
does not undo a change: the failure is logged, audited and returned, so the page (or the
command) says which e-mails did not go out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..authz.model import User
from ..authz.records import AssignmentRecord, UserRecord, user_to_record
from ..authz.sql import access, admin, queries
from ..authz.sql.access import AccessRequest, Decision, Due, GrantRecord, Requester
from ..authz.sql.admin import AdminError
from ..authz.sql.schema import check_version, now, users
from ..mail import Mail, Mailer, MailError
from .notices import Notices
from .rules import check_grant
from .settings import AdminSettings

if TYPE_CHECKING:
    from ..audit import AuditLog

log = logging.getLogger(__name__)


class ReadOnly(Exception):
    """The authorization source is a file or an HTTP service: nothing is changed here."""


@dataclass(frozen=True)
class Actor(Requester):
    """Who makes a change: a logged-in administrator (with the assignment that makes them
    one), or a script (`cli:<name>`)."""

    assignment_id: str | None = None


@dataclass
class Outcome:
    """The result of a change and the recipients whose e-mail could not be sent."""

    value: Any
    mail_failed: list[str] = field(default_factory=list)


def person_name(user: User | None, grant: GrantRecord | None = None) -> str:
    parts = ((user.given_name, user.family_name) if user else
             (grant.given_name, grant.family_name) if grant else ())
    return " ".join(p for p in parts if p) or (user.id if user else "?")


class AdminService:
    def __init__(self, *, settings: AdminSettings, issuer: str, engine: AsyncEngine | None,
                 audit: AuditLog, mailer: Mailer | None,
                 today: Callable[[], date] = date.today) -> None:
        self.settings = settings
        self.engine = engine
        self.audit = audit
        self.mailer = mailer
        self.today = today
        self.notices = Notices(issuer)

    @property
    def writable(self) -> bool:
        return self.engine is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        if self.engine is None:
            raise ReadOnly("the authorization source is not the SQL database")
        async with self.engine.begin() as conn:
            await check_version(conn)
            yield conn

    # -- reading ------------------------------------------------------------------------
    async def users(self, organization_id: str | None) -> list[User]:
        async with self.transaction() as conn:
            if organization_id is None:
                return await queries.all_users(conn)
            return await access.users_in_organization(conn, organization_id)

    async def user(self, user_id: str) -> User | None:
        async with self.transaction() as conn:
            return await queries.user_where(conn, "id", user_id)

    async def requests(self, state: access.State | None = None,
                       organization_id: str | None = None) -> list[AccessRequest]:
        async with self.transaction() as conn:
            return await access.list_requests(conn, state=state, organization_id=organization_id)

    async def request(self, request_id: str) -> AccessRequest | None:
        async with self.transaction() as conn:
            return await access.get_request(conn, request_id)

    async def to_review(self, organization_id: str | None) -> list[Due]:
        """Review dates from today to `remind_days` ahead (what a manager confirms now)."""
        today = self.today()
        async with self.transaction() as conn:
            return await access.reviews(
                conn, since=today, until=today + timedelta(days=self.settings.review.remind_days),
                organization_id=organization_id, today=today)

    async def overdue(self, organization_id: str | None = None) -> list[Due]:
        """Assignments that ended at a review date nobody confirmed."""
        today = self.today()
        async with self.transaction() as conn:
            return await access.reviews(conn, until=today - timedelta(days=1),
                                        organization_id=organization_id, today=today)

    # -- requests -----------------------------------------------------------------------
    async def request_grant(self, actor: Actor, organization_id: str,
                            grant: GrantRecord) -> Outcome:
        check_grant(self.settings, organization_id, grant, self.today())
        async with self.transaction() as conn:
            if grant.user_id and await queries.user_where(conn, "id", grant.user_id) is None:
                raise AdminError(f"no user {grant.user_id}")
            request = await access.create_request(
                conn, kind="grant", organization_id=organization_id,
                requester=actor, user_id=grant.user_id,
                payload=grant.model_dump(mode="json", exclude_none=True))
        self._audit(actor, "request_created", request=request.id, kind="grant",
                    organization=organization_id, user=grant.user_id, after=request.payload)
        return Outcome(request, await self._announce(request, person_name(None, grant)))

    async def request_end(self, actor: Actor, organization_id: str, user_id: str,
                          assignment_id: str) -> Outcome:
        async with self.transaction() as conn:
            user, _ = await access.owned(conn, user_id, assignment_id, organization_id)
            request = await access.create_request(
                conn, kind="end", organization_id=organization_id, requester=actor,
                user_id=user_id, assignment_id=assignment_id)
        self._audit(actor, "request_created", request=request.id, kind="end",
                    organization=organization_id, user=user_id, assignment=assignment_id)
        return Outcome(request, await self._announce(request, person_name(user)))

    async def approve(self, actor: Actor, request_id: str) -> Outcome:
        today = self.today()
        async with self.transaction() as conn:
            request = await access.get_request(conn, request_id)
            if request is None:
                raise AdminError(f"no request {request_id}")
            if request.kind == "grant" and request.state == "pending":
                # Checked again now: the configuration may have changed since the request.
                org, role, unit = check_grant(self.settings, request.organization_id,
                                              request.grant, today)
            else:
                org = role = unit = None  # type: ignore[assignment]
            decision = await access.approve(
                conn, request_id, actor.user_id, today=today, organization=org, role=role,
                unit=unit, review_days=self.settings.review.period_days)
        self._audit(actor, "request_approved", request=request_id, kind=request.kind,
                    organization=request.organization_id, user=decision.request.user_id,
                    assignment=decision.assignment_id, before=_record(decision.before),
                    after=_record(decision.after), notes=decision.notes or None)
        return Outcome(decision, await self._decided(decision.request, decision))

    async def reject(self, actor: Actor, request_id: str, reason: str) -> Outcome:
        async with self.transaction() as conn:
            request = await access.reject(conn, request_id, actor.user_id, reason)
        self._audit(actor, "request_rejected", request=request_id, kind=request.kind,
                    organization=request.organization_id, user=request.user_id,
                    reason=request.reason)
        return Outcome(request, await self._decided(request, None))

    # -- direct changes (municipal IT) and reviews ----------------------------------------
    async def end_assignment(self, actor: Actor, user_id: str, assignment_id: str,
                             organization_id: str | None = None) -> Outcome:
        async with self.transaction() as conn:
            before, after = await access.end_assignment(conn, user_id, assignment_id,
                                                        self.today(),
                                                        organization_id=organization_id)
        self._audit(actor, "assignment_ended", user=user_id, assignment=assignment_id,
                    before=_record(before), after=_record(after))
        return Outcome(after)

    async def confirm(self, actor: Actor, user_id: str, assignment_id: str,
                      organization_id: str | None = None, reinstate: bool = False) -> Outcome:
        async with self.transaction() as conn:
            before, after = await access.confirm(
                conn, user_id, assignment_id, actor.user_id, today=self.today(),
                review_days=self.settings.review.period_days, organization_id=organization_id,
                reinstate=reinstate)
        self._audit(actor, "review_confirmed", user=user_id, assignment=assignment_id,
                    before=_record(before), after=_record(after))
        return Outcome(after)

    async def update_user(self, actor: Actor, user_id: str, changes: dict[str, Any]) -> Outcome:
        """Change a user's own fields (names, e-mail, title, accounts, active)."""
        async with self.transaction() as conn:
            before = await queries.user_where(conn, "id", user_id)
            if before is None:
                raise AdminError(f"no user {user_id}")
            current = user_to_record(before)
            current.pop("assignments", None)
            record = UserRecord.model_validate({**current, **changes})
            problems = await admin.account_conflicts(conn, record.accounts, user_id)
            if problems:
                raise AdminError("; ".join(problems))
            await conn.execute(update(users).where(users.c.id == user_id).values(
                given_name=record.given_name, family_name=record.family_name,
                email=record.email, title=record.title, active=record.active,
                updated_at=now()))
            await admin.set_accounts(conn, user_id, dict(record.accounts))
            after = await queries.user_where(conn, "id", user_id)
        self._audit(actor, "user_changed", user=user_id, before=_record(before),
                    after=_record(after))
        return Outcome(after)

    async def add_assignment(self, actor: Actor, user_id: str,
                             record: AssignmentRecord) -> Outcome:
        review = self.today() + timedelta(days=self.settings.review.period_days)
        async with self.transaction() as conn:
            before = await queries.user_where(conn, "id", user_id)
            if before is None:
                raise AdminError(f"no user {user_id}")
            assignment = await admin.add_assignment(conn, user_id, record, review_due=review)
            after = await queries.user_where(conn, "id", user_id)
        self._audit(actor, "assignment_added", user=user_id, assignment=assignment.id,
                    before=_record(before), after=_record(after))
        return Outcome(after)

    async def remind(self, actor: Actor) -> Outcome:
        """Mail each organisation's managers the reviews due within `remind_days` that
        have had no reminder; those mailed are marked, so running it daily mails once."""
        today = self.today()
        until = today + timedelta(days=self.settings.review.remind_days)
        async with self.transaction() as conn:
            due = await access.reviews(conn, since=today, until=until, today=today)
            fresh = await access.unreminded(conn, [d.key for d in due])
            everyone = await queries.all_users(conn)
        by_org: dict[str, list[Due]] = {}
        for d in due:
            if d.key in fresh:
                by_org.setdefault(d.assignment.organization.id, []).append(d)
        sent: list[str] = []
        failed: list[str] = []
        for org_id, items in by_org.items():
            managers = self._managers(everyone, org_id, today)
            if not managers:
                log.warning("reviews due in organisation %s, but it has no manager with an "
                            "e-mail address", org_id)
                failed.append(f"organisation {org_id}: no manager with an e-mail address")
                continue
            reached, missed = await self._remind_managers(actor, managers, items)
            sent += reached
            failed += missed
            if reached:
                async with self.transaction() as conn:
                    await access.mark_reminded(conn, [d.key for d in items])
                self._audit(actor, "review_reminded", organization=org_id,
                            assignments=[d.assignment.id for d in items])
        return Outcome(sent, failed)

    def _managers(self, everyone: list[User], org_id: str, today: date) -> list[User]:
        """The organisation's managers who can be mailed (a valid manager role here)."""
        return [u for u in everyone if u.email and any(
            a.organization.id == org_id and a.role.id in self.settings.roles.manager
            and a.valid_for(self.settings.client_id, today) for a in u.assignments)]

    async def _remind_managers(self, actor: Actor, managers: list[User],
                               items: list[Due]) -> tuple[list[str], list[str]]:
        """Mail each manager the reviews due: the addresses reached, and those not."""
        reached: list[str] = []
        missed: list[str] = []
        for manager in managers:
            mail = self.notices.render(
                "review_reminder", "sv", manager.email or "", person=person_name(manager),
                organization=items[0].assignment.organization.name, count=len(items),
                first_due=items[0].assignment.review_due, link=self.notices.link("/reviews"),
                due=[{"name": person_name(d.user), "role": d.assignment.role.name,
                      "unit": d.assignment.unit.name,
                      "review_due": d.assignment.review_due} for d in items])
            (reached if await self._send(actor, mail) else missed).append(mail.to)
        return reached, missed

    # -- mail and audit -----------------------------------------------------------------
    async def _announce(self, request: AccessRequest, person: str) -> list[str]:
        if not self.settings.it_email:
            return []
        org = self.settings.organization(request.organization_id)
        mail = self.notices.render("request_new", "sv", self.settings.it_email,
                                   request=request, person=person,
                                   organization=org.name if org else request.organization_id,
                                   link=self.notices.link(f"/requests/{request.id}"))
        return [] if await self._send(None, mail) else [mail.to]

    async def _decided(self, request: AccessRequest, decision: Decision | None) -> list[str]:
        failed: list[str] = []
        grant = request.grant if request.kind == "grant" else None
        person = person_name(decision.after if decision else None, grant)
        if request.requested_by_email:
            mail = self.notices.render("request_decided", request.locale,
                                       request.requested_by_email, request=request,
                                       person=person,
                                       link=self.notices.link(f"/requests/{request.id}"))
            if not await self._send(None, mail):
                failed.append(mail.to)
        if decision and decision.after and request.kind == "grant" and decision.after.email:
            a = next(x for x in decision.after.assignments if x.id == decision.assignment_id)
            mail = self.notices.render("access_granted", "sv", decision.after.email,
                                       person=person, role=a.role.name, unit=a.unit.name,
                                       organization=a.organization.name,
                                       clients=", ".join(sorted(a.clients)))
            if not await self._send(None, mail):
                failed.append(mail.to)
        return failed

    async def _send(self, actor: Actor | None, mail: Mail) -> bool:
        if self.mailer is None:
            log.warning("no smtp settings: the e-mail \"%s\" was not sent", mail.subject)
            return False
        try:
            await self.mailer.send(mail)
        except MailError as exc:
            self.audit.event("admin_mail_failed", to=mail.to, subject=mail.subject,
                             error=str(exc))
            return False
        self.audit.event("admin_mail_sent", to=mail.to, subject=mail.subject)
        return True

    def _audit(self, actor: Actor, action: str, **fields: Any) -> None:
        self.audit.event("admin_change", action=action, actor=actor.user_id,
                         actor_assignment=actor.assignment_id, **fields)


def _record(user: User | None) -> dict[str, Any] | None:
    return user_to_record(user) if user is not None else None

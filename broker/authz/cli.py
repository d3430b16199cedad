"""`broker authz ...`: the IT department's tool for the SQL authorization source.

    broker authz migrate                       --config broker.yaml
    broker authz users add --personal-number 199001012385 --given-name Anna ...
    broker authz users list [--json]           personal numbers masked
    broker authz users show KEY                KEY: user id, personal number or HSA-id
    broker authz users disable KEY | enable KEY
    broker authz assignments add KEY --role-code ... --clients lifecare,mcss
    broker authz assignments remove KEY ASSIGNMENT_ID
    broker authz import FILE.csv [--dry-run]   all or nothing (columns: broker/authz/csvio.py)
    broker authz export [FILE.csv]
    broker authz check-file authz.yaml         validate a file source's YAML
    broker authz requests list [--state pending|approved|rejected|all]
    broker authz requests approve ID | reject ID --reason TEXT     (needs `admin` in --config)
    broker authz reviews due [--within DAYS] [--overdue] [--date YYYY-MM-DD]
    broker authz reviews remind [--date YYYY-MM-DD]  mail managers (cron; needs `admin`, `smtp`)

Every database command takes `--config FILE` (whose `authorization` must be `source: sql`)
or `--database-url URL`. Exit status: 0 done, 1 refused (the message says why), 2 usage.
The main CLI calls `add_commands(subparsers)`, then `args.func(args)`; `main()` runs the
same commands standalone (`python -m broker.authz.cli`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..identifiers import mask_personal_number
from ..validation import error_lines
from . import present
from .csvio import CsvError, parse_accounts, parse_csv, write_csv
from .records import AssignmentRecord, UserRecord, user_to_record
from .sql import admin, queries
from .sql.engine import create_engine
from .sql.schema import SchemaError, check_version, current_version, migrate
from .yamlfile import AuthorizationFileError, read_users

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """Stops a command with a message for the person and exit status 1."""


# --- wiring -------------------------------------------------------------------------------


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register `authz` and its sub-commands; each leaf sets `func` to its handler."""
    authz = subparsers.add_parser(
        "authz",
        help="manage users and assignments in the SQL authorization source",
        description="Manage users and assignments in the SQL authorization source.",
    )
    commands = authz.add_subparsers(dest="authz_command", metavar="COMMAND", required=True)

    db = argparse.ArgumentParser(add_help=False)
    where = db.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE",
                       help="broker configuration file (authorization.source must be sql)")
    where.add_argument("--database-url", metavar="URL",
                       help="sqlite+aiosqlite:///authz.db or postgresql+asyncpg://...")
    db.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = commands.add_parser("migrate", parents=[db], help="create or upgrade the schema")
    p.set_defaults(func=run_migrate)

    _add_user_commands(commands, db)
    _add_assignment_commands(commands, db)
    _add_request_commands(commands, db)

    p = commands.add_parser("import", parents=[db],
                            help="create or replace users from a CSV file (all or nothing)")
    p.add_argument("file", metavar="FILE", help="CSV file ('-' for standard input)")
    p.add_argument("--delimiter", default=",", help="column separator (default ',')")
    p.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    p.set_defaults(func=run_import)

    p = commands.add_parser("export", parents=[db],
                            help="write every user and assignment as CSV (whole personal numbers)")
    p.add_argument("file", metavar="FILE", nargs="?", default="-",
                   help="CSV file to write (default: standard output)")
    p.add_argument("--delimiter", default=",", help="column separator (default ',')")
    p.set_defaults(func=run_export)

    p = commands.add_parser("check", aliases=["check-file"],
                            help="validate the YAML file of a file source before deploying it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=run_check_file)
    return authz


def _add_user_commands(commands: Any, db: argparse.ArgumentParser) -> None:
    users = commands.add_parser("users", help="add, list, show, disable users")
    sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    p = sub.add_parser("add", parents=[db], help="add a user")
    p.add_argument("--id", help="stable user id (default: a new random id)")
    p.add_argument("--personal-number", help="personal identity number, YYYYMMDDNNNN")
    p.add_argument("--hsa-id", help="the person's HSA-id (SITHS)")
    p.add_argument("--given-name")
    p.add_argument("--family-name")
    p.add_argument("--email", help="the work e-mail address")
    p.add_argument("--title", help="the person's function, e.g. Enhetschef")
    p.add_argument("--account", action="append", default=[], metavar="SYSTEM=NAME",
                   help="the user name in a care system, e.g. lifecare=anna.a (repeatable)")
    p.set_defaults(func=run_users_add)

    p = sub.add_parser("list", parents=[db], help="list users (personal numbers masked)")
    p.set_defaults(func=run_users_list)

    for name, func, text in (
        ("show", run_users_show, "show one user with assignments (whole personal number)"),
        ("disable", run_users_disable, "stop a user from logging in (keeps assignments)"),
        ("enable", run_users_enable, "let a disabled user log in again"),
    ):
        p = sub.add_parser(name, parents=[db], help=text)
        p.add_argument("user", metavar="USER", help="user id, personal number or HSA-id")
        p.set_defaults(func=func)


def _add_assignment_commands(commands: Any, db: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("assignments", help="add or remove a user's assignments")
    sub = parser.add_subparsers(dest="assignments_command", metavar="COMMAND", required=True)

    p = sub.add_parser("add", parents=[db], help="give a user a role in a unit")
    p.add_argument("user", metavar="USER", help="user id, personal number or HSA-id")
    p.add_argument("--role-code", required=True, help="the function, e.g. sjukskoterska")
    p.add_argument("--role-name", required=True, help="e.g. Sjuksköterska")
    p.add_argument("--unit-id", required=True)
    p.add_argument("--unit-name", required=True)
    p.add_argument("--organization-id", required=True)
    p.add_argument("--organization-name", required=True)
    p.add_argument("--clients", required=True, help="client ids, comma separated")
    p.add_argument("--valid-from", help="first day, YYYY-MM-DD")
    p.add_argument("--valid-to", help="last day, YYYY-MM-DD")
    p.add_argument("--username", help="the user name in the care system")
    p.add_argument("--review-due", help="review date, YYYY-MM-DD (default with `admin` in "
                                        "--config: today + admin.review.period_days)")
    p.add_argument("--id", help="assignment id (default: derived from user, role, unit, org)")
    p.set_defaults(func=run_assignments_add)

    p = sub.add_parser("remove", parents=[db], help="remove one assignment")
    p.add_argument("user", metavar="USER", help="user id, personal number or HSA-id")
    p.add_argument("assignment", metavar="ASSIGNMENT_ID")
    p.set_defaults(func=run_assignments_remove)


def _add_request_commands(commands: Any, db: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("requests", help="provider managers' access requests")
    sub = parser.add_subparsers(dest="requests_command", metavar="COMMAND", required=True)
    p = sub.add_parser("list", parents=[db], help="list requests (pending by default)")
    p.add_argument("--state", choices=["pending", "approved", "rejected", "all"],
                   default="pending")
    p.add_argument("--organization", help="only this organisation's requests")
    p.set_defaults(func=run_requests_list)
    p = sub.add_parser("approve", parents=[db],
                       help="approve a request: the user and assignment are written at once")
    p.add_argument("request", metavar="REQUEST_ID")
    p.add_argument("--by", help="who decides, for the record (default: the login name)")
    p.set_defaults(func=run_requests_approve)
    p = sub.add_parser("reject", parents=[db], help="reject a request, saying why")
    p.add_argument("request", metavar="REQUEST_ID")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", help="who decides, for the record (default: the login name)")
    p.set_defaults(func=run_requests_reject)

    parser = commands.add_parser("reviews", help="periodic review of assignments")
    sub = parser.add_subparsers(dest="reviews_command", metavar="COMMAND", required=True)
    p = sub.add_parser("due", parents=[db], help="assignments whose review date is near")
    p.add_argument("--within", type=int, metavar="DAYS",
                   help="review dates up to DAYS ahead (default admin.review.remind_days or 14)")
    p.add_argument("--overdue", action="store_true",
                   help="instead: assignments that ended at an unconfirmed review date")
    p.add_argument("--organization", help="only this organisation's assignments")
    p.add_argument("--date", type=date.fromisoformat, help="as of this day (default: today)")
    p.set_defaults(func=run_reviews_due)
    p = sub.add_parser("remind", parents=[db],
                       help="mail managers the reviews due soon (once per review date; run "
                            "daily from cron or a Kubernetes CronJob)")
    p.add_argument("--date", type=date.fromisoformat, help="as of this day (default: today)")
    p.set_defaults(func=run_reviews_remind)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="broker")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


# --- plumbing -----------------------------------------------------------------------------


def _database_url(args: argparse.Namespace) -> tuple[str, Path | None, float]:
    if args.database_url:
        return args.database_url, None, 10.0
    if not args.config:
        raise CliError("say which database: --config FILE or --database-url URL")
    from ..config import ConfigError, load_settings
    from .settings import SqlAuthorizationSettings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    authz = settings.authorization
    if not isinstance(authz, SqlAuthorizationSettings):
        raise CliError(f"{args.config}: authorization.source is {authz.source!r}; these "
                       "commands manage a 'sql' source")
    return authz.url, settings.base_dir, max(authz.timeout, 10.0)


def _admin_settings(args: argparse.Namespace, needed: bool) -> Any:
    """The `admin` (and whole) settings of --config; CliError when needed and missing."""
    if not getattr(args, "config", None):
        if needed:
            raise CliError("this command needs --config FILE with an `admin` section")
        return None
    from ..config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if settings.admin is None and needed:
        raise CliError(f"{args.config}: this command needs the `admin` section")
    return settings


def _service(args: argparse.Namespace, engine: AsyncEngine, today: date | None = None) -> Any:
    """The admin app's service over this engine, with the config's audit log and mail."""
    from ..admin.service import AdminService
    from ..audit import AuditLog
    from ..mail import Mailer

    settings = _admin_settings(args, needed=True)
    return AdminService(
        settings=settings.admin, issuer=settings.issuer, engine=engine,
        audit=AuditLog(settings.audit.target),
        mailer=Mailer(settings.smtp, settings.base_dir) if settings.smtp else None,
        today=(lambda: today) if today else date.today)


def _actor(args: argparse.Namespace) -> Any:
    import getpass

    from ..admin.service import Actor

    return Actor(f"cli:{getattr(args, 'by', None) or getpass.getuser()}")


def _execute(args: argparse.Namespace,
             work: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    """Open the database, run `work`, and turn every refusal into a message and status 1."""
    try:
        url, base_dir, timeout = _database_url(args)
        engine = create_engine(url, timeout=timeout, base_dir=base_dir)
    except CliError as exc:
        return _fail(str(exc))
    except Exception as exc:  # a malformed URL, an unknown driver
        return _fail(f"cannot use the database URL ({type(exc).__name__}: {exc})")

    async def go() -> int:
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except (CliError, admin.AdminError, SchemaError, CsvError) as exc:
        return _fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        return _fail(f"the database failed: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _fail(message: str) -> int:
    print(f"broker authz: error: {message}", file=sys.stderr)
    return 1


def _print_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2), file=out or sys.stdout)


_OPTIONS = {
    "personal_identity_number": "--personal-number",
    "given_name": "--given-name",
    "family_name": "--family-name",
    "hsa_id": "--hsa-id",
}


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for loc, msg in error_lines(exc):
        names = [str(p) for p in loc if not isinstance(p, int)]
        option = _OPTIONS.get("_".join(names), "--" + "-".join(names).replace("_", "-"))
        parts.append(f"{option}: {msg}" if names else msg)
    return "; ".join(parts)


@asynccontextmanager
async def _transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction on a database whose schema is current (else: run migrate).

    Commits when the block ends normally, rolls back on any exception.
    """
    async with engine.begin() as conn:
        await check_version(conn)
        yield conn


# --- handlers -----------------------------------------------------------------------------


def run_migrate(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with engine.begin() as conn:
            applied = await migrate(conn)
        async with engine.connect() as conn:
            version = await current_version(conn)
        if args.json:
            _print_json({"version": version, "applied": [m.version for m in applied]})
        elif applied:
            for m in applied:
                print(f"applied migration {m.version}: {m.description}")
            print(f"the schema is at version {version}")
        else:
            print(f"the schema is already at version {version}; nothing to do")
        return 0

    return _execute(args, work)


def run_users_add(args: argparse.Namespace) -> int:
    data = {
        "id": args.id or admin.new_user_id(),
        "personal_identity_number": args.personal_number,
        "hsa_id": args.hsa_id,
        "given_name": args.given_name,
        "family_name": args.family_name,
        "email": args.email,
        "title": args.title,
    }
    accounts, problem = parse_accounts(";".join(args.account))
    if problem:
        return _fail(f"--account: {problem}")
    try:
        record = UserRecord.model_validate({**{k: v for k, v in data.items() if v is not None},
                                            "accounts": accounts})
    except ValidationError as exc:
        return _fail(_validation_message(exc))

    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            user = await admin.add_user(conn, record)
        if args.json:
            _print_json(present.masked_record(user))
        else:
            print(f"added user {user.id}")
        return 0

    return _execute(args, work)


def run_users_list(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            found = await queries.all_users(conn)
        if args.json:
            _print_json([present.masked_record(u) for u in found])
            return 0
        if not found:
            print("no users")
            return 0
        today = date.today()
        rows = [["ID", "PERSONAL NUMBER", "HSA-ID", "NAME", "E-MAIL", "STATUS", "VALID"]]
        for u in found:
            valid = sum(1 for a in u.assignments if present.state(a, today) == "valid")
            rows.append([
                u.id,
                mask_personal_number(u.personal_identity_number) or "-",
                u.hsa_id or "-",
                present.name(u),
                u.email or "-",
                "active" if u.active else "disabled",
                f"{valid}/{len(u.assignments)}",
            ])
        print(present.table(rows))
        return 0

    return _execute(args, work)


def run_users_show(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            user = await admin.resolve_user(conn, args.user)
        if args.json:
            _print_json(user_to_record(user))
        else:
            print(present.describe(user, date.today()))
        return 0

    return _execute(args, work)


def _set_active(args: argparse.Namespace, active: bool) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            user = await admin.set_active(conn, args.user, active)
        if args.json:
            _print_json(present.masked_record(user))
        else:
            print(f"user {user.id} is {'active' if active else 'disabled'}")
        return 0

    return _execute(args, work)


def run_users_disable(args: argparse.Namespace) -> int:
    return _set_active(args, False)


def run_users_enable(args: argparse.Namespace) -> int:
    return _set_active(args, True)


def run_assignments_add(args: argparse.Namespace) -> int:
    data = {
        "id": args.id,
        "role": {"code": args.role_code, "name": args.role_name},
        "unit": {"id": args.unit_id, "name": args.unit_name},
        "organization": {"id": args.organization_id, "name": args.organization_name},
        "clients": [c.strip() for c in args.clients.replace(";", ",").split(",") if c.strip()],
        "valid_from": args.valid_from,
        "valid_to": args.valid_to,
        "username": args.username,
        "review_due": args.review_due,
    }
    try:
        record = AssignmentRecord.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        return _fail(_validation_message(exc))

    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            assignment = await admin.add_assignment(conn, args.user, record,
                                                    review_due=_default_review(args))
        if args.json:
            _print_json(assignment.to_record())
        else:
            print(f"added assignment {assignment.id}")
        return 0

    return _execute(args, work)


def run_assignments_remove(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            await admin.remove_assignment(conn, args.user, args.assignment)
        if args.json:
            _print_json({"removed": args.assignment})
        else:
            print(f"removed assignment {args.assignment}")
        return 0

    return _execute(args, work)


class _DryRun(Exception):
    """Raised inside the import transaction to roll it back on purpose."""


def _read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"{name}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CliError(f"{name}: the file is not UTF-8 text (save it as CSV UTF-8)") from None


def run_import(args: argparse.Namespace) -> int:
    try:
        rows = parse_csv(_read_text(args.file), delimiter=args.delimiter)
    except CliError as exc:
        return _fail(str(exc))
    except CsvError as exc:
        return _import_failed(args, exc.problems)

    async def work(engine: AsyncEngine) -> int:
        try:
            async with _transaction(engine) as conn:
                result = await admin.import_users(conn, rows, review_due=_default_review(args))
                if args.dry_run:
                    raise _DryRun
        except admin.ImportFailed as exc:
            return _import_failed(args, exc.problems)
        except _DryRun:
            pass
        summary = {"created": result.created, "updated": result.updated,
                   "assignments": result.assignments, "written": not args.dry_run}
        if args.json:
            _print_json(summary)
        else:
            print(f"{'checked' if args.dry_run else 'imported'}: {result.created} users created, "
                  f"{result.updated} replaced, {result.assignments} assignments"
                  + (" (dry run: nothing written)" if args.dry_run else ""))
        return 0

    return _execute(args, work)


def _import_failed(args: argparse.Namespace, problems: list[str]) -> int:
    if args.json:
        _print_json({"written": False, "problems": problems}, sys.stderr)
    else:
        for p in problems:
            print(f"{args.file}: {p}", file=sys.stderr)
        print(f"broker authz: error: {len(problems)} problem(s); nothing was imported",
              file=sys.stderr)
    return 1


def write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it (a file source reloads
    whatever is there); 0600, since it holds whole personal numbers."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_export(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            found = await queries.all_users(conn)
        text = write_csv(found, delimiter=args.delimiter)
        if args.file == "-":
            sys.stdout.write(text)
        else:
            await asyncio.to_thread(write_atomically, Path(args.file), text)
            print(f"wrote {len(found)} users to {args.file} (it holds whole personal numbers)",
                  file=sys.stderr)
        return 0

    return _execute(args, work)


def _default_review(args: argparse.Namespace) -> date | None:
    """A new assignment's review date when the config has an `admin` section."""
    from datetime import timedelta

    settings = _admin_settings(args, needed=False)
    if settings is None or settings.admin is None:
        return None
    return date.today() + timedelta(days=settings.admin.review.period_days)


def _request_row(r: Any) -> list[str]:
    who = r.payload.get("given_name", "") + " " + r.payload.get("family_name", "")
    return [r.id, r.kind, r.state, r.organization_id, (r.user_id or who.strip() or "-"),
            r.requested_by_name or r.requested_by,
            r.created_at.strftime("%Y-%m-%d %H:%M")]


def run_requests_list(args: argparse.Namespace) -> int:
    from .sql import access

    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            found = await access.list_requests(
                conn, state=None if args.state == "all" else args.state,
                organization_id=args.organization)
        if args.json:
            _print_json([_masked_request(r) for r in found])
        elif not found:
            print(f"no {'' if args.state == 'all' else args.state + ' '}requests")
        else:
            print(present.table([["ID", "KIND", "STATE", "ORGANISATION", "PERSON",
                                  "REQUESTED BY", "CREATED (UTC)"],
                                 *[_request_row(r) for r in found]]))
        return 0

    return _execute(args, work)


def _masked_request(r: Any) -> dict[str, Any]:
    record = r.to_record()
    pnr = record["payload"].get("personal_identity_number")
    if pnr:
        record["payload"]["personal_identity_number"] = mask_personal_number(pnr)
    return record


def _decided(args: argparse.Namespace, request: Any, failed: list[str]) -> int:
    if args.json:
        _print_json({**_masked_request(request), "mail_failed": failed})
    else:
        print(f"request {request.id} is {request.state}"
              + (f": user {request.user_id}, assignment {request.assignment_id}"
                 if request.state == "approved" and request.kind == "grant" else ""))
        for to in failed:
            print(f"broker authz: warning: the e-mail to {to} could not be sent",
                  file=sys.stderr)
    return 0


def run_requests_approve(args: argparse.Namespace) -> int:
    from ..admin.rules import OutsideOrganization

    async def work(engine: AsyncEngine) -> int:
        try:
            outcome = await _service(args, engine).approve(_actor(args), args.request)
        except OutsideOrganization as exc:
            raise CliError(f"the request asks for more than the organisation owns: {exc}"
                           ) from None
        return _decided(args, outcome.value.request, outcome.mail_failed)

    return _execute(args, work)


def run_requests_reject(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        outcome = await _service(args, engine).reject(_actor(args), args.request, args.reason)
        return _decided(args, outcome.value, outcome.mail_failed)

    return _execute(args, work)


def run_reviews_due(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from .sql import access

    settings = None
    try:
        settings = _admin_settings(args, needed=False)
    except CliError as exc:
        return _fail(str(exc))
    within = args.within if args.within is not None else (
        settings.admin.review.remind_days if settings and settings.admin else 14)
    today = args.date or date.today()

    async def work(engine: AsyncEngine) -> int:
        async with _transaction(engine) as conn:
            if args.overdue:
                found = await access.reviews(conn, until=today - timedelta(days=1),
                                             organization_id=args.organization, today=today)
            else:
                found = await access.reviews(conn, since=today,
                                             until=today + timedelta(days=within),
                                             organization_id=args.organization, today=today)
        if args.json:
            _print_json([{"user_id": d.user.id, "name": present.name(d.user),
                          "assignment_id": d.assignment.id,
                          "organization_id": d.assignment.organization.id,
                          "role": d.assignment.role.id, "unit": d.assignment.unit.id,
                          "review_due": d.assignment.review_due.isoformat()
                          if d.assignment.review_due else None} for d in found])
        elif not found:
            print("no assignments ended at their review date" if args.overdue
                  else f"no review dates in the next {within} days")
        else:
            print(present.table([["REVIEW BY", "USER", "NAME", "ASSIGNMENT", "ORGANISATION",
                                  "ROLE", "UNIT"],
                                 *[[str(d.assignment.review_due), d.user.id,
                                    present.name(d.user), d.assignment.id,
                                    d.assignment.organization.id, d.assignment.role.id,
                                    d.assignment.unit.id] for d in found]]))
        return 0

    return _execute(args, work)


def run_reviews_remind(args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        outcome = await _service(args, engine, args.date).remind(_actor(args))
        if args.json:
            _print_json({"sent": outcome.value, "failed": outcome.mail_failed})
        else:
            for to in outcome.value:
                print(f"reminded {to}")
            for problem in outcome.mail_failed:
                print(f"broker authz: error: not reminded: {problem}", file=sys.stderr)
            if not outcome.value and not outcome.mail_failed:
                print("no reviews to remind of")
        # A reminder that did not go out is retried by the next run: say so to cron.
        return 1 if outcome.mail_failed else 0

    return _execute(args, work)


def run_check_file(args: argparse.Namespace) -> int:
    try:
        found = read_users(Path(args.file))
    except AuthorizationFileError as exc:
        if args.json:
            _print_json({"ok": False, "problems": str(exc).splitlines()})
        else:
            print(exc, file=sys.stderr)
        return 1
    count = sum(len(u.assignments) for u in found)
    if args.json:
        _print_json({"ok": True, "users": len(found), "assignments": count})
    else:
        print(f"{args.file}: ok, {len(found)} users, {count} assignments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`broker sessions list|revoke`: look at and end SSO sessions from an operator's shell.

It runs as its own process next to the servers and talks to the configured store
directly, so it needs a shared store (Redis): the in-memory store of `broker demo` lives
inside the server process and cannot be reached. Revoking a session does what logout does:
the session ends, its refresh tokens stop, and each relying party of it that registered a
`backchannel_logout_uri` is sent a logout token (the command waits for those deliveries).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from .audit import AuditLog
from .config import ConfigError, Settings, load_settings
from .oidc.backchannel import Courier, Outbox, logout_token_maker
from .oidc.clients import ClientRegistry
from .oidc.logout import end_and_notify
from .oidc.signer import Signer
from .session import Sessions, SsoSession
from .store import Store, StoreError


@dataclass
class AdminContext:
    """The parts of the server's `Broker` that ending a session needs (see LogoutContext)."""

    settings: Settings
    store: Store
    sessions: Sessions
    signer: Signer
    clients: ClientRegistry
    audit: AuditLog
    http: httpx.AsyncClient
    outbox: Outbox
    courier: Courier

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    @classmethod
    def open(cls, settings: Settings) -> AdminContext:
        from .app import longest_family, open_audit, open_keyring, open_state_store

        if settings.store.url.startswith("memory://"):
            raise ConfigError(f"{settings.source}: store.url: sessions in the in-memory store live "
                              "inside the server process; this command needs a shared store (Redis)")
        keyring = open_keyring(settings)
        store = open_state_store(settings, keyring)
        http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        clients = ClientRegistry(settings.clients, http)
        signer = Signer(keyring, settings.issuer)
        audit = open_audit(settings)
        outbox = Outbox(store, clients, settings.backchannel)
        return cls(settings=settings, store=store,
                   sessions=Sessions(store, settings.session.idle_timeout,
                                     settings.session.absolute_timeout,
                                     remember=longest_family(settings)),
                   signer=signer, clients=clients, audit=audit, http=http, outbox=outbox,
                   courier=Courier(outbox, http, logout_token_maker(settings, signer), audit))

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.store.close()
        self.audit.close()


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _describe(session: SsoSession) -> dict[str, Any]:
    assignment = session.assignment or {}
    return {
        "sid": session.sid, "user": session.user.get("id"),
        "method": session.identity.get("method"), "auth_time": _when(session.auth_time),
        "created": _when(session.created), "last_seen": _when(session.last_seen),
        "assignment": assignment.get("id"),
        "role": (assignment.get("role") or {}).get("name"),
        "unit": (assignment.get("unit") or {}).get("name"),
        "clients": sorted(session.clients),
    }


async def _list(ctx: AdminContext, args: argparse.Namespace) -> int:
    rows = [_describe(s) for s in await ctx.sessions.of_user(args.user)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print(f"no live sessions for user {args.user}")
    for row in rows if not args.json else []:
        print(f"--sid={row['sid']}  logged in {row['auth_time']} by {row['method']}, "
              f"last seen {row['last_seen']}, role {row['role'] or '-'} at {row['unit'] or '-'}, "
              f"clients: {', '.join(row['clients']) or '-'}")
    return 0


async def _revoke(ctx: AdminContext, args: argparse.Namespace) -> int:
    actor = getpass.getuser()
    if args.sid:
        sids = [args.sid]
    else:
        # Every grant the user had stops, also those of sessions that already expired.
        await ctx.sessions.revoke_user(args.user)
        sids = sorted(await ctx.sessions.sids_of_user(args.user))
    ended = 0
    for sid in sids:
        live = await ctx.sessions.get(sid)
        delivered = await end_and_notify(ctx, sid, reason="admin_revoke")
        ctx.audit.event("admin_revoke", sid=sid, actor=actor, user=args.user,
                        live=live is not None, delivered=delivered)
        if live is None:
            continue
        ended += 1
        report = ", ".join(f"{c}={'delivered' if ok else 'NOT DELIVERED'}"
                           for c, ok in sorted(delivered.items())) or "no back-channel clients"
        print(f"ended session {sid} of user {live.user.get('id')}; back-channel logout: {report}")
    who = f"sid {args.sid}" if args.sid else f"user {args.user}"
    if not ended:
        print(f"no live session for {who} (refresh tokens of any earlier session are stopped)")
        return 1
    print(f"{ended} session(s) of {who} ended; their refresh tokens no longer work")
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ctx = AdminContext.open(settings)

    async def main() -> int:
        try:
            command = _list if args.sessions_command == "list" else _revoke
            return await command(ctx, args)
        finally:
            await ctx.aclose()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        print(f"the store at {settings.store.url.split('@')[-1]} did not answer: {exc}",
              file=sys.stderr)
        return 3


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `broker sessions ...` on the main parser."""
    p = sub.add_parser("sessions", help="SSO sessions: list a user's, revoke by user or sid")
    inner = p.add_subparsers(dest="sessions_command", required=True)
    q = inner.add_parser("list", help="a user's live sessions and the clients in each")
    q.add_argument("--user", required=True, help="user id (the authorization source's id)")
    q.add_argument("--config", required=True)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_run)
    r = inner.add_parser("revoke", help="end sessions, stop their refresh tokens, tell the RPs")
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="end every session of this user id")
    who.add_argument("--sid", metavar="SID",
                     help="end the session with this sid (the ID token's `sid`); write it as "
                          "--sid=SID, since a sid may begin with '-'")
    r.add_argument("--config", required=True)
    r.set_defaults(func=_run)

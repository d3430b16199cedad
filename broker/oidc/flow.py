"""The steps of a login between the authorization request and the code.

    /login/<txn>           bind to this browser; reuse the SSO session or pick a method
    /login/<txn>/method    the person chose a method: the connector takes over
    (connector)            ...upstream login... -> Flow.finish(identity)
    /login/<txn>/select    the person picked a role and unit
    /login/<txn>/deny      the person read "no authorization" and pressed Back
    /login/<txn>/extend    the person asked for more time before the login expires

Only the browser that started the login can continue it; the result of an upstream login
is accepted only for the transaction (and so the browser) it was started for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import date
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..authz import Assignment, AuthorizationSourceError, User
from ..connectors import Identity, LoginFailure
from ..context import Broker
from ..grants import Grant, PendingCode, TokenMinter
from ..identifiers import mask_personal_number
from ..login_transaction import LoginTransaction, login_binding
from ..security import BROWSER_COOKIE, browser_digest, browser_id
from ..session import SSO_COOKIE, SsoSession
from ..store import StoreError
from ..web.prefs import PreferenceCookie, assignment_digest
from .assurance import AcrRequirement, acr_requirement
from .claims import SCOPE_ASSIGNMENTS, parse_claims_request, release, subject_for, unmet_essential
from .logout import deliver_soon, end_session
from .responses import error_to_client, location_params, to_client
from .server import BrokerRequest, GrantUser, TokenExchange

log = logging.getLogger(__name__)


class FlowError(Exception):
    """A step that cannot go on; shown to the person as a page, never redirected."""

    def __init__(self, key: str, status_code: int = 400) -> None:
        super().__init__(key)
        self.key = key
        self.status_code = status_code


METHOD_LABELS = {"bankid": "method_bankid", "siths": "method_siths"}
# Asking for more time can keep a login open this many transaction lifetimes in all.
MAX_LIFETIMES = 4


class Flow:
    """The provider's side of a login, and the `LoginFlow` connectors are given."""

    def __init__(self, broker: Broker, prefs: PreferenceCookie, pseudonym_key: bytes) -> None:
        self.broker = broker
        # The person's earlier choices (last method, role per client): shortcuts only.
        self.prefs = prefs
        self._pseudonym_key = pseudonym_key

    def routes(self) -> list[Route]:
        return [
            Route("/login/{txn_id}", self.resume, methods=["GET"]),
            Route("/login/{txn_id}/method", self.choose_method, methods=["POST"]),
            Route("/login/{txn_id}/select", self.select, methods=["POST"]),
            Route("/login/{txn_id}/deny", self.deny, methods=["POST"]),
            Route("/login/{txn_id}/extend", self.extend, methods=["POST"]),
        ]

    # -- LoginFlow (what connectors call) ------------------------------------------------
    async def load(self, request: Request, txn_id: str) -> LoginTransaction:
        txn = await self.broker.transactions.get(txn_id)
        if txn is None:
            raise FlowError("error_expired", 410)
        value = self.broker.cookies.get(request, BROWSER_COOKIE)
        if not value or txn.browser != browser_digest(value):
            raise FlowError("error_wrong_browser", 403)
        return txn

    async def find(self, txn_id: str) -> LoginTransaction | None:
        return await self.broker.transactions.get(txn_id)

    async def save(self, txn: LoginTransaction) -> None:
        await self.broker.transactions.save(txn)

    async def form(self, request: Request, txn: LoginTransaction) -> dict[str, str]:
        form = await request.form()
        if not self.broker.csrf.valid(login_binding(txn.id), form.get("csrf")):
            raise FlowError("error_csrf", 403)
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def client_name(self, txn: LoginTransaction) -> str:
        client = self.broker.clients.get(txn.client_id)
        return client.settings.client_name if client else txn.client_id

    def other_methods_url(self, txn: LoginTransaction) -> str | None:
        return f"/login/{txn.id}?choose=1" if len(self._methods(txn)) > 1 else None

    def browser_pseudonym(self, request: Request, purpose: str) -> str:
        value = self.broker.cookies.get(request, BROWSER_COOKIE) or ""
        mac = hmac.new(self._pseudonym_key, f"{purpose}|{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def render(self, request: Request, template: str, context: dict[str, Any],
               status_code: int = 200) -> Response:
        return self.broker.pages.render(request, template, context, status_code)

    async def finish(self, request: Request, txn: LoginTransaction, identity: Identity) -> Response:
        response = await self._finish(request, txn, identity)
        self._remember(request, response, method=identity.method)
        return response

    async def _finish(self, request: Request, txn: LoginTransaction, identity: Identity) -> Response:
        record = identity.to_record()
        evidence = record.pop("evidence", {})
        self.broker.audit.event(
            "upstream_login", client=txn.client_id, method=identity.method,
            personal_identity_number=identity.personal_identity_number, hsa_id=identity.hsa_id,
            acr=identity.acr, evidence=evidence, txn=txn.id,
        )
        log.info("upstream login by %s for %s (%s)", identity.method, txn.client_id,
                 mask_personal_number(identity.personal_identity_number) or identity.hsa_id)
        if not self._acr_requirement(txn).met_by(identity.acr):
            # The login reached a lower level than the request demands (a reserve card
            # when LoA 3 is required): a failed authentication, OIDC Core 5.5.1.1.
            self.broker.audit.event("login", client=txn.client_id, method=identity.method,
                                    acr=identity.acr, outcome="acr_unmet", txn=txn.id)
            self.broker.metrics.login(identity.method, "failed")
            await self.broker.transactions.end(txn)
            return self._error(request, txn, "unmet_authentication_requirements",
                               "the login did not reach the authentication level asked for")
        txn.identity = record
        txn.from_session = False
        return await self._authorize(request, txn, None)

    async def fail(self, request: Request, txn: LoginTransaction, failure: LoginFailure) -> Response:
        self.broker.audit.event("upstream_failure", client=txn.client_id, method=txn.method,
                                outcome=failure.code, txn=txn.id)
        self.broker.metrics.login(txn.method, "failed")
        return self.broker.pages.render(
            request, "error.html",
            {"message_key": failure.code, "values": {}, "ui_locales": txn.params.get("ui_locales"),
             "back_url": f"/login/{txn.id}" if failure.retry else None,
             "other_methods_url": self.other_methods_url(txn), "client_id": txn.client_id},
            status_code=400,
        )

    # -- routes --------------------------------------------------------------------------
    async def resume(self, request: Request) -> Response:
        broker = self.broker
        txn = await broker.transactions.get(request.path_params["txn_id"])
        if txn is None:
            raise FlowError("error_expired", 410)
        value, new = browser_id(request, broker.cookies)
        digest = browser_digest(value)
        try:
            if txn.browser is None:
                # The first browser to open the login owns it, for the full login time.
                broker.transactions.bind(txn, digest)
                broker.metrics.active_logins.started(txn.id, txn.expires)
            elif txn.browser != digest:
                raise FlowError("error_wrong_browser", 403)
            response = await self._resume(request, txn)
            await broker.transactions.save_if_changed(txn)  # the binding, if nothing saved it
        except StoreError as exc:
            if not new:
                raise
            # The binding may have been written before the store failed: the browser must
            # keep the cookie it was bound with, or its retry is "another browser".
            log.error("store unavailable: %s", exc)
            response = broker.pages.error(request, "error_unavailable", status_code=503)
        if new:
            broker.cookies.set(response, BROWSER_COOKIE, value)
        self._remember(request, response, client=txn.client_id)
        return response

    async def _resume(self, request: Request, txn: LoginTransaction) -> Response:
        broker = self.broker
        if txn.identity is not None and txn.choices and txn.assignment is None:
            return self._picker(request, txn)
        session = await broker.sessions.load(broker.cookies.get(request, SSO_COOKIE))
        reusable = session is not None and self._session_satisfies(txn, session)
        if reusable:
            txn.identity = session.identity
            txn.from_session = True
            return await self._authorize(request, txn, session)
        if "none" in txn.prompts:
            return self._error(request, txn, "login_required", "no SSO session satisfies the request")
        methods = self._methods(txn)
        if not methods:
            return self._error(request, txn, "unmet_authentication_requirements",
                               "no login method here satisfies the request")
        if len(methods) == 1:
            return await self._start(request, txn, methods[0])
        last = self.prefs.read(request).method
        if last in methods and "choose" not in request.query_params:
            return await self._start(request, txn, last)  # the method that worked last time
        return broker.pages.render(request, "chooser.html", {
            "txn_id": txn.id, "csrf": txn.csrf, "client_name": self.client_name(txn),
            "ui_locales": txn.params.get("ui_locales"), "expires_at": txn.expires,
            "client_id": txn.client_id, "switch_path": f"/login/{txn.id}",
            "methods": [{"value": m, "label": METHOD_LABELS.get(m, m)} for m in methods],
        })

    async def choose_method(self, request: Request) -> Response:
        txn = await self.load(request, request.path_params["txn_id"])
        form = await self.form(request, txn)
        method = form.get("method")
        if method not in self._methods(txn):
            raise FlowError("error_generic")
        return await self._start(request, txn, method)

    async def select(self, request: Request) -> Response:
        txn = await self.load(request, request.path_params["txn_id"])
        form = await self.form(request, txn)
        chosen = next((a for a in txn.choices if a["id"] == form.get("assignment")), None)
        if txn.identity is None or chosen is None:
            return self._picker(request, txn, status_code=400)
        txn.assignment = chosen
        response = await self._complete(request, txn)
        self._remember(request, response, role=(txn.client_id, chosen))
        return response

    async def deny(self, request: Request) -> Response:
        txn = await self.load(request, request.path_params["txn_id"])
        await self.form(request, txn)
        if txn.identity is None or txn.choices:
            raise FlowError("error_generic")
        await self.broker.transactions.end(txn)
        self.broker.metrics.active_logins.ended(txn.id)
        return self._error(request, txn, "access_denied", "the user has no valid authorization for this client")

    async def extend(self, request: Request) -> Response:
        """More time for a person who is still here, asked for from the warning shown
        before the login expires (WCAG 2.2.1), up to MAX_LIFETIMES in all."""
        txn = await self.load(request, request.path_params["txn_id"])
        await self.form(request, txn)
        now = int(time.time())
        ttl = self.broker.settings.login.transaction_ttl
        txn.expires = max(txn.expires, min(now + ttl, txn.created + MAX_LIFETIMES * ttl))
        await self.broker.transactions.save(txn)
        self.broker.metrics.active_logins.started(txn.id, txn.expires)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"expires_in": txn.expires - now})
        return Response(status_code=303, headers={"Location": f"/login/{txn.id}"})

    # -- steps ---------------------------------------------------------------------------
    def _methods(self, txn: LoginTransaction) -> list[str]:
        """Connectors that can serve this request: the RP's authnProvider choice and the
        acr it demands narrow the list."""
        names = list(self.broker.connectors)
        asked = txn.params.get("https://id.oidc.se/param/authnProvider") or txn.params.get("authnProvider")
        if asked:
            names = [n for n in names if asked in (n, f"urn:broker:method:{n}")]
        required = self._acr_requirement(txn)
        return [n for n in names if required.reachable_with(self.broker.connectors[n].acr_values)]

    def _acr_requirement(self, txn: LoginTransaction) -> AcrRequirement:
        client = self.broker.clients.get(txn.client_id)
        return acr_requirement(txn.params, client.settings.default_acr_values if client else ())

    async def _start(self, request: Request, txn: LoginTransaction, method: str) -> Response:
        """The connector's first page. The method (and a new binding) is saved before the
        response leaves, once: with the connector's own changes when it saved them."""
        txn.method = method
        response = await self.broker.connectors[method].start(request, txn)
        await self.broker.transactions.save_if_changed(txn)
        return response

    def _session_satisfies(self, txn: LoginTransaction, session: SsoSession) -> bool:
        prompts = txn.prompts
        if "login" in prompts:
            return False
        if "max_age" in txn.params:
            max_age = int(txn.params["max_age"])
            # max_age=0 means "authenticate now" (as prompt=login), even within the second.
            if max_age == 0 or time.time() - session.auth_time > max_age:
                return False
        if session.identity.get("method") not in self._methods(txn):
            return False
        if not self._acr_requirement(txn).met_by(session.identity.get("acr")):
            return False  # the session's login reached another level: log in afresh
        # The RP names who it expects: another person's session must not answer.
        return txn.subject is None or txn.subject == self._subject(txn, session.user["id"])

    def _subject(self, txn: LoginTransaction, user_id: str) -> str | None:
        """The `sub` this transaction's client knows the user by."""
        client = self.broker.clients.get(txn.client_id)
        if client is None:
            return None
        return subject_for(user_id, client.settings, self.broker.settings.pairwise_salt)

    async def _authorize(self, request: Request, txn: LoginTransaction,
                         session: SsoSession | None) -> Response:
        """Identity known: ask the authorization source, then pick or ask for an assignment."""
        broker = self.broker
        identity = Identity.from_record({**txn.identity, "evidence": {}})
        try:
            if session is not None:
                user = await broker.source.get_user(session.user["id"])
            else:
                user = await broker.source.find_user(identity)
        except AuthorizationSourceError as exc:
            log.error("authorization source failed: %s", exc)
            broker.metrics.login(identity.method, "error")
            if "none" in txn.prompts:
                # No page may be shown: tell the RP, which can try again (OIDC Core 3.1.2.6).
                return self._error(request, txn, "temporarily_unavailable",
                                   "the authorization source is unavailable; retry")
            raise FlowError("error_unavailable", 503) from None
        if txn.subject is not None and (user is None or self._subject(txn, user.id) != txn.subject):
            # OIDC Core 3.1.2.2 / 5.5.1: never a token for another person than the one named.
            broker.audit.event("login", client=txn.client_id, user=user.id if user else None,
                               method=identity.method, outcome="subject_mismatch", txn=txn.id)
            broker.metrics.login(identity.method, "failed")
            await broker.transactions.end(txn)
            return self._error(request, txn, "login_required",
                               "the person who logged in is not the one the request names")
        choices: list[Assignment] = user.valid_assignments(txn.client_id, date.today()) if user else []
        txn.user = user.to_record() if user else {"id": None, "given_name": identity.given_name,
                                                   "family_name": identity.family_name}
        txn.user.pop("assignments", None)
        txn.choices = [a.to_record() for a in choices]
        txn.assignment = None
        if not choices:
            return await self._denied(request, txn, identity, user)
        txn.assignment = self._preselect(txn, choices, session)
        if txn.assignment is None:
            if "none" in txn.prompts:
                return self._error(request, txn, "interaction_required", "the user must choose a role and unit")
            await broker.transactions.save(txn)
            return self._picker(request, txn)
        return await self._complete(request, txn, session)

    async def _denied(self, request: Request, txn: LoginTransaction, identity: Identity,
                      user: User | None) -> Response:
        """No valid assignment for this client: "Du saknar behörighet" (the RP hears
        access_denied when the person presses Tillbaka, `deny`)."""
        broker = self.broker
        await broker.transactions.save(txn)
        broker.audit.event("authorization_denied", client=txn.client_id,
                           user=user.id if user else None, method=identity.method,
                           personal_identity_number=identity.personal_identity_number,
                           outcome="no_valid_assignment" if user else "unknown_user")
        broker.metrics.login(identity.method, "denied")
        if "none" in txn.prompts:
            return self._error(request, txn, "access_denied", "no valid authorization")
        name = identity.name or " ".join(x for x in (identity.given_name, identity.family_name) if x)
        return broker.pages.render(request, "denied.html", {
            "txn_id": txn.id, "csrf": txn.csrf, "client_name": self.client_name(txn),
            "person_name": name or "?", "ui_locales": txn.params.get("ui_locales"),
        }, status_code=403)

    def _preselect(self, txn: LoginTransaction, choices: list[Assignment],
                   session: SsoSession | None) -> dict | None:
        if "select_account" in txn.prompts:
            return None
        if len(choices) == 1:
            return choices[0].to_record()
        carried = _carry_over(choices, session.assignment if session is not None else None)
        if carried is not None:
            return carried.to_record()
        wanted = parse_claims_request(txn.params.get("claims")).get("id_token", {})
        for claim, field_ in (("healthCareUnitHsaId", "unit"), ("commissionHsaId", "id")):
            spec = wanted.get(claim)
            if isinstance(spec, dict) and "value" in spec:
                hits = [a for a in choices if (a.unit.id if field_ == "unit" else a.id) == spec["value"]]
                if len(hits) == 1:
                    return hits[0].to_record()
        return None

    def _picker(self, request: Request, txn: LoginTransaction, status_code: int = 200) -> Response:
        last = self.prefs.read(request).roles.get(txn.client_id)
        preselected = next((a["id"] for a in txn.choices if assignment_digest(a) == last), None)
        return self.broker.pages.render(request, "picker.html", {
            "txn_id": txn.id, "csrf": txn.csrf, "client_name": self.client_name(txn),
            "choices": txn.choices, "ui_locales": txn.params.get("ui_locales"),
            "preselected": preselected, "expires_at": txn.expires, "client_id": txn.client_id,
            "switch_path": f"/login/{txn.id}",
        }, status_code=status_code)

    async def _complete(self, request: Request, txn: LoginTransaction,
                        session: SsoSession | None = None) -> Response:
        """Create or extend the SSO session, issue the code, send the browser back."""
        broker = self.broker
        missing = self._unmet_essential_claims(txn)
        if missing:
            # The login cannot give what the RP declared essential (e.g. a personal
            # identity number after a SITHS card that carries only an HSA-id).
            broker.audit.event("login", client=txn.client_id, user=txn.user.get("id"),
                               method=txn.identity.get("method"), outcome="essential_claims_unmet",
                               claims=missing)
            broker.metrics.login(txn.identity.get("method"), "failed")
            await broker.transactions.end(txn)
            return self._error(request, txn, "unmet_authentication_requirements",
                               "essential claims not available from this login: " + " ".join(missing))
        kept = await self._keep_session(request, txn, session)
        if kept is None:
            return await self._restart(request, txn)
        session, new_cookie, replaced = kept
        try:
            code, pending, location = self._issue_code(txn, session)
        except OAuth2Error as exc:
            return self._error(request, txn, exc.error, exc.description)
        await broker.grants.save_code(code, pending)
        await broker.transactions.end(txn)
        broker.metrics.active_logins.ended(txn.id)
        broker.metrics.login(txn.identity.get("method"), "sso" if txn.from_session else "success")
        broker.audit.event("login", client=txn.client_id, user=txn.user["id"],
                           method=txn.identity.get("method"), sid=session.sid,
                           assignment=txn.assignment["id"] if txn.assignment else None,
                           sso=txn.from_session, outcome="success")
        uri, params = location_params(location)
        response = to_client(broker, request, uri, params, txn.params.get("response_mode"))
        if new_cookie:
            broker.cookies.set(response, SSO_COOKIE, new_cookie)
        response.background = deliver_soon(broker, replaced)
        return response

    async def _keep_session(self, request: Request, txn: LoginTransaction,
                            session: SsoSession | None,
                            ) -> tuple[SsoSession, str | None, SsoSession | None] | None:
        """The SSO session this login ends in - created, re-authenticated or extended with
        this client - with the cookie to set (if new) and a session it replaced (another
        person's, on this browser). None when the session it relied on ended meanwhile."""
        broker = self.broker
        cookie = broker.cookies.get(request, SSO_COOKIE)
        new_cookie = None
        replaced = None
        session = session or await broker.sessions.load(cookie)
        if txn.from_session:
            if session is None or session.identity != txn.identity:
                return None  # logged out, expired or replaced while the picker was open
        elif session is not None and session.user.get("id") == txn.user["id"]:
            # The same person logged in again: same sid and clients, new auth_time.
            new_cookie = await broker.sessions.reauthenticate(cookie or "", session, txn.user,
                                                              txn.identity)
            if new_cookie is None:
                session = None
        elif session is not None:
            # Someone else logs in on this browser: the previous person is logged out
            # everywhere (a shared workstation must not keep their RP sessions alive).
            replaced = await end_session(broker, session.sid, reason="replaced")
            session = None
        if session is None:
            new_cookie, session = await broker.sessions.create(
                txn.user, txn.identity, clients={txn.client_id: self._use(txn, None)},
                assignment=txn.assignment)
            return session, new_cookie, replaced
        if not await self._extend(txn, session, new_cookie or cookie or ""):
            return None  # ended meanwhile (logout elsewhere)
        return session, new_cookie, replaced

    async def _extend(self, txn: LoginTransaction, session: SsoSession, cookie: str) -> bool:
        """Add this client to a live session; False when it was ended meanwhile."""
        session.clients[txn.client_id] = self._use(txn, session)
        if len(txn.choices) > 1 or session.assignment is None:
            session.assignment = txn.assignment  # what the person chose carries over
        return await self.broker.sessions.save(cookie, session)

    @staticmethod
    def _use(txn: LoginTransaction, session: SsoSession | None) -> dict[str, Any]:
        """What the session records of this client: since when, in which assignment."""
        since = session.clients.get(txn.client_id, {}).get("since") if session else None
        return {"since": since or int(time.time()),
                "assignment": txn.assignment["id"] if txn.assignment else None}

    def _issue_code(self, txn: LoginTransaction,
                    session: SsoSession) -> tuple[str, PendingCode, str]:
        """The grant this login makes, and Authlib's answer for it: (code, the pending code
        record to save, the redirect with the code). Raises OAuth2Error."""
        broker = self.broker
        client = broker.clients.get(txn.client_id)
        grant = Grant(
            client_id=txn.client_id,
            sub=subject_for(txn.user["id"], client.settings, broker.settings.pairwise_salt),
            user=txn.user,
            identity={k: v for k, v in txn.identity.items() if k != "evidence"},
            assignment=txn.assignment,
            assignments=txn.choices if self._wants_assignment_list(txn) else None,
            auth_time=session.auth_time,
            acr=txn.identity.get("acr"),
            amr=txn.identity.get("amr"),
            sid=session.sid,
            claims_request=parse_claims_request(txn.params.get("claims")),
            scope=txn.params.get("scope", ""),
        )
        oauth_req = BrokerRequest("GET", broker.issuer + "/authorize",
                                  ImmutableMultiDict(txn.params), {},
                                  TokenExchange(now=broker.grants.now()))
        auth_grant = broker.provider.get_authorization_grant(oauth_req)
        redirect_uri = auth_grant.validate_authorization_request()
        _, _, headers = auth_grant.create_authorization_response(
            redirect_uri, GrantUser(grant=grant, family=TokenMinter.new_family()))
        code, pending = oauth_req.exchange.issued_code  # type: ignore[misc]
        return code, pending, dict(headers)["Location"]

    def _unmet_essential_claims(self, txn: LoginTransaction) -> list[str]:
        requested = parse_claims_request(txn.params.get("claims"))
        if not requested:
            return []
        scope = txn.params.get("scope", "")
        draft = {"user": txn.user, "identity": txn.identity, "assignment": txn.assignment,
                 "assignments": txn.choices if self._wants_assignment_list(txn) else None,
                 "scope": scope, "claims_request": requested}
        missing: list[str] = []
        for destination in ("id_token", "userinfo"):
            for name in unmet_essential(draft, destination, release(draft, destination)):
                if name not in missing:
                    missing.append(name)
        return missing

    @staticmethod
    def _wants_assignment_list(txn: LoginTransaction) -> bool:
        """The list of all the user's assignments goes into the grant only when asked for
        (scope `assignments`, or by name in `claims`): it can be long."""
        if SCOPE_ASSIGNMENTS in txn.params.get("scope", "").split():
            return True
        requested = parse_claims_request(txn.params.get("claims"))
        return any("assignments" in member for member in requested.values())

    async def _restart(self, request: Request, txn: LoginTransaction) -> Response:
        """The SSO session this login relied on is gone: log in again (or, for
        prompt=none, tell the RP so)."""
        if "none" in txn.prompts:
            return self._error(request, txn, "login_required", "the SSO session has ended")
        txn.identity, txn.user, txn.choices, txn.assignment = None, None, [], None
        txn.from_session = False
        await self.broker.transactions.save(txn)
        return Response(status_code=303, headers={"Location": f"/login/{txn.id}"})

    # -- helpers -------------------------------------------------------------------------
    def _remember(self, request: Request, response: Response, *, client: str | None = None,
                  method: str | None = None, role: tuple[str, Any] | None = None) -> None:
        """Keep the person's choices in the preference cookie (see web/prefs.py)."""
        prefs = self.prefs.read(request)
        before = prefs.snapshot()
        prefs.client = client or prefs.client
        if method and response.status_code < 400:
            prefs.method = method
        if role and response.status_code < 400:
            prefs.remember_role(*role)
        if prefs.snapshot() != before:
            self.prefs.write(response, prefs)

    def _error(self, request: Request, txn: LoginTransaction, error: str, description: str | None) -> Response:
        return error_to_client(self.broker, request, txn.params["redirect_uri"], error, description,
                               txn.params.get("state"), txn.params.get("response_mode"))


def _carry_over(choices: list[Assignment], chosen: dict[str, Any] | None) -> Assignment | None:
    """The role and unit chosen earlier in this SSO session, when valid for this client.
    Sources may give one role-and-unit a different assignment id per system, so after the
    id, an unambiguous match on role, unit and organisation counts too."""
    if not chosen:
        return None
    for a in choices:
        if a.id == chosen.get("id"):
            return a
    try:
        key = (chosen["role"]["id"], chosen["unit"]["id"], chosen["organization"]["id"])
    except (KeyError, TypeError):
        return None
    hits = [a for a in choices if (a.role.id, a.unit.id, a.organization.id) == key]
    return hits[0] if len(hits) == 1 else None

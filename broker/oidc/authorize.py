"""The authorization endpoint (GET and POST).

It validates the request with Authlib (client, exact redirect URI, response type, PKCE,
request object) plus the OIDC parameters Authlib leaves to us, stores the result as a
login transaction and sends the browser on to `/login/<txn>`. An unknown client or a
redirect URI that is not registered gets an error page and is never redirected to.

A request object's parameters count as if given outside (`RequestObjects` merges them),
so the redirect URI and `state` may come from inside it. The request is unauthenticated,
so what it may cost is bounded: requests per client address (`RateLimit`), the size of
the parameters and request object, and what the transaction keeps (`MAX_KEPT`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jws
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..context import Broker
from ..ratelimit import RateLimit, address_bucket
from .assurance import acr_requirement
from .claims import ClaimsRequestError, narrow_claims_request, parse_claims_request
from .clients import Client
from .responses import error_to_client
from .server import BrokerRequest

log = logging.getLogger(__name__)

MAX_VALUE = 4096           # one parameter, other than the request object
MAX_REQUEST_OBJECT = 8192  # a signed request object by value
MAX_TOTAL = 12288          # every parameter of one request together, request object included
MAX_KEPT = 3072            # what the transaction keeps of them: <= 4 KB in Redis until bound
PROMPTS = {"none", "login", "select_account", "consent"}
RESPONSE_MODES = {"query", "form_post"}
KEPT = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
        "code_challenge_method", "response_type", "response_mode", "prompt", "max_age",
        "acr_values", "login_hint", "ui_locales", "claims", "display",
        "claims_locales", "authnProvider", "https://id.oidc.se/param/authnProvider",
        "https://id.oidc.se/param/userMessage")
# Parameters that decide where an answer may go: repeated, no redirect is safe.
NO_REDIRECT_IF_REPEATED = {"client_id", "redirect_uri", "request", "response_mode"}
# RFC 6749 A.3; Authlib echoes response_type into its error, which refuses quotes,
# backslashes and anything outside ASCII (a 500): the syntax is checked first.
RESPONSE_TYPE = re.compile(r"^[A-Za-z0-9_]+( [A-Za-z0-9_]+)*$")


class PageRefusal(Exception):
    """A request that cannot be answered at the client's redirect URI: a page."""

    def __init__(self, key: str, status_code: int = 400, *, retry_after: int | None = None,
                 **values: str) -> None:
        super().__init__(key)
        self.key = key
        self.status_code = status_code
        self.retry_after = retry_after
        self.values = values


class RedirectableError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class AuthorizeEndpoint:
    def __init__(self, broker: Broker, limit: RateLimit) -> None:
        self.broker = broker
        self.limit = limit

    def routes(self) -> list[Route]:
        return [Route("/authorize", self.authorize, methods=["GET", "POST"])]

    async def _params(self, request: Request) -> ImmutableMultiDict:
        if request.method == "GET":
            return ImmutableMultiDict(request.query_params.multi_items())
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise PageRefusal("error_request", 415, detail="wrong content type")
        form = await request.form()
        return ImmutableMultiDict([(k, v) for k, v in form.multi_items() if isinstance(v, str)])

    async def authorize(self, request: Request) -> Response:
        """The steps in order: the address's budget, the parameters' size, the client and
        the registered redirect URI (else a page), what needs no request object, the
        request object (Authlib), the OIDC parameters; then the transaction."""
        broker = self.broker
        try:
            await self._within_limit(request)
            params = await self._params(request)
            client, repeated = self._screen(params)
        except PageRefusal as exc:
            response = broker.pages.error(request, exc.key, status_code=exc.status_code,
                                          **exc.values)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        outer_redirect = params.get("redirect_uri")
        state = params.get("state")
        mode = params.get("response_mode") if params.get("response_mode") in RESPONSE_MODES else None
        refusal = _refusal_before_request_object(params)
        if refusal is not None:
            return self._refuse(request, outer_redirect, *refusal, state, mode)
        if "request" in params:
            await broker.clients.ensure_keys(client, _kid(params["request"]))

        oauth_req = BrokerRequest(request.method, broker.issuer + "/authorize", params,
                                  request.headers)
        try:
            # Verifies a request object and merges its parameters in (RequestObjects).
            grant = broker.provider.get_authorization_grant(oauth_req)
        except OAuth2Error as exc:
            return self._refuse(request, outer_redirect, exc.error, exc.description,
                                exc.state or state, mode)

        data = oauth_req.payload.data
        redirect_uri = data.get("redirect_uri")
        if not redirect_uri or not client.check_redirect_uri(redirect_uri):
            return broker.pages.error(request, "error_invalid_redirect")
        state = data.get("state")
        mode = data.get("response_mode") if data.get("response_mode") in RESPONSE_MODES else None
        try:
            if repeated:
                raise RedirectableError("invalid_request", "a parameter is repeated")
            grant.validate_authorization_request()
            resolved, subject = self._kept(client, oauth_req, data)
        except (OAuth2Error, RedirectableError) as exc:
            return error_to_client(broker, request, redirect_uri, exc.error, exc.description,
                                   state, mode)

        txn = await broker.transactions.create(client.client_id, resolved, subject)
        return RedirectResponse(f"/login/{txn.id}", status_code=303)

    async def _within_limit(self, request: Request) -> None:
        broker = self.broker
        wait = await self.limit.hit(address_bucket(broker.proxies.client_ip(request)),
                                    broker.settings.login.authorize_per_address_per_minute)
        if wait is not None:
            broker.metrics.error("authorize_rate_limited")
            raise PageRefusal("error_rate_limited", 429, retry_after=wait)

    def _screen(self, params: ImmutableMultiDict) -> tuple[Client, list[str]]:
        """The client and where an answer may go, before anything is redirected: an
        unknown client, a repeated parameter that decides where, or a redirect URI that
        is not registered is a page. Returns the client and the repeated parameters."""
        if _oversized(params):
            raise PageRefusal("error_too_large")
        client = self.broker.clients.get(params.get("client_id"))
        if client is None:
            raise PageRefusal("error_invalid_client")
        counts = Counter(k for k, _ in params.multi_items())
        repeated = sorted(k for k, n in counts.items() if n > 1)
        if NO_REDIRECT_IF_REPEATED.intersection(repeated):
            raise PageRefusal("error_request", detail="repeated parameter")
        outer_redirect = params.get("redirect_uri")
        if outer_redirect is not None and not client.check_redirect_uri(outer_redirect):
            raise PageRefusal("error_invalid_redirect")
        if outer_redirect is None and "request" not in params:
            raise PageRefusal("error_invalid_redirect")
        return client, repeated

    def _kept(self, client: Client, oauth_req: BrokerRequest,
              data: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        """What the transaction keeps of the validated request, and the subject it names."""
        resolved = {k: v for k, v in data.items() if k in KEPT and v}
        # Authlib narrowed the scope to what the client is registered for (RFC 6749 3.3).
        resolved["scope"] = oauth_req.scope or ""
        subject = self._check_oidc(client, resolved, data.get("id_token_hint"))
        if sum(len(k) + len(v) for k, v in resolved.items()) > MAX_KEPT:
            raise RedirectableError("invalid_request", "the authorization request is too large")
        return resolved, subject

    def _refuse(self, request: Request, redirect_uri: str | None, error: str,
                description: str | None, state: str | None, mode: str | None) -> Response:
        """An error before the request object (if any) was verified: to the outer,
        registered redirect URI when there is one, else as a page."""
        if redirect_uri is None:
            return self.broker.pages.error(request, "error_request", detail=description or error)
        return error_to_client(self.broker, request, redirect_uri, error, description, state, mode)

    def _check_oidc(self, client: Client, p: dict[str, str], id_token_hint: str | None) -> str | None:
        """The OIDC parameters Authlib does not check for us. Normalises `claims` to what
        the client may receive and returns the subject the request names, if any.

        `prompt` is checked here, not by Authlib's `validate_request_prompt`: that runs at
        consent with the end user already known and decides login_required there, while
        here the person is known only at /login/<txn> (the SSO session, flow.py), and it
        lets values it does not know through, which we refuse as invalid_request."""
        if "openid" not in p.get("scope", "").split():
            raise RedirectableError("invalid_scope", "the scope must include openid")
        prompts = p.get("prompt", "").split()
        if any(x not in PROMPTS for x in prompts):
            raise RedirectableError("invalid_request", "unsupported prompt value")
        if "none" in prompts and len(prompts) > 1:
            raise RedirectableError("invalid_request", "prompt=none cannot be combined")
        if "max_age" in p and (not p["max_age"].isdigit() or len(p["max_age"]) > 9):
            raise RedirectableError("invalid_request", "max_age must be a non-negative integer")
        if p.get("response_mode", "query") not in RESPONSE_MODES:
            raise RedirectableError("invalid_request", "response_mode must be query or form_post")
        try:
            claims = parse_claims_request(p.get("claims"))
        except ClaimsRequestError as exc:
            raise RedirectableError("invalid_request", str(exc)) from None
        claims = narrow_claims_request(claims, client.settings.scopes)
        if claims:
            p["claims"] = _json(claims)
        else:
            p.pop("claims", None)
        required = acr_requirement(p, client.settings.default_acr_values)
        if not required.reachable_with(self.broker.acr_values()):
            raise RedirectableError("unmet_authentication_requirements",
                                    "no login method here gives the acr asked for")
        return self._subject(client, claims, id_token_hint)

    def _subject(self, client: Client, claims: dict[str, Any], id_token_hint: str | None) -> str | None:
        """The `sub` the RP names: an ID token we issued to it (expired is fine, OIDC
        Core 3.1.2.1) or a `sub` value in `claims` (5.5.1). Both must agree."""
        named: set[str] = set()
        if id_token_hint:
            try:
                hint = self.broker.signer.verify(id_token_hint, check_exp=False)
            except ValueError:
                raise RedirectableError("invalid_request", "id_token_hint is not an ID token of this issuer") from None
            aud = hint.get("aud")
            if client.client_id not in (aud if isinstance(aud, list) else [aud]):
                raise RedirectableError("invalid_request", "id_token_hint was issued to another client")
            if isinstance(hint.get("sub"), str):
                named.add(hint["sub"])
        for member in claims.values():
            spec = member.get("sub")
            if isinstance(spec, dict) and "value" in spec:
                if not isinstance(spec["value"], str):
                    raise RedirectableError("invalid_request", "claims: the sub value must be a string")
                named.add(spec["value"])
        if len(named) > 1:
            raise RedirectableError("invalid_request", "the request names two different subjects")
        return named.pop() if named else None


def _refusal_before_request_object(params: ImmutableMultiDict) -> tuple[str, str] | None:
    """(error, description) for what is refused before a request object is looked at."""
    if "request_uri" in params:
        return "request_uri_not_supported", "request objects are accepted by value only"
    if not RESPONSE_TYPE.match(params.get("response_type", "code")):
        return "unsupported_response_type", "response_type must be code"
    return None


def _kid(request_object: str) -> str | None:
    """The key id a request object names, to fetch the client's keys before Authlib."""
    try:
        return jws.extract_compact(request_object.encode()).headers().get("kid")
    except Exception:
        return None


def _oversized(params: ImmutableMultiDict) -> bool:
    total = 0
    for key, value in params.multi_items():
        limit = MAX_REQUEST_OBJECT if key == "request" else MAX_VALUE
        if len(value) > limit or len(key) > 256:
            return True
        total += len(key) + len(value)
    return total > MAX_TOTAL


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))

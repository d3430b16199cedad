"""The authorization endpoint (GET and POST).

It validates the request with Authlib (client, exact redirect URI, response type, PKCE,
request object) plus the OIDC parameters Authlib leaves to us, stores the result as a
login transaction and sends the browser on to `/login/<txn>`. An unknown client or a
redirect URI that is not registered gets an error page and is never redirected to.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jws
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..context import Broker
from .claims import ClaimsRequestError, parse_claims_request
from .echo import parameter_names
from .responses import error_to_client
from .server import BrokerRequest

log = logging.getLogger(__name__)

MAX_VALUE = 4096
MAX_REQUEST_OBJECT = 32768
PROMPTS = {"none", "login", "select_account", "consent"}
RESPONSE_MODES = {"query", "form_post"}
KEPT = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
        "code_challenge_method", "response_type", "response_mode", "prompt", "max_age",
        "acr_values", "login_hint", "ui_locales", "claims", "id_token_hint", "display",
        "claims_locales", "authnProvider", "https://id.oidc.se/param/authnProvider",
        "https://id.oidc.se/param/userMessage")


RESPONSE_TYPE = re.compile(r"^[A-Za-z0-9_]+( [A-Za-z0-9_]+)*$")


def _peek(request_object: str) -> tuple[str | None, Any]:
    """The `kid` and `redirect_uri` of a request object, unverified (Authlib verifies it)."""
    try:
        obj = jws.extract_compact(request_object.encode())
        claims = json.loads(obj.payload)
        return obj.headers().get("kid"), (claims.get("redirect_uri")
                                          if isinstance(claims, dict) else None)
    except Exception:
        return None, None


class RedirectableError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class AuthorizeEndpoint:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def routes(self) -> list[Route]:
        return [Route("/authorize", self.authorize, methods=["GET", "POST"])]

    async def _params(self, request: Request) -> ImmutableMultiDict | None:
        if request.method == "GET":
            return ImmutableMultiDict(request.query_params.multi_items())
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return None
        form = await request.form()
        return ImmutableMultiDict([(k, v) for k, v in form.multi_items() if isinstance(v, str)])

    async def authorize(self, request: Request) -> Response:
        broker = self.broker
        pages = broker.pages
        params = await self._params(request)
        if params is None:
            return pages.error(request, "error_request", detail="wrong content type", status_code=415)
        too_long = [key for key, value in params.multi_items()
                    if len(value) > (MAX_REQUEST_OBJECT if key == "request" else MAX_VALUE)
                    or len(key) > 256]
        if too_long:
            return pages.error(request, "error_request",
                               detail=f"too long: {parameter_names(too_long)}")

        client = broker.clients.get(params.get("client_id"))
        if client is None:
            return pages.error(request, "error_invalid_client")
        if len(params.getlist("client_id")) > 1 or len(params.getlist("redirect_uri")) > 1:
            return pages.error(request, "error_request", detail="repeated parameter")
        outer_redirect = params.get("redirect_uri")
        if not outer_redirect or not client.check_redirect_uri(outer_redirect):
            return pages.error(request, "error_invalid_redirect")
        state = params.get("state")
        mode = params.get("response_mode") if params.get("response_mode") in RESPONSE_MODES else None

        if "request_uri" in params:
            return error_to_client(broker, request, outer_redirect, "request_uri_not_supported",
                                   "request objects are accepted by value only", state, mode)
        if not RESPONSE_TYPE.match(params.get("response_type", "code")):
            # Authlib echoes response_type into its error, which refuses quotes, backslashes
            # and anything outside ASCII (a 500): RFC 6749 A.3 syntax first.
            return error_to_client(broker, request, outer_redirect, "unsupported_response_type",
                                   "response_type must be code", state, mode)
        if "request" in params:
            kid, inner_redirect = _peek(params["request"])
            if inner_redirect is not None and not client.check_redirect_uri(inner_redirect):
                # Authlib would echo it (see above); unregistered is the answer either way.
                return error_to_client(broker, request, outer_redirect, "invalid_request",
                                       "the request object's redirect_uri is not registered",
                                       state, mode)
            await broker.clients.ensure_keys(client, kid)

        oauth_req = BrokerRequest(request.method, broker.issuer + "/authorize", params,
                                  request.headers)
        try:
            grant = broker.provider.get_authorization_grant(oauth_req)
            grant.validate_no_multiple_request_parameter(oauth_req)
            redirect_uri = grant.validate_authorization_request()
            resolved = {k: v for k, v in oauth_req.payload.data.items() if k in KEPT and v}
            self._check_oidc(resolved)
        except OAuth2Error as exc:
            target = exc.redirect_uri or (outer_redirect if exc.error != "invalid_client" else None)
            if not target:
                return pages.error(request, "error_request", detail=exc.description or exc.error)
            return error_to_client(broker, request, target, exc.error, exc.description,
                                   state, mode)
        except RedirectableError as exc:
            return error_to_client(broker, request, outer_redirect, exc.error, exc.description,
                                   resolved.get("state"), resolved.get("response_mode"))

        resolved["redirect_uri"] = redirect_uri
        txn = await broker.transactions.create(client.client_id, resolved)
        return RedirectResponse(f"/login/{txn.id}", status_code=303)

    def _check_oidc(self, p: dict[str, str]) -> None:
        """The OIDC parameters Authlib does not check for us."""
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
        acr = claims.get("id_token", {}).get("acr")
        if isinstance(acr, dict) and acr.get("essential"):
            wanted = acr.get("values") or ([acr["value"]] if "value" in acr else [])
            offered = set(self.broker.acr_values())
            if wanted and not offered.intersection(wanted):
                raise RedirectableError("unmet_authentication_requirements",
                                        "no login method here gives the essential acr asked for")

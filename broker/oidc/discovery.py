"""`/.well-known/openid-configuration` and `/jwks`, with every field the Swedish OIDC
profile lists; built once, served from memory."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..context import Broker
from .claims import ASSIGNMENT_CLAIMS, AUTHN_CLAIMS, COORDINATION, PIN, SCOPE_CLAIMS

JWKS_MAX_AGE = 300


def metadata(broker: Broker) -> dict:
    iss = broker.issuer
    scopes = ["openid"]
    for client in broker.clients:
        scopes.extend(s for s in client.settings.scopes if s not in scopes)
    for s in SCOPE_CLAIMS:
        if s not in scopes:
            scopes.append(s)
    claims = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid",
              "name", "given_name", "family_name", "email", "email_verified", PIN, COORDINATION,
              *AUTHN_CLAIMS, "assignments", *ASSIGNMENT_CLAIMS]
    meta = {
        "issuer": iss,
        "authorization_endpoint": iss + "/authorize",
        "token_endpoint": iss + "/token",
        "userinfo_endpoint": iss + "/userinfo",
        "jwks_uri": iss + "/jwks",
        "revocation_endpoint": iss + "/revoke",
        "introspection_endpoint": iss + "/introspect",
        "end_session_endpoint": iss + "/logout",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["RS256", "ES256"],
        "request_object_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                  "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                       "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt",
                                                          "client_secret_basic",
                                                          "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claims_parameter_supported": True,
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "acr_values_supported": broker.acr_values(),
        "prompt_values_supported": ["none", "login", "select_account"],
        "ui_locales_supported": ["sv", "en"],
        "claims_locales_supported": ["sv", "en"],
        "display_values_supported": ["page"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "https://id.oidc.se/disco/authnProviderSupported": True,
    }
    # OPTIONAL in OpenID Connect Discovery: only when the operator names a page that exists.
    if broker.settings.service_documentation:
        meta["service_documentation"] = broker.settings.service_documentation
    return meta


class DiscoveryEndpoints:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._body = json.dumps(metadata(broker), separators=(",", ":")).encode()

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.configuration, methods=["GET"]),
            Route("/jwks", self.jwks, methods=["GET"]),
        ]

    async def configuration(self, request: Request) -> Response:
        return Response(self._body, media_type="application/json",
                        headers={"Cache-Control": "public, max-age=3600",
                                 "Access-Control-Allow-Origin": "*"})

    async def jwks(self, request: Request) -> Response:
        self.broker.keyring.refresh()
        # Short enough that a pre-published key is seen long before it signs; RPs that
        # meet an unknown kid refetch anyway.
        return Response(self.broker.keyring.jwks_bytes(), media_type="application/jwk-set+json",
                        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}",
                                 "Access-Control-Allow-Origin": "*"})

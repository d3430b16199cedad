"""Registered relying parties, as Authlib sees them, and their keys.

Clients come from the config file only (no dynamic registration). Keys behind `jwks_uri`
are fetched asynchronously before Authlib's synchronous checks need them, and kept for a
few minutes; an unknown `kid` triggers one early refetch (the RP rotated its keys).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from joserfc.jwk import KeySet

from ..config import ClientSettings

log = logging.getLogger(__name__)

JWKS_TTL = 300
JWKS_MIN_REFETCH = 30


class Client(ClientMixin):
    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.client_id = settings.client_id
        self.id_token_signed_response_alg = settings.id_token_signed_response_alg
        self._scopes = set(settings.scopes)
        self._keys: KeySet | None = (
            KeySet.import_key_set(settings.jwks) if settings.jwks else None
        )
        self._keys_fetched = 0.0

    # -- Authlib ClientMixin ------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC requires redirect_uri on every request; no default is ever assumed.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope_to_list(scope) if s in self._scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string comparison, as the Swedish profile and RFC 9700 require.
        return redirect_uri in self.settings.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        from ..security import equal_secrets

        expected = self.settings.client_secret or ""
        return bool(expected) and equal_secrets(expected, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.settings.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return self.settings.refresh_tokens
        return grant_type == "authorization_code"

    # -- keys -----------------------------------------------------------------------------
    @property
    def public_keys(self) -> KeySet:
        """The client's keys, for private_key_jwt and request objects (may be empty)."""
        return self._keys or KeySet([])

    def keys_stale(self) -> bool:
        return bool(self.settings.jwks_uri) and (
            self._keys is None or time.monotonic() - self._keys_fetched > JWKS_TTL
        )

    def has_kid(self, kid: str | None) -> bool:
        if self._keys is None:
            return False
        if kid is None:
            return True
        return any(k.kid == kid for k in self._keys)

    def may_refetch(self) -> bool:
        return time.monotonic() - self._keys_fetched > JWKS_MIN_REFETCH

    def set_keys(self, data: dict[str, Any]) -> None:
        keys = KeySet.import_key_set(data)
        if any(k.is_private for k in keys):
            raise ValueError("the client's JWKS holds private keys")
        self._keys = keys
        self._keys_fetched = time.monotonic()


class ClientRegistry:
    def __init__(self, clients: list[ClientSettings], http: httpx.AsyncClient) -> None:
        self._clients = {c.client_id: Client(c) for c in clients}
        self._http = http

    def get(self, client_id: str | None) -> Client | None:
        if not isinstance(client_id, str):
            return None
        return self._clients.get(client_id)

    def __iter__(self):
        return iter(self._clients.values())

    async def ensure_keys(self, client: Client, kid: str | None = None) -> None:
        """Fetch `jwks_uri` when stale, or when `kid` is unknown and a refetch is allowed.
        Failures are logged and leave the old keys: the signature check then fails
        with a clear `invalid_client` / `invalid_request_object`."""
        uri = client.settings.jwks_uri
        if not uri:
            return
        if not client.keys_stale() and (client.has_kid(kid) or not client.may_refetch()):
            return
        try:
            resp = await self._http.get(uri, timeout=5.0, headers={"Accept": "application/json"})
            resp.raise_for_status()
            client.set_keys(resp.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch jwks_uri of client %s: %s", client.client_id, exc)

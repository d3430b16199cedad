"""The HTTP source: an external system (HR, staff planning) answers who may log in.

The contract an adapter on the other side implements:

    POST {url}
    Content-Type: application/json
    Authorization: Bearer {bearer_token}        when configured, plus any `headers`

    one lookup per request:
    {"personal_identity_number": "199001012385", "hsa_id": null}   by identity (a login);
        either may be null; the personal number is matched first, then the HSA-id
    {"user_id": "u-anna"}                                         by stable id (a refresh)
    {"ping": true}                                                readiness

    200  a user as JSON, in the shape of the YAML file's user entries (broker/authz/records.py):
         {"id": "u-anna", "personal_identity_number": "199001012385", "hsa_id": "...",
          "given_name": "Anna", "family_name": "Andersson", "email": "...", "active": true,
          "title": "Sjuksköterska", "accounts": {"lifecare": "anna.a"},
          "assignments": [{"role": {"code": ..., "name": ...}, "unit": {...},
                           "organization": {...}, "clients": [...],
                           "valid_from": "2024-01-01", "valid_to": "2027-12-31",
                           "review_due": null}]}
         (for ping: 200 or 204, any body)
    404  no such user
    anything else, a timeout, or a body that does not validate: an error

The answer must be the user that was asked for (the same personal number or HSA-id, or the
same id); one that is not is an error, so a confused adapter cannot log someone in as
another person.

Failure policy. Errors never grant anything. With `fail_closed: true` (the default) every
error and timeout fails the login with AuthorizationSourceError. With `fail_closed: false`
an error may instead be answered from the cache with an answer that expired at most
`stale_ttl` seconds ago: the last thing the external system itself said about this person,
including "unknown user". Without such an answer the login fails just the same.

Answers are cached in process for `cache_ttl` seconds (0: ask every time), keyed by the
identifiers asked for. Personal numbers are sent only in the request body and are never
logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from ..validation import error_lines, format_loc
from .cache import AnswerCache
from .directory import identity_keys
from .model import AuthorizationSourceError, SourceStatus, User
from .records import user_from_record

if TYPE_CHECKING:
    from ..connectors.base import Identity
    from .settings import HttpAuthorizationSettings

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


class HttpSource:
    """Asks the external system, with a cache and an explicit failure policy (see above)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
        fail_closed: bool = True,
        stale_ttl: float = 900.0,
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.cache_ttl = cache_ttl
        self.fail_closed = fail_closed
        self.stale_ttl = stale_ttl
        self._cache: AnswerCache[User | None] = AnswerCache(cache_size, clock)
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), headers=dict(headers or {}), verify=verify,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: HttpAuthorizationSettings, base_dir: Path) -> HttpSource:
        headers = dict(settings.headers)
        if settings.bearer_token:
            headers["Authorization"] = f"Bearer {settings.bearer_token}"
        verify: ssl.SSLContext | bool = True
        if settings.ca_bundle:
            bundle = Path(settings.ca_bundle)
            bundle = bundle if bundle.is_absolute() else base_dir / bundle
            try:
                verify = ssl.create_default_context(cafile=str(bundle))
            except (OSError, ssl.SSLError) as exc:
                raise AuthorizationSourceError(
                    f"authorization.ca_bundle: cannot load {bundle} ({exc})") from None
        return cls(
            settings.url,
            timeout=settings.timeout,
            cache_ttl=settings.cache_ttl,
            cache_size=settings.cache_size,
            fail_closed=settings.fail_closed,
            stale_ttl=settings.stale_ttl,
            headers=headers,
            verify=verify,
        )

    async def find_user(self, identity: Identity) -> User | None:
        pnr, hsa = identity_keys(identity)
        if not (pnr or hsa):
            return None

        def matches(user: User) -> bool:
            return bool((pnr and user.personal_identity_number == pnr) or
                        (hsa and (user.hsa_id or "").upper() == hsa))

        return await self._lookup(("identity", pnr, hsa),
                                  {"personal_identity_number": pnr, "hsa_id": hsa}, matches)

    async def get_user(self, user_id: str) -> User | None:
        return await self._lookup(("id", user_id), {"user_id": user_id},
                                  lambda user: user.id == user_id)

    async def ping(self) -> None:
        response = await self._post({"ping": True})
        if response.status_code not in (200, 204):
            raise AuthorizationSourceError(
                f"the authorization service answered ping with HTTP {response.status_code}")

    def status(self) -> SourceStatus:
        return SourceStatus()  # asked live: never older than it should be

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _lookup(self, key: Hashable, body: dict[str, Any],
                      matches: Callable[[User], bool]) -> User | None:
        if self.cache_ttl > 0:
            fresh = self._cache.get(key, self.cache_ttl)
            if fresh is not None:
                return fresh.value
        try:
            user = await self._ask(body, matches)
        except AuthorizationSourceError:
            stale = None if self.fail_closed else self._cache.get(
                key, self.cache_ttl + self.stale_ttl)
            if stale is None:
                raise
            log.warning("authorization service failed; serving an answer %.0f s old "
                        "(fail_closed is false)", self._cache.age(stale))
            return stale.value
        self._cache.put(key, user)
        if user is not None and key != ("id", user.id):
            self._cache.put(("id", user.id), user)
        return user

    async def _ask(self, body: dict[str, Any], matches: Callable[[User], bool]) -> User | None:
        response = await self._post(body)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AuthorizationSourceError(
                f"the authorization service answered HTTP {response.status_code}")
        if len(response.content) > MAX_BODY:
            raise AuthorizationSourceError("the authorization service's answer is too large")
        try:
            data = response.json()
        except ValueError:
            raise AuthorizationSourceError(
                "the authorization service did not answer with JSON") from None
        try:
            user = user_from_record(data)
        except ValidationError as exc:
            where = "; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in error_lines(exc)[:5])
            raise AuthorizationSourceError(
                f"the authorization service's answer is not a valid user ({where})") from None
        if not matches(user):
            raise AuthorizationSourceError(
                "the authorization service answered with a different user than was asked for")
        return user

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._client.post(self.url, json=body)
        except (TimeoutError, httpx.TimeoutException):
            log.warning("authorization service did not answer within %s s", self.timeout)
            raise AuthorizationSourceError(
                f"the authorization service did not answer within {self.timeout} s") from None
        except httpx.HTTPError as exc:
            log.warning("authorization service request failed: %s", type(exc).__name__)
            raise AuthorizationSourceError(
                f"the authorization service cannot be reached ({type(exc).__name__})") from None

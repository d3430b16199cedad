"""Settings under `authorization`: which source answers "who may log in", and how.

The YAML stays flat, with `source` choosing the kind::

    authorization: {source: file, path: authz.yaml, reload_interval: 2}
    authorization: {source: sql, url: "postgresql+asyncpg://broker:${DB_PASSWORD}@db/broker"}
    authorization: {source: http, url: https://hr.example/authz, bearer_token: ${AUTHZ_TOKEN}}

`AuthorizationSettings` is the common base and also the field type in `broker.config`.
Validating a mapping against it, or calling it, yields the subclass that `source` names
(`FileAuthorizationSettings`, `SqlAuthorizationSettings`, `HttpAuthorizationSettings`), so
each kind rejects keys that belong to another kind and error locations stay flat
(`authorization.url`), which is what a person editing the file sees.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

SourceKind = Literal["file", "sql", "http"]

_OWN_CLASS = "broker.authz.settings:own-class"

SQL_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


class AuthorizationSettings(BaseModel):
    """Common to every source. Resolves to the subclass that `source` names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceKind = "file"
    # Seconds one lookup may take before the login fails closed.
    timeout: float = Field(3.0, gt=0, le=60)

    def __new__(cls, *args: Any, **kwargs: Any) -> AuthorizationSettings:
        # `AuthorizationSettings(source="sql", ...)` (and the bare default in broker.config)
        # builds the subclass; an unknown kind stays on the base, which then reports it.
        if cls is AuthorizationSettings:
            cls = _KINDS.get(kwargs.get("source", "file"), cls)
        return super().__new__(cls)

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if cls is AuthorizationSettings and isinstance(data, dict):
            kind = _KINDS.get(data.get("source", "file"))
            if kind is not None:
                return kind.model_validate(data)
        return handler(data)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # A field typed as the base would otherwise dump only the base's fields: serialize
        # again with the instance's own class (the context flag stops the recursion).
        context = info.context
        if type(self) is AuthorizationSettings or (isinstance(context, dict)
                                                   and context.get(_OWN_CLASS)):
            return handler(self)
        if context is not None and not isinstance(context, dict):
            return handler(self)
        return type(self).__pydantic_serializer__.to_python(
            self,
            mode=info.mode,
            by_alias=bool(info.by_alias),
            include=info.include,
            exclude=info.exclude,
            exclude_unset=info.exclude_unset,
            exclude_defaults=info.exclude_defaults,
            exclude_none=info.exclude_none,
            round_trip=info.round_trip,
            context={**(context or {}), _OWN_CLASS: True},
        )


class FileAuthorizationSettings(AuthorizationSettings):
    """A YAML file (see broker/authz/file.py for the format), reloaded when it changes."""

    source: Literal["file"] = "file"
    # Relative to the config file. Optional only so that a default settings object can
    # exist; opening a file source without a path is an error that names this key.
    path: str | None = None
    # At most this often (seconds) the file's modification time is checked on access.
    reload_interval: float = Field(2.0, ge=0, le=3600)


class SqlAuthorizationSettings(AuthorizationSettings):
    """A SQL database managed with `broker authz ...` (SQLite or PostgreSQL)."""

    source: Literal["sql"]
    # sqlite+aiosqlite:///path/authz.db or postgresql+asyncpg://user:${PW}@host/db
    url: str = Field(repr=False)
    pool_size: int = Field(5, ge=1, le=100)
    max_overflow: int = Field(5, ge=0, le=100)
    # Seconds a lookup may wait for a free pooled connection (within `timeout`).
    pool_timeout: float = Field(5.0, gt=0, le=60)
    # Connections older than this (seconds) are replaced, so idle firewalls cannot cut them.
    pool_recycle: int = Field(1800, ge=60)
    # Apply pending schema migrations when the source is first used. Convenient for one
    # replica and demos; with several replicas run `broker authz migrate` as a deploy step.
    auto_migrate: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(SQL_SCHEMES):
            raise ValueError(
                "must start with sqlite+aiosqlite:/// (SQLite) or postgresql+asyncpg:// (PostgreSQL)"
            )
        return v


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class HttpAuthorizationSettings(AuthorizationSettings):
    """An external system asked over JSON (contract in broker/authz/http.py)."""

    source: Literal["http"]
    url: str
    # Extra request headers, e.g. {"X-Api-Key": "${AUTHZ_KEY}"}.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    bearer_token: str | None = Field(None, repr=False, min_length=1)
    # A PEM bundle to trust instead of the system's CAs (relative to the config file).
    ca_bundle: str | None = None
    # Seconds an answer (including "unknown user") is reused without asking again.
    cache_ttl: float = Field(60.0, ge=0, le=3600)
    cache_size: int = Field(10_000, ge=1)
    # true: any error or timeout fails the login. false: on error an expired cached answer
    # up to `stale_ttl` seconds old may be reused; nothing never asked for is ever granted.
    fail_closed: bool = True
    stale_ttl: float = Field(900.0, ge=0, le=86400)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be an absolute https URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https (plain http is only allowed for localhost)")
        if parts.fragment:
            raise ValueError("must not contain a fragment")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if name.lower() in ("content-type", "content-length", "host"):
                raise ValueError(f"header {name!r} is set by the broker")
        return v


_KINDS: Mapping[str, type[AuthorizationSettings]] = MappingProxyType(
    {
        "file": FileAuthorizationSettings,
        "sql": SqlAuthorizationSettings,
        "http": HttpAuthorizationSettings,
    }
)

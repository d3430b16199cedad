"""The `authorization` settings: one flat block whose `source` chooses the kind."""

from __future__ import annotations

import pytest

from broker.authz.settings import (
    AuthorizationSettings,
    FileAuthorizationSettings,
    HttpAuthorizationSettings,
    SqlAuthorizationSettings,
)
from broker.config import ConfigError, Settings, parse_settings


def authz(block: dict, env: dict | None = None) -> AuthorizationSettings:
    return parse_settings({"issuer": "https://login.example.se", "authorization": block},
                          env=env or {}).authorization


def test_default_is_a_file_source() -> None:
    default = Settings(issuer="https://login.example.se").authorization
    assert isinstance(default, FileAuthorizationSettings)
    assert default.path is None and default.timeout == 3.0


def test_each_kind_resolves_to_its_class() -> None:
    assert isinstance(authz({"source": "file", "path": "a.yaml", "reload_interval": 5}),
                      FileAuthorizationSettings)
    sql = authz({"source": "sql", "url": "postgresql+asyncpg://u:${PW}@db/broker",
                 "pool_size": 3}, env={"PW": "secret"})
    assert isinstance(sql, SqlAuthorizationSettings)
    assert sql.url == "postgresql+asyncpg://u:secret@db/broker" and sql.pool_size == 3
    assert "secret" not in repr(sql)
    http = authz({"source": "http", "url": "https://hr.example.se/authz",
                  "bearer_token": "${TOKEN}", "fail_closed": False}, env={"TOKEN": "t0k"})
    assert isinstance(http, HttpAuthorizationSettings)
    assert http.bearer_token == "t0k" and http.fail_closed is False
    assert "t0k" not in repr(http)
    # Calling the base class builds the kind too (what broker.config's default does).
    assert isinstance(AuthorizationSettings(source="http", url="https://x.se/a"),
                      HttpAuthorizationSettings)


def test_dumping_settings_keeps_the_kind_fields() -> None:
    settings = parse_settings({"issuer": "https://login.example.se", "authorization": {
        "source": "sql", "url": "sqlite+aiosqlite:///a.db"}}, env={})
    dumped = settings.model_dump()["authorization"]
    assert dumped["url"] == "sqlite+aiosqlite:///a.db" and dumped["source"] == "sql"
    assert Settings.model_validate(settings.model_dump()).authorization == settings.authorization


def test_http_fails_closed_by_default() -> None:
    assert authz({"source": "http", "url": "https://x.se/a"}).fail_closed is True


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"source": "sql"}, "authorization.url: required key is missing"),
        ({"source": "sql", "url": "mysql://db/x"}, "authorization.url: must start with sqlite"),
        ({"source": "file", "url": "x"}, "authorization.url: unknown key"),
        ({"source": "ldap"}, "authorization.source: Input should be 'file', 'sql' or 'http'"),
        ({"source": "http", "url": "http://hr.example.se/a"}, "authorization.url: must use https"),
        ({"source": "http", "url": "https://x.se", "headers": {"Host": "y"}},
         "authorization.headers: header 'Host' is set by the broker"),
        ({"source": "file", "timeout": 0}, "authorization.timeout: Input should be greater than 0"),
        ({"source": "sql", "url": "sqlite+aiosqlite:///a", "pool_size": 0},
         "authorization.pool_size: Input should be greater than or equal to 1"),
    ],
)
def test_bad_settings_name_the_key(block: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        authz(block)
    assert message in str(err.value)

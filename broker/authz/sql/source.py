"""The SQL source: users and assignments in SQLite or PostgreSQL, managed by `broker authz`.

Every lookup runs under `asyncio.timeout(timeout)` (pool wait, connect and queries alike);
a timeout or any database error becomes AuthorizationSourceError, and the login fails
closed. The schema version is checked before the first lookup, so a database that was not
migrated is a clear message instead of a missing-table error at someone's login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..directory import identity_keys
from ..model import AuthorizationSourceError, SourceStatus, User
from . import queries
from .engine import create_engine
from .schema import SchemaError, check_version, migrate

if TYPE_CHECKING:
    from ...connectors.base import Identity
    from ..settings import SqlAuthorizationSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class SqlSource:
    """Looks users up in the database at every call (no cache: withdrawal takes effect now)."""

    def __init__(self, engine: AsyncEngine, *, timeout: float = 3.0,
                 auto_migrate: bool = False) -> None:
        self.engine = engine
        self.timeout = timeout
        self.auto_migrate = auto_migrate
        self._schema_checked = False

    @classmethod
    def from_settings(cls, settings: SqlAuthorizationSettings, base_dir: Path) -> SqlSource:
        engine = create_engine(
            settings.url,
            timeout=settings.timeout,
            base_dir=base_dir,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
        )
        return cls(engine, timeout=settings.timeout, auto_migrate=settings.auto_migrate)

    async def find_user(self, identity: Identity) -> User | None:
        pnr, hsa = identity_keys(identity)
        if not (pnr or hsa):
            return None
        return await self._run("find user", lambda conn: queries.find_user(conn, pnr, hsa))

    async def get_user(self, user_id: str) -> User | None:
        return await self._run("get user", lambda conn: queries.user_where(conn, "id", user_id))

    async def ping(self) -> None:
        self._schema_checked = False
        await self._run("ping", lambda conn: asyncio.sleep(0))

    def status(self) -> SourceStatus:
        return SourceStatus()  # asked live: never older than it should be

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def _run(self, what: str, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                if not self._schema_checked:
                    await self._check_schema()
                async with self.engine.connect() as conn:
                    return await query(conn)
        except TimeoutError:
            log.warning("authorization database: %s timed out after %s s", what, self.timeout)
            raise AuthorizationSourceError(
                f"the authorization database did not answer within {self.timeout} s"
            ) from None
        except SchemaError as exc:
            raise AuthorizationSourceError(str(exc)) from None
        except Exception as exc:
            # Whatever went wrong, the login fails closed; the log says what it was.
            log.warning("authorization database: %s failed: %s", what, type(exc).__name__,
                        exc_info=True)
            raise AuthorizationSourceError(
                f"the authorization database failed ({type(exc).__name__})"
            ) from exc

    async def _check_schema(self) -> None:
        if self.auto_migrate:
            async with self.engine.begin() as conn:
                applied = await migrate(conn)
            for m in applied:
                log.info("authorization database migrated to version %d (%s)", m.version,
                         m.description)
        else:
            async with self.engine.connect() as conn:
                await check_version(conn)
        self._schema_checked = True

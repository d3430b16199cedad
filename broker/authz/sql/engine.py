"""Building the SQLAlchemy engine for the SQL source and the admin CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def resolve_url(url: str, base_dir: Path | None) -> str:
    """A relative SQLite path is relative to the config file, like every other path in it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and base_dir is not None:
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            parsed = parsed.set(database=str(base_dir / database))
    return parsed.render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    timeout: float = 3.0,
    base_dir: Path | None = None,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 5.0,
    pool_recycle: int = 1800,
) -> AsyncEngine:
    """An async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Driver-level timeouts back up the `asyncio.timeout` around every query, so a stuck
    connection is also released on the database's side.
    """
    url = resolve_url(url, base_dir)
    backend = make_url(url).get_backend_name()
    # hide_parameters: database errors would otherwise quote personal numbers into logs.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if backend == "postgresql":
        options.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_recycle=pool_recycle,
            connect_args={"timeout": timeout, "command_timeout": timeout},
        )
    elif backend == "sqlite":
        options["connect_args"] = {"timeout": timeout}
    else:
        raise ValueError("the SQL source supports sqlite+aiosqlite and postgresql+asyncpg URLs")
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """Make SQLite transactions real, DDL included (the migrations rely on it).

    Python's sqlite3 module otherwise opens transactions only before DML and commits DDL on
    its own; this is the recipe from SQLAlchemy's SQLite dialect documentation.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

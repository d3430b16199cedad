"""The SQL source (SQLite or PostgreSQL through SQLAlchemy's asyncio engine)."""

from .engine import create_engine
from .schema import LATEST, MIGRATIONS, SchemaError, migrate
from .source import SqlSource

__all__ = ["LATEST", "MIGRATIONS", "SchemaError", "SqlSource", "create_engine", "migrate"]

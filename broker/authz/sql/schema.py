"""The database schema of the SQL source and its migrations.

Why not Alembic: the schema is a few tables owned by this package, and it must be applied the
same way by `broker authz migrate`, by `auto_migrate` at start-up and by the tests, on
SQLite and PostgreSQL. Alembic would add a dependency, an `env.py`, a script directory
shipped as package data and an ini file to locate it, for no gain at this size. Instead
`MIGRATIONS` is an ordered list of versioned DDL steps written in the subset of SQL both
databases accept. `migrate` applies the pending ones and records each in
`authz_schema_version`, all in one transaction: PostgreSQL and SQLite both have
transactional DDL, so a failed step leaves the database exactly as it was. On PostgreSQL a
transaction-scoped advisory lock serialises replicas that migrate at the same moment.

A migration, once released, is never edited: a change is a new entry at the end.
`Table` objects below describe the newest schema for queries only; they never create it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "users and assignments",
        (
            """
            CREATE TABLE users (
                id VARCHAR(64) NOT NULL PRIMARY KEY,
                personal_identity_number VARCHAR(12),
                hsa_id VARCHAR(64),
                given_name VARCHAR(200),
                family_name VARCHAR(200),
                email VARCHAR(254),
                active BOOLEAN NOT NULL DEFAULT TRUE,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL
            )
            """,
            # Every login looks a user up by one of these: unique, hence indexed.
            "CREATE UNIQUE INDEX users_personal_identity_number ON users (personal_identity_number)",
            "CREATE UNIQUE INDEX users_hsa_id ON users (hsa_id)",
            """
            CREATE TABLE assignments (
                user_id VARCHAR(64) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                id VARCHAR(64) NOT NULL,
                role_code VARCHAR(64) NOT NULL,
                role_name VARCHAR(200) NOT NULL,
                unit_id VARCHAR(64) NOT NULL,
                unit_name VARCHAR(200) NOT NULL,
                organization_id VARCHAR(64) NOT NULL,
                organization_name VARCHAR(200) NOT NULL,
                clients TEXT NOT NULL,
                valid_from DATE,
                valid_to DATE,
                username VARCHAR(128),
                extra TEXT,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (user_id, id)
            )
            """,
        ),
    ),
    Migration(
        2,
        "accounts, title, review dates, access requests",
        (
            "ALTER TABLE users ADD COLUMN title VARCHAR(200)",
            """
            CREATE TABLE user_accounts (
                user_id VARCHAR(64) NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                system VARCHAR(32) NOT NULL,
                username VARCHAR(128) NOT NULL,
                PRIMARY KEY (user_id, system)
            )
            """,
            # One user name in a care system belongs to one person.
            "CREATE UNIQUE INDEX user_accounts_system_username ON user_accounts (system, username)",
            "ALTER TABLE assignments ADD COLUMN review_due DATE",
            "ALTER TABLE assignments ADD COLUMN reviewed_at TIMESTAMP",
            "ALTER TABLE assignments ADD COLUMN reviewed_by VARCHAR(64)",
            "ALTER TABLE assignments ADD COLUMN reminded_at TIMESTAMP",
            "CREATE INDEX assignments_review_due ON assignments (review_due)",
            """
            CREATE TABLE access_requests (
                id VARCHAR(64) NOT NULL PRIMARY KEY,
                kind VARCHAR(16) NOT NULL,
                state VARCHAR(16) NOT NULL,
                organization_id VARCHAR(64) NOT NULL,
                user_id VARCHAR(64),
                assignment_id VARCHAR(64),
                payload TEXT NOT NULL,
                requested_by VARCHAR(64) NOT NULL,
                requested_by_name VARCHAR(200),
                requested_by_email VARCHAR(254),
                locale VARCHAR(8) NOT NULL,
                created_at TIMESTAMP NOT NULL,
                decided_at TIMESTAMP,
                decided_by VARCHAR(64),
                reason TEXT
            )
            """,
            "CREATE INDEX access_requests_state ON access_requests (state, organization_id)",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

metadata = MetaData()

schema_version = Table(
    "authz_schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("personal_identity_number", String(12)),
    Column("hsa_id", String(64)),
    Column("given_name", String(200)),
    Column("family_name", String(200)),
    Column("email", String(254)),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("title", String(200)),
)

user_accounts = Table(
    "user_accounts",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("system", String(32), primary_key=True),
    Column("username", String(128), nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("role_code", String(64), nullable=False),
    Column("role_name", String(200), nullable=False),
    Column("unit_id", String(64), nullable=False),
    Column("unit_name", String(200), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("organization_name", String(200), nullable=False),
    Column("clients", Text, nullable=False),
    Column("valid_from", Date),
    Column("valid_to", Date),
    Column("username", String(128)),
    Column("extra", Text),
    Column("created_at", DateTime, nullable=False),
    Column("review_due", Date),
    Column("reviewed_at", DateTime),
    Column("reviewed_by", String(64)),
    Column("reminded_at", DateTime),
)

access_requests = Table(
    "access_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("organization_id", String(64), nullable=False),
    Column("user_id", String(64)),
    Column("assignment_id", String(64)),
    Column("payload", Text, nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("requested_by_name", String(200)),
    Column("requested_by_email", String(254)),
    Column("locale", String(8), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("decided_at", DateTime),
    Column("decided_by", String(64)),
    Column("reason", Text),
)

_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS authz_schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    description VARCHAR(200) NOT NULL,
    applied_at TIMESTAMP NOT NULL
)
"""

# "broker" in ASCII: the key of the PostgreSQL advisory lock that serialises migrations.
_LOCK_KEY = 0x62726F6B6572


class SchemaError(Exception):
    """The database schema is not the one this broker needs."""


def now() -> datetime:
    """Timestamps are stored as naive UTC, which both databases keep as given."""
    return datetime.now(UTC).replace(tzinfo=None)


async def current_version(conn: AsyncConnection) -> int:
    """The applied schema version, 0 for an empty database."""
    has_table = await conn.run_sync(
        lambda sync_conn: sync_conn.dialect.has_table(sync_conn, "authz_schema_version")
    )
    if not has_table:
        return 0
    value = (await conn.execute(select(func.max(schema_version.c.version)))).scalar()
    return int(value or 0)


async def check_version(conn: AsyncConnection) -> None:
    """Raise SchemaError unless the database is at exactly the version this code needs."""
    version = await current_version(conn)
    if version < LATEST:
        raise SchemaError(
            f"the authorization database schema is at version {version}, this broker needs "
            f"{LATEST}: run `broker authz migrate`"
        )
    if version > LATEST:
        raise SchemaError(
            f"the authorization database schema is at version {version}, newer than this "
            f"broker knows ({LATEST}): upgrade the broker"
        )


async def migrate(conn: AsyncConnection) -> list[Migration]:
    """Apply the pending migrations on `conn`, which must be inside a transaction.

    Returns the migrations applied (empty when the schema was current).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    await conn.execute(text(_VERSION_DDL))
    version = await current_version(conn)
    if version > LATEST:
        raise SchemaError(
            f"the authorization database schema is at version {version}, newer than this "
            f"broker knows ({LATEST}): upgrade the broker"
        )
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        for statement in migration.statements:
            await conn.execute(text(statement))
        await conn.execute(
            schema_version.insert().values(
                version=migration.version, description=migration.description, applied_at=now()
            )
        )
        applied.append(migration)
    return applied

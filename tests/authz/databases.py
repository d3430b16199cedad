"""Real databases for the SQL source's tests: a throwaway PostgreSQL cluster (or
DATABASE_URL) and SQLite files. Imported by the conftest of every package that needs them
(tests/authz, tests/admin) as `from tests.authz.databases import ...`."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _asyncpg_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def _sqlalchemy_url(url: str) -> str:
    return "postgresql+asyncpg://" + _asyncpg_dsn(url).removeprefix("postgresql://")


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server: DATABASE_URL / POSTGRES_URL when set, else a cluster of our own."""
    given = os.environ.get("DATABASE_URL") or os.environ.get("POSTGRES_URL")
    if given:
        yield _sqlalchemy_url(given)
        return
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin or on PATH. "
            "Install it with `apt-get install -y postgresql`, or set DATABASE_URL."
        )
    root = Path(tempfile.mkdtemp(prefix="authz-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            pytest.fail(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}\n{log}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


_db_numbers = itertools.count()


@pytest.fixture
async def pg_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """An empty database of its own for one test."""
    name = f"authz_test_{os.getpid()}_{next(_db_numbers)}"
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'authz.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each SQL test runs against both databases."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")



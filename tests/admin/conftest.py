"""A broker with the admin app, the BankID simulator, a SQL source (SQLite and PostgreSQL),
real Redis and a real SMTP server (aiosmtpd) started here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from admin_support import AdminBroker, Outbox, Today, admin_config, seed

# The PostgreSQL cluster and per-test databases of the authorization tests.
from tests.authz.databases import db_url, pg_url, postgres_admin_url, sqlite_url  # noqa: F401
from tests.support.redis import free_port
from tests.support.server import serve


@pytest.fixture
def smtp() -> Iterator[Outbox]:
    """A real SMTP server on a free port that keeps every message it accepts."""
    from aiosmtpd.controller import Controller

    outbox = Outbox()
    controller = Controller(outbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    outbox.port = controller.port
    try:
        yield outbox
    finally:
        controller.stop()


@pytest.fixture
def admin_broker(db_url: str, smtp: Outbox, redis: str, tmp_path: Path) -> Iterator[AdminBroker]:  # noqa: F811
    from broker.app import create_app
    from broker.config import parse_settings
    from broker.store import open_store

    asyncio.run(seed(db_url))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = parse_settings(admin_config(issuer, redis, tmp_path, db_url, smtp.port),
                              str(tmp_path / "broker.yaml"))
    today = Today(date.today())
    app = create_app(settings, store=open_store(redis, settings.store.prefix), admin_today=today)
    with serve(app, port):
        yield AdminBroker(issuer, app, tmp_path, db_url, smtp, today)

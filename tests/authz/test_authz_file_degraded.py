"""A file source whose new version does not load keeps serving the last good data, but
says so everywhere an operator looks: an error log line naming the file and the line, a
metric with the time of the last good load, and a `degraded` detail in /readyz that keeps
the pod in service. A withdrawal in the broken version has not taken effect, and that
must be alarmed, not silent."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import httpx
from authz_support import USERS_YAML

from broker.app import create_app
from broker.config import parse_settings
from tests.support.fakes import FakeConnector
from tests.support.redis import free_port
from tests.support.server import serve

BROKEN_WITHDRAWAL = USERS_YAML.replace("        valid_to: 2027-12-31\n",
                                       "        valid_to: 2024-06-30\n  [oops\n", 1)


def bump(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def metric(app, name: str) -> float | None:
    for line in app.state.broker.metrics.exposition().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_a_broken_file_after_a_withdrawal_is_reported_and_the_last_good_data_kept(
        redis, tmp_path, caplog):
    authz = tmp_path / "authz.yaml"
    authz.write_text(USERS_YAML, encoding="utf-8")
    port = free_port()
    settings = parse_settings({
        "issuer": f"http://127.0.0.1:{port}",
        "store": {"url": redis, "prefix": f"fd{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp_path / "keys"), "generate": True},
        "audit": {"target": str(tmp_path / "audit.log")},
        "authorization": {"source": "file", "path": str(authz), "reload_interval": 0},
        "clients": [{"client_id": "lifecare", "client_name": "Lifecare",
                     "client_secret": "l" * 32, "redirect_uris": ["https://rp.example/cb"],
                     "scopes": ["openid"]}],
    }, str(tmp_path / "broker.yaml"))
    app = create_app(settings, connectors={"test": FakeConnector})
    with serve(app, port) as url, caplog.at_level(logging.ERROR):
        ready = httpx.get(url + "/readyz", timeout=10)
        assert ready.status_code == 200 and "degraded" not in ready.json()
        loaded = metric(app, "broker_authorization_last_good_load_timestamp_seconds")
        assert loaded and metric(app, "broker_authorization_degraded") == 0

        bump(authz, BROKEN_WITHDRAWAL)  # the operator withdraws, and breaks the file
        ready = httpx.get(url + "/readyz", timeout=10)
        assert ready.status_code == 200  # the pod stays in service
        detail = ready.json()["degraded"]["authorization"]
        assert str(authz) in detail and "line" in detail
        assert metric(app, "broker_authorization_degraded") == 1
        assert metric(app, "broker_authorization_last_good_load_timestamp_seconds") == loaded
        errors = [r for r in caplog.records if r.levelno == logging.ERROR
                  and str(authz) in r.getMessage()]
        assert errors and "NOT taken effect" in errors[0].getMessage()
        assert "line" in errors[0].getMessage()
        # The last good data still answers: the withdrawal has not taken effect.
        assert anna_valid_to(app) == "2027-12-31"

        bump(authz, USERS_YAML.replace("valid_to: 2027-12-31", "valid_to: 2024-06-30", 1))
        ready = httpx.get(url + "/readyz", timeout=10)
        assert ready.status_code == 200 and "degraded" not in ready.json()
        assert metric(app, "broker_authorization_degraded") == 0
        assert metric(app, "broker_authorization_last_good_load_timestamp_seconds") >= loaded
        assert anna_valid_to(app) == "2024-06-30"  # now it has


def anna_valid_to(app) -> str:
    users = app.state.broker.source.inner.users
    anna = next(u for u in users if u.id == "u-anna")
    return str(anna.assignments[0].valid_to)

"""`broker sessions list|revoke` as an operator runs it: a separate process against the
same Redis as the running broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sso_support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def broker_cli(sso, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "broker.cli", "sessions", *args,
                           "--config", str(sso.config_path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_list_and_revoke_by_user(sso):
    lifecare, mcss = sso.lifecare, sso.mcss
    with sso.browser() as browser:
        sso.visit(browser, lifecare)
        sso.visit(browser, mcss)
        sid = lifecare.last.claims["sid"]
        lc_refresh = lifecare.last.tokens["refresh_token"]

        listed = broker_cli(sso, "list", "--user", "u-anna", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {row["sid"]: row for row in json.loads(listed.stdout)}
        assert rows[sid]["clients"] == ["lifecare", "mcss"]
        assert rows[sid]["assignment"] == "a-anna-1"

        revoked = broker_cli(sso, "revoke", "--user", "u-anna")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        assert f"ended session {sid}" in revoked.stdout
        assert "lifecare=delivered" in revoked.stdout and "mcss=delivered" in revoked.stdout
        # The CLI waited for the deliveries: they are there already.
        assert lifecare.valid_logouts(sid) and mcss.valid_logouts(sid)

        assert "Fel: login_required" in sso.visit(browser, lifecare, prompt="none").text
    assert sso.refresh(lifecare, lc_refresh).json()["error"] == "invalid_grant"
    after = broker_cli(sso, "list", "--user", "u-anna", "--json")
    assert sid not in {row["sid"] for row in json.loads(after.stdout)}


def test_revoke_one_sid_leaves_the_other_session(sso):
    lifecare = sso.lifecare
    with sso.browser() as first, sso.browser() as second:
        sso.visit(first, lifecare)
        sid1 = lifecare.last.claims["sid"]
        sso.visit(second, lifecare)
        sid2 = lifecare.last.claims["sid"]
        assert sid1 != sid2

        # The listing names each session as the revoke command takes it, with '=' (a sid
        # may begin with '-', which argparse would read as a missing value).
        listing = broker_cli(sso, "list", "--user", "u-anna").stdout.split()
        assert f"--sid={sid1}" in listing and f"--sid={sid2}" in listing
        revoked = broker_cli(sso, "revoke", f"--sid={sid1}")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        wait_until(lambda: lifecare.valid_logouts(sid1), what="back-channel for sid1")
        assert not lifecare.valid_logouts(sid2)
        assert "Fel: login_required" in sso.visit(first, lifecare, prompt="none").text
        assert "Inloggad" in sso.visit(second, lifecare, prompt="none").text

    unknown = broker_cli(sso, "revoke", "--sid", "no-such-sid")
    assert unknown.returncode == 1 and "no live session" in unknown.stdout

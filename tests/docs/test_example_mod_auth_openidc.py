"""docs/integration.md's Apache example, exactly as printed: Debian's apache2 with
mod_auth_openidc, started here on a free port (as `nobody` when the test runs as root),
protects a small application; a person logs in through the broker with the BankID simulator
and the application sees the role and unit claims.

Needs Debian's apache2 and libapache2-mod-auth-openidc (`bash .ci/setup` installs them);
without them the test fails saying so, it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples import bankid_login, example, example_broker_app

from tests.support.redis import free_port
from tests.support.server import serve

MODULES = Path("/usr/lib/apache2/modules")
APACHE = "/usr/sbin/apache2"
#: The application behind Apache: prints what mod_auth_openidc handed it.
APP = """#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\n\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
env | grep '^OIDC_CLAIM_' | sort
"""
SERVER = """ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:info
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule cgi_module {modules}/mod_cgi.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
StartServers 1
MinSpareServers 1
MaxSpareServers 2
MaxRequestWorkers 8
ScriptAlias /lifecare/ "{root}/app/"
Include "{root}/openidc.conf"
"""


def _require_apache() -> None:
    missing = [str(p) for p in (Path(APACHE), MODULES / "mod_auth_openidc.so") if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install apache2 "
                    "libapache2-mod-auth-openidc (bash .ci/setup does it)", pytrace=False)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def apache(site: str, port: int, env: dict[str, str]) -> Iterator[Path]:
    """Apache on 127.0.0.1:`port` with `site` (mod_auth_openidc directives) and the app.

    Never as root: Apache itself would then switch to a `User`, so when the test runs as
    root the whole server runs as `nobody` from the start (setpriv), in a directory it owns.
    """
    _require_apache()
    root = Path(tempfile.mkdtemp(prefix="broker-apache-"))
    try:
        (root / "run").mkdir()
        (root / "app").mkdir()
        (root / "app" / "claims").write_text(APP)
        (root / "app" / "claims").chmod(0o755)
        (root / "openidc.conf").write_text(site)
        (root / "httpd.conf").write_text(SERVER.format(root=root, port=port, modules=MODULES))
        command = [APACHE, "-d", str(root), "-f", str(root / "httpd.conf"), "-DFOREGROUND"]
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in [root, *root.rglob("*")]:
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                       "--clear-groups", *command]
        proc = subprocess.Popen(command, env={"PATH": "/usr/sbin:/usr/bin:/bin", **env},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not _listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    out = proc.communicate()[0].decode(errors="replace")
                    log = root / "error.log"
                    pytest.fail(f"apache2 did not start:\n{out}\n"
                                f"{log.read_text(errors='replace') if log.exists() else ''}")
                time.sleep(0.05)
            yield root
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def lifecare(redis, tmp_path_factory):
    """The broker, and Apache configured with the guide's example (its example host names
    replaced by where the two run here)."""
    port = free_port()
    rp_base = f"http://127.0.0.1:{port}"
    broker, app = example_broker_app(redis, tmp_path_factory.mktemp("apache-example"), rp_base)
    site = (example("mod_auth_openidc")
            .replace("https://login.example.kommun.se", broker.issuer)
            .replace("https://lifecare.example.kommun.se", rp_base))
    env = {"LIFECARE_CLIENT_SECRET": broker.secret,
           "OIDC_CRYPTO_PASSPHRASE": secrets.token_urlsafe(32)}
    with serve(app, broker.port), apache(site, port, env) as root:
        yield rp_base, broker, root


def _claims(page: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in page.splitlines() if "=" in line)


def test_login_through_the_broker_shows_role_and_unit_in_the_app(lifecare):
    rp_base, broker, root = lifecare
    with httpx.Client(timeout=20) as browser:
        # Not logged in: Apache sends the browser to the broker's authorization endpoint.
        first = browser.get(f"{rp_base}/lifecare/claims")
        assert first.status_code == 302, first.text[:500]
        to_broker = httpx.URL(first.headers["location"])
        assert str(to_broker).startswith(broker.issuer + "/authorize?")
        assert to_broker.params["code_challenge_method"] == "S256"
        # BankID is the only method here: the broker shows its page straight away.
        login_page = browser.get(to_broker, follow_redirects=True)
        back = bankid_login(browser, login_page)
        # The code comes back to mod_auth_openidc, which redeems it and resumes the request.
        app = browser.get(back.headers["location"], follow_redirects=True)
    assert app.status_code == 200, f"{app.text[:2000]}\n{(root / 'error.log').read_text()[-3000:]}"
    claims = _claims(app.text)
    assert claims["REMOTE_USER"] == "u-anna"  # sub: the authorization source's user id
    assert claims["OIDC_CLAIM_commissionName"] == "Sjuksköterska"
    assert claims["OIDC_CLAIM_roleCode"] == "sjukskoterska"
    assert claims["OIDC_CLAIM_healthCareUnitHsaId"] == "SE2321000016-ABCD"
    assert claims["OIDC_CLAIM_healthCareUnitName"] == "Hemsjukvården Norr"
    assert claims["OIDC_CLAIM_healthCareProviderName"] == "Exempel kommun"
    assert claims["OIDC_CLAIM_acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
    assert "199001012385" not in app.text  # no personal number unless its scope is asked for


def test_the_app_is_closed_without_a_login(lifecare):
    rp_base, _, _ = lifecare
    answer = httpx.get(f"{rp_base}/lifecare/claims", headers={"Accept": "text/html"})
    assert answer.status_code == 302
    assert "OIDC_CLAIM" not in answer.text

"""Personal data at rest and in the browser: the audit log is the broker's alone (0600 in a
0700 directory); every cookie on an https issuer is `__Host-` and Secure, the language
cookie too."""

from __future__ import annotations

import os
import re
import stat
from http.cookies import SimpleCookie

import pytest
from starlette.testclient import TestClient

from broker.app import create_app
from broker.config import ConfigError, parse_settings
from broker.keys import KeyRing
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.rp import FakeRP

ISSUER = "https://login.example.se"
RP_CB = "https://rp.example/cb"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    KeyRing(directory, retention=600).generate_missing()
    return directory


def app_for(tmp_path, keys, redis, audit: str, issuer: str = ISSUER, **extra):
    settings = parse_settings({
        "issuer": issuer, "store": {"url": redis, "prefix": f"ca{os.getpid()}{id(tmp_path)}:"},
        "keys": {"dir": str(keys)}, "audit": {"target": audit},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "r" * 32,
                     "redirect_uris": [RP_CB], "post_logout_redirect_uris": ["https://rp.example/"]}],
        **extra,
    }, str(tmp_path / "broker.yaml"))
    return create_app(settings, source=FakeSource(default_users(("rp",))),
                      connectors={"test": FakeConnector})


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the audit log ---------------------------------------------------------------------------

def test_the_audit_file_is_the_brokers_alone(tmp_path, keys, redis):
    old = os.umask(0)  # the mode must not come from a friendly umask
    try:
        app = app_for(tmp_path, keys, redis, "audit/broker-audit.log")  # relative: to the config
    finally:
        os.umask(old)
    log = tmp_path / "audit" / "broker-audit.log"
    assert log.exists(), "opened at start-up"
    assert mode(log) == 0o600 and mode(log.parent) == 0o700
    with TestClient(app, base_url=ISSUER) as client:
        rp = FakeRP(ISSUER, "rp", RP_CB, "r" * 32)
        first = client.get("/authorize", params=rp.params(), follow_redirects=False)
        client.get(first.headers["location"], follow_redirects=False)
    assert "199001012385" in log.read_text()  # the only place a personal number is whole
    assert mode(log) == 0o600


def test_an_existing_audit_file_is_tightened(tmp_path, keys, redis):
    log = tmp_path / "audit.log"
    log.write_text('{"audit": "earlier"}\n')
    log.chmod(0o644)
    app_for(tmp_path, keys, redis, str(log))
    assert mode(log) == 0o600 and log.read_text().startswith('{"audit": "earlier"}')


def test_an_unwritable_audit_target_stops_start_up(tmp_path, keys, redis):
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "audit.log").mkdir()  # a directory where the file should be
    with pytest.raises(ConfigError, match=r"audit\.target: cannot write"):
        app_for(tmp_path, keys, redis, str(tmp_path / "ro" / "audit.log"))


# -- cookies -----------------------------------------------------------------------------------

def test_every_cookie_on_an_https_issuer_is_host_prefixed_and_secure(tmp_path, keys, redis):
    """A whole visit: login page, language switch both ways, SSO, a second client login,
    logout with its confirmation and the cookies it clears."""
    app = app_for(tmp_path, keys, redis, str(tmp_path / "audit.log"))
    seen: list[str] = []
    with TestClient(app, base_url=ISSUER) as client:
        def get(url, **kw):
            response = client.get(url, follow_redirects=False, **kw)
            seen.extend(response.headers.get_list("set-cookie"))
            return response

        rp = FakeRP(ISSUER, "rp", RP_CB, "r" * 32)
        first = get("/authorize", params=rp.params(ui_locales="sv"))
        txn = first.headers["location"]
        get(txn)                                          # login: broker_b, broker_sso
        get("/login/nothing-here-123?lang=en")            # language switch on a page
        get("/login/nothing-here-123?lang=sv")
        again = get("/authorize", params=rp.params(prompt="login"))
        get(again.headers["location"])
        confirm = client.post("/logout", data={"client_id": "rp"}, follow_redirects=False)
        seen.extend(confirm.headers.get_list("set-cookie"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text).group(1)
        out = client.post("/logout", data={"client_id": "rp", "confirm": "yes", "csrf": csrf},
                          follow_redirects=False)
        seen.extend(out.headers.get_list("set-cookie"))
    names = set()
    for header in seen:
        cookie = SimpleCookie()
        cookie.load(header)
        (name, morsel), = cookie.items()
        names.add(name)
        assert name.startswith("__Host-"), header
        assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"], header
        assert morsel["httponly"] and morsel["samesite"].lower() == "lax", header
    assert {"__Host-broker_b", "__Host-broker_sso", "__Host-broker_lang"} <= names


def test_the_language_cookie_is_read_back(tmp_path, keys, redis):
    app = app_for(tmp_path, keys, redis, str(tmp_path / "audit.log"))
    with TestClient(app, base_url=ISSUER) as client:
        switched = client.get("/login/nothing-here-123?lang=en")
        assert switched.headers["set-cookie"].startswith("__Host-broker_lang=en")
        later = client.get("/login/nothing-here-456")
        assert '<html lang="en">' in later.text

"""On an https issuer: HSTS, and `__Host-` cookies that are Secure, HttpOnly and SameSite."""

from starlette.testclient import TestClient

from broker.app import create_app
from broker.config import parse_settings
from broker.keys import KeyRing
from tests.support.fakes import FakeConnector, FakeSource, default_users
from tests.support.rp import FakeRP


def test_https_issuer_gets_hsts_and_host_prefixed_secure_cookies(tmp_path, redis):
    KeyRing(tmp_path / "keys", retention=600).generate_missing()  # keys.generate: loopback only
    settings = parse_settings({
        "issuer": "https://login.example.se",
        "store": {"url": redis, "prefix": "hygiene:"},
        "keys": {"dir": str(tmp_path / "keys")},
        "audit": {"target": str(tmp_path / "audit.log")},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "r" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
    }, str(tmp_path / "b.yaml"))
    app = create_app(settings, source=FakeSource(default_users(("rp",))),
                     connectors={"test": FakeConnector})
    with TestClient(app, base_url="https://login.example.se") as client:
        rp = FakeRP("https://login.example.se", "rp", "https://rp.example/cb", "r" * 32)
        first = client.get("/authorize", params=rp.params(), follow_redirects=False)
        assert "max-age=" in first.headers["strict-transport-security"]
        login = client.get(first.headers["location"], follow_redirects=False)
        cookies = login.headers.get_list("set-cookie")
        assert any(c.startswith("__Host-broker_b=") for c in cookies)
        assert any(c.startswith("__Host-broker_sso=") for c in cookies)
        for cookie in cookies:
            lowered = cookie.lower()
            assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
            assert "path=/" in lowered and "domain=" not in lowered
        assert login.headers["location"].startswith("https://rp.example/cb?code=")

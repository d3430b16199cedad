"""What the tested examples of docs/integration.md share: the examples as the guide prints
them, a real broker (Redis, the embedded BankID simulator approving as a test person) that
the examples log in to, and a person's BankID login driven over HTTP.

(A module of its own rather than conftest.py, so test files import it by a unique name.)
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc.jwk import ECKey

from broker.app import create_app
from broker.config import parse_settings
from broker.store import open_store
from tests.support.redis import free_port

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "integration.md"
DEMO_AUTHZ = ROOT / "broker" / "demo" / "authz.yaml"
#: The simulator's test person with one assignment (straight in, no picker).
ANNA = "199001012385"


def example(name: str) -> str:
    """The fenced block after `<!-- example: NAME -->` in docs/integration.md: the test runs
    exactly what the guide shows."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert match, f"docs/integration.md has no example {name!r}"
    return match.group(1)


@dataclass
class ExampleBroker:
    issuer: str
    port: int
    secret: str          # client `lifecare` (client_secret_basic: the Apache example)
    mcss_key: ECKey      # client `mcss` (private_key_jwt: the Authlib example)
    tmp: Path


def example_broker_app(redis: str, tmp: Path, rp_base: str) -> tuple[ExampleBroker, object]:
    """A broker as an operator would register the two example RPs, `rp_base` being where the
    RPs live (their redirect URIs)."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    shutil.copy(DEMO_AUTHZ, tmp / "authz.yaml")
    secret, key = secrets.token_urlsafe(32), ECKey.generate_key("P-256", auto_kid=True)
    settings = parse_settings({
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"x{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "audit": {"target": str(tmp / "audit.log")},
        "clients": [
            {"client_id": "lifecare", "client_name": "Lifecare", "client_secret": secret,
             "redirect_uris": [f"{rp_base}/oidc/redirect_uri"],
             "post_logout_redirect_uris": [f"{rp_base}/"],
             "backchannel_logout_uri": f"{rp_base}/oidc/redirect_uri?logout=backchannel",
             "scopes": ["openid", "profile", "assignments"]},
            {"client_id": "mcss", "client_name": "MCSS",
             "token_endpoint_auth_method": "private_key_jwt",
             "jwks": {"keys": [key.as_dict(private=False)]},
             "redirect_uris": [f"{rp_base}/callback"],
             "scopes": ["openid", "profile", "https://id.oidc.se/scope/naturalPersonNumber",
                        "assignments"]},
        ],
        "connectors": {"bankid": {"environment": "simulator", "simulator": {
            "auto_approve": ANNA, "auto_approve_delay": 0.5}}},
        "authorization": {"source": "file", "path": str(tmp / "authz.yaml")},
    }, str(tmp / "broker.yaml"))
    app = create_app(settings, store=open_store(redis, settings.store.prefix))
    return ExampleBroker(issuer, port, secret, key, tmp), app


def bankid_login(browser: httpx.Client, login_page: httpx.Response,
                 seconds: float = 30) -> httpx.Response:
    """From the broker's BankID page to wherever the broker sends the browser after the
    login (the RP's redirect URI), as the page's script does it: choose "BankID on another
    device", wait for the simulator to approve, follow `next`."""
    page = login_page.text
    assert login_page.status_code == 200, page[:500]
    action = re.search(r'action="(/login/bankid/[^"]+/start)"', page)
    assert action, f"not the BankID page:\n{page[:1000]}"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    base = login_page.url.copy_with(path="/", query=None)
    started = browser.post(str(base.join(action.group(1))), data={"csrf": csrf, "device": "other"})
    assert started.status_code == 303, started.text[:500]
    txn = action.group(1).split("/")[3]
    deadline = time.monotonic() + seconds
    while True:
        status = browser.get(str(base.join(f"/login/bankid/{txn}/status"))).json()
        if status.get("next"):
            break
        assert time.monotonic() < deadline, f"BankID order not approved: {status}"
        time.sleep(0.2)
    return browser.get(str(base.join(status["next"])), follow_redirects=False)

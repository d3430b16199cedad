"""A broker with two real relying parties (Lifecare, MCSS) that have back-channel
endpoints, and a third client whose back-channel endpoint hangs. Everything on loopback,
real Redis, the config also written to a file for the admin CLI."""

from __future__ import annotations

import re
import secrets
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import yaml
from sso_support import DORA_PNR, ERIK_PNR, BlackHole, RelyingParty

from broker.app import create_app
from broker.authz import User
from broker.config import parse_settings
from broker.store import open_store
from tests.conftest import _store_url
from tests.support.fakes import FakeConnector, FakeSource, assignment, default_users
from tests.support.redis import free_port
from tests.support.rp import FakeRP
from tests.support.server import serve

CLIENTS = ("lifecare", "mcss", "dead")


def sso_users() -> list[User]:
    lc, mc = ("lifecare",), ("mcss",)
    return [*default_users(CLIENTS),
            # One role-and-unit per system, with different assignment ids in each.
            User(id="u-dora", personal_identity_number=DORA_PNR, given_name="Dora",
                 family_name="Dahl",
                 assignments=(assignment("d-lc-chef", "chef", "U1", lc),
                              assignment("d-lc-hl", "handlaggare", "U2", lc),
                              assignment("d-mc-chef", "chef", "U1", mc),
                              assignment("d-mc-hl", "handlaggare", "U2", mc))),
            # What Erik picks in Lifecare does not exist in MCSS.
            User(id="u-erik", personal_identity_number=ERIK_PNR, given_name="Erik",
                 family_name="Ek",
                 assignments=(assignment("e-both", "chef", "U1", ("lifecare", "mcss")),
                              assignment("e-lc", "handlaggare", "U2", lc,
                                         valid_to=date(2099, 1, 1)),
                              assignment("e-mc", "sjukskoterska", "U3", mc)))]


class SsoBroker:
    def __init__(self, issuer, app, source, box, lifecare, mcss, hole, config_path):
        self.issuer = issuer
        self.app = app
        self.broker = app.state.broker
        self.source = source
        self.box = box
        self.lifecare: RelyingParty = lifecare
        self.mcss: RelyingParty = mcss
        self.hole: BlackHole = hole
        self.config_path: Path = config_path

    @property
    def logins(self) -> int:
        """How many upstream logins happened (the fake connector counts them)."""
        return self.box[0].logins

    def browser(self) -> httpx.Client:
        """A cookie-keeping client that follows redirects across broker and RPs."""
        return httpx.Client(timeout=15, follow_redirects=True)

    def visit(self, browser: httpx.Client, rp: RelyingParty, **params) -> httpx.Response:
        """Start a login at an RP (extra authorization parameters pass through)."""
        return browser.get(f"{rp.url}/start?{urlencode(params)}")

    def pick(self, browser: httpx.Client, page: httpx.Response, assignment_id: str) -> httpx.Response:
        assert "Välj roll och enhet" in page.text, page.text[:400]
        action = re.search(r'action="(/login/[^"]+/select)"', page.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return browser.post(self.issuer + action, data={"csrf": csrf, "assignment": assignment_id})

    def dead_rp(self) -> FakeRP:
        return FakeRP(self.issuer, "dead", "http://127.0.0.1:9/cb", "d" * 32)

    def refresh(self, rp: RelyingParty, refresh_token: str) -> httpx.Response:
        return httpx.post(self.issuer + "/token", auth=(rp.client_id, rp.secret),
                          data={"grant_type": "refresh_token", "refresh_token": refresh_token})


@pytest.fixture(scope="module", params=("redis", "sentinel", "cluster"))
def sso(request, tmp_path_factory):
    """Per Redis kind; not the memory store: the admin CLI tests need a store shared
    with the server process."""
    redis = _store_url(request, request.param)
    tmp = tmp_path_factory.mktemp("sso")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    lifecare = RelyingParty("Lifecare", "lifecare", "l" * 32, issuer, free_port())
    mcss = RelyingParty("MCSS", "mcss", "m" * 32, issuer, free_port())
    hole = BlackHole()
    config = {
        "issuer": issuer,
        "store": {"url": redis, "prefix": f"sso{secrets.token_hex(4)}:"},
        "keys": {"dir": str(tmp / "keys"), "generate": True},
        "pairwise_salt": "pairwise-salt-for-sso-tests-0123456789",
        "audit": {"target": str(tmp / "audit.log")},
        "session": {"idle_timeout": 3600, "absolute_timeout": 12 * 3600},
        # A short attempt, so the hanging endpoint costs the test run little.
        "backchannel": {"timeout": 1.5},
        "clients": [
            lifecare.client_config(),
            # MCSS: pairwise subjects and ES256, so logout tokens must follow both.
            mcss.client_config(subject_type="pairwise", id_token_signed_response_alg="ES256"),
            {"client_id": "dead", "client_name": "Nere", "client_secret": "d" * 32,
             "redirect_uris": ["http://127.0.0.1:9/cb"], "backchannel_logout_uri": hole.url},
        ],
    }
    config_path = tmp / "broker.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = parse_settings(config, str(config_path))
    source = FakeSource(sso_users())
    box: list[FakeConnector] = []

    def factory(ctx):
        box.append(FakeConnector(ctx))
        return box[-1]

    app = create_app(settings, store=open_store(redis, settings.store.prefix),
                     source=source, connectors={"test": factory})
    with serve(lifecare.app(), lifecare.port), serve(mcss.app(), mcss.port), serve(app, port):
        yield SsoBroker(issuer, app, source, box, lifecare, mcss, hole, config_path)
    hole.close()


@pytest.fixture(autouse=True)
def _restore_users(sso):
    """Tests withdraw authorizations and take the source down; undo that after each."""
    users = dict(sso.source.users)
    yield
    sso.source.users = users
    sso.source.down = False


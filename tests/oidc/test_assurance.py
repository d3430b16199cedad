"""Each login carries the LoA it reached; an acr the request demands (essential `acr`
claim, `acr_values`, the client's `default_acr_values`) is compared with that at fresh
login and at SSO reuse."""

from __future__ import annotations

import json

import pytest

from broker.app import create_app
from broker.config import ConfigError, parse_settings
from broker.connectors import LOA2, LOA3
from broker.store import MemoryStore
from tests.support.fakes import FakeConnector, FakeSource, default_users

LOA4 = "http://id.elegnamnden.se/loa/1.0/loa4"
ESSENTIAL_LOA3 = json.dumps({"id_token": {"acr": {"essential": True, "value": LOA3}}})


def acr_of(rp, code: str) -> str:
    return rp.verify(rp.token(code).json()["id_token"])["acr"]


def test_a_reserve_card_session_does_not_satisfy_essential_loa3(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        code = rp.login(browser, login_hint="reserve:199001012385", prompt="login")
        assert acr_of(rp, code) == LOA2  # the level reached, not the method's best
        silent = rp.callback(rp.authorize(browser, prompt="none", claims=ESSENTIAL_LOA3))
        assert silent["error"] == "login_required"
        before = stack.connector.logins
        code = rp.login(browser, claims=ESSENTIAL_LOA3)  # a fresh login, with an ordinary card
        assert stack.connector.logins == before + 1
        assert acr_of(rp, code) == LOA3
        # Now the LoA 3 session answers silently.
        assert "code" in rp.callback(rp.authorize(browser, prompt="none", claims=ESSENTIAL_LOA3))


def test_a_fresh_login_below_the_demanded_level_fails(stack):
    rp = stack.rp("required")
    for demand in ({"claims": ESSENTIAL_LOA3}, {"acr_values": LOA3}):
        with stack.browser() as browser:
            result = rp.callback(rp.authorize(browser, login_hint="reserve:199001012385",
                                              **demand))
        assert result["error"] == "unmet_authentication_requirements", demand
        assert "code" not in result


def test_acr_values_is_a_requirement_too(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        rp.login(browser, login_hint="reserve:199001012385", prompt="login")
        assert rp.callback(rp.authorize(browser, prompt="none", acr_values=LOA3))["error"] == \
            "login_required"
        # A request that accepts LoA 2 is answered by the LoA 2 session.
        code = rp.login(browser, prompt="none", acr_values=f"{LOA3} {LOA2}")
        assert acr_of(rp, code) == LOA2


def test_default_acr_values_of_the_client(stack):
    rp = stack.rp("loa3")
    with stack.browser() as browser:
        result = rp.callback(rp.authorize(browser, login_hint="reserve:199001012385"))
        assert result["error"] == "unmet_authentication_requirements"
    with stack.browser() as browser:
        stack.rp("required").login(browser, login_hint="reserve:199001012385")  # LoA 2 session
        before = stack.connector.logins
        assert acr_of(rp, rp.login(browser)) == LOA3
        assert stack.connector.logins == before + 1  # the session was not reused
        # The request's own values override the defaults (OIDC Registration 2).
        code = rp.login(browser, acr_values=LOA2, login_hint="reserve:199001012385")
        assert acr_of(rp, code) == LOA2


def test_a_level_no_method_gives_is_refused_at_once(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        result = rp.callback(rp.authorize(browser, acr_values=LOA4))
    assert result["error"] == "unmet_authentication_requirements"
    assert result["state"] == rp.last["state"]


def test_default_acr_values_no_method_gives_stop_start_up(tmp_path):
    config = {"issuer": "http://127.0.0.1:9", "keys": {"dir": str(tmp_path), "generate": True},
              "clients": [{"client_id": "a", "client_name": "A", "client_secret": "s" * 32,
                           "redirect_uris": ["https://rp.example/cb"],
                           "default_acr_values": [LOA4]}]}
    settings = parse_settings(config, "broker.yaml")
    with pytest.raises(ConfigError, match=r"clients\[0\]\.default_acr_values"):
        create_app(settings, store=MemoryStore(), source=FakeSource(default_users(("a",))),
                   connectors={"test": FakeConnector})

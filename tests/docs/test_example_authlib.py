"""docs/integration.md's Authlib example, exactly as printed, against a running broker:
start_login, a person's BankID login (the simulator approves as Anna), finish_login."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from examples import ANNA, bankid_login, example, example_broker_app

from tests.support.server import serve

RP_BASE = "https://mcss.example.kommun.se"  # never contacted: the test reads the redirect


@pytest.fixture(scope="module")
def mcss(redis, tmp_path_factory):
    broker, app = example_broker_app(redis, tmp_path_factory.mktemp("authlib-example"), RP_BASE)
    code = example("authlib").replace("https://login.example.kommun.se", broker.issuer)
    module: dict = {}
    exec(compile(code, "docs/integration.md#authlib", "exec"), module)
    with serve(app, broker.port):
        yield module, broker.mcss_key


def _login(module, key) -> tuple[str, dict]:
    url, saved = module["start_login"](key)
    with httpx.Client(timeout=20) as browser:
        back = bankid_login(browser, browser.get(url, follow_redirects=True))
    assert back.status_code in (302, 303), back.text[:500]
    callback = back.headers["location"]
    assert callback.startswith(f"{RP_BASE}/callback?")
    return callback, saved


def test_login_with_the_authlib_example(mcss):
    module, key = mcss
    callback, saved = _login(module, key)
    claims = module["finish_login"](key, callback, saved)
    assert claims["sub"] == "u-anna"
    assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == ANNA
    assert claims["roleCode"] == "sjukskoterska"
    assert claims["healthCareUnitHsaId"] == "SE2321000016-ABCD"
    assert claims["amr"] and claims["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"


def test_a_replayed_callback_is_refused(mcss):
    """The example surfaces the broker's answer to a second redemption of the same code."""
    module, key = mcss
    callback, saved = _login(module, key)
    module["finish_login"](key, callback, saved)
    with pytest.raises(OAuthError, match="invalid_grant"):
        module["finish_login"](key, callback, saved)


def test_a_callback_from_another_issuer_is_refused(mcss):
    module, key = mcss
    callback, saved = _login(module, key)
    forged = str(httpx.URL(callback).copy_set_param("iss", "https://evil.example"))
    with pytest.raises(ValueError, match="another issuer"):
        module["finish_login"](key, forged, saved)


def test_the_client_assertion_follows_the_private_key_jwt_rules(mcss):
    """What docs/integration.md says the broker requires of a client assertion: aud the
    token endpoint, exp at most 300 s after iat, a jti that is new every time."""
    from joserfc import jwt

    module, key = mcss
    client, meta = module["_client"](key)
    auth = client.client_auth(client.token_endpoint_auth_method)  # at the token endpoint
    first, second = (jwt.decode(module["ShortLivedPrivateKeyJWT"](
        meta["token_endpoint"], alg="ES256").sign(auth, meta["token_endpoint"]), key).claims
        for _ in range(2))
    assert first["aud"] == meta["token_endpoint"]
    assert first["iss"] == first["sub"] == "mcss"
    assert 0 < first["exp"] - first["iat"] <= 300
    assert first["jti"] != second["jti"]

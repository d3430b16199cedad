"""Per-client PKCE: required by default (and always for public clients), optional for a
confidential client that says so; plain never; discovery the same either way."""

from __future__ import annotations

from broker.config import ClientSettings
from broker.oidc.clients import Client
from broker.oidc.server import S256Only


def test_optional_client_without_pkce_relies_on_nonce(stack):
    rp = stack.rp("optional")
    with stack.browser() as browser:
        code = rp.login(browser, code_challenge=None, code_challenge_method=None, nonce="n-123")
    tokens = rp.token(code, verifier=None)
    assert tokens.status_code == 200, tokens.text
    assert rp.verify(tokens.json()["id_token"])["nonce"] == "n-123"


def test_optional_client_that_sends_pkce_is_held_to_it(stack):
    rp = stack.rp("optional")
    with stack.browser() as browser:
        code = rp.login(browser)
    assert rp.token(code, verifier=None).json()["error"] == "invalid_request"
    with stack.browser() as browser:
        code = rp.login(browser)
    assert rp.token(code, verifier="x" * 50).json()["error"] == "invalid_grant"
    # A verifier for a code issued without a challenge is refused too (RFC 9700 4.8).
    with stack.browser() as browser:
        code = rp.login(browser, code_challenge=None, code_challenge_method=None)
    assert rp.token(code, verifier="x" * 50).json()["error"] == "invalid_request"


def test_required_client_without_pkce_is_refused(stack):
    rp = stack.rp("required")
    with stack.browser() as browser:
        result = rp.callback(rp.authorize(browser, code_challenge=None, code_challenge_method=None))
    assert result["error"] == "invalid_request" and "PKCE is required" in result["error_description"]
    assert result["state"] == rp.last["state"]


def test_plain_is_refused_even_when_pkce_is_optional(stack):
    for client_id in ("optional", "required"):
        rp = stack.rp(client_id)
        with stack.browser() as browser:
            result = rp.callback(rp.authorize(browser, code_challenge="a" * 43,
                                              code_challenge_method="plain"))
        assert result["error"] == "invalid_request", client_id
        with stack.browser() as browser:  # no method means plain (RFC 7636 4.3)
            result = rp.callback(rp.authorize(browser, code_challenge_method=None))
        assert result["error"] == "invalid_request", client_id


def test_prompt_none_without_session_is_login_required_not_pkce(stack):
    rp = stack.rp("optional")
    with stack.browser() as browser:
        result = rp.callback(rp.authorize(browser, prompt="none", code_challenge=None,
                                          code_challenge_method=None))
    assert result["error"] == "login_required"


def test_public_clients_always_need_pkce():
    """No auth method `none` is configurable today; the policy still forces PKCE on one."""
    def settings(**kw):
        return ClientSettings.model_construct(**{"client_id": "x", "pkce": "optional", **kw})

    assert S256Only.required_for(Client(settings(token_endpoint_auth_method="none")))
    assert not S256Only.required_for(Client(settings(token_endpoint_auth_method="client_secret_basic")))
    assert S256Only.required_for(Client(settings(token_endpoint_auth_method="private_key_jwt",
                                                 pkce="required")))


def test_discovery_is_the_same_for_every_policy(stack):
    meta = stack.rp("optional").http.get("/.well-known/openid-configuration").json()
    assert meta["code_challenge_methods_supported"] == ["S256"]

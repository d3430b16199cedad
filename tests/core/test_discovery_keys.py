"""Discovery, JWKS and signing keys as a relying party sees them."""

import json
import multiprocessing
import os
import stat
import time
from pathlib import Path

import httpx

from broker.keys import KeyRing


def test_discovery_lists_every_field_the_swedish_profile_needs(broker_server):
    resp = httpx.get(broker_server.issuer + "/.well-known/openid-configuration")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    meta = resp.json()
    assert meta["issuer"] == broker_server.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["claims_parameter_supported"] is True
    assert meta["request_parameter_supported"] is True
    assert set(meta["ui_locales_supported"]) == {"sv", "en"}
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert {"RS256", "ES256"} <= set(meta["token_endpoint_auth_signing_alg_values_supported"])
    assert "none" not in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert meta["response_types_supported"] == ["code"]
    assert "http://id.elegnamnden.se/loa/1.0/loa3" in meta["acr_values_supported"]
    assert {"public", "pairwise"} == set(meta["subject_types_supported"])
    assert "openid" in meta["scopes_supported"]
    for field in ("token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
                  "claims_supported", "revocation_endpoint", "introspection_endpoint"):
        assert meta[field]


def test_jwks_has_kid_on_every_public_key_and_cache_control(broker_server):
    resp = httpx.get(broker_server.issuer + "/jwks")
    assert resp.status_code == 200
    assert "max-age=" in resp.headers["cache-control"]
    keys = resp.json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    for key in keys:
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private material published"
    # The active and the pre-published next key of each algorithm.
    assert len(keys) == 4


def test_key_files_are_private(broker_server):
    directory = broker_server.broker.keyring.directory
    files = list(directory.glob("*.json"))
    assert files
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600


def test_rotation_keeps_old_tokens_verifiable_and_signs_with_new_kid(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        old = rp.token(rp.login(browser)).json()["id_token"]
    old_kid = json.loads(httpx._utils.to_str(__import__("base64").urlsafe_b64decode(old.split(".")[0] + "==")))["kid"]
    keyring = broker_server.broker.keyring
    next_kid = next(k.kid for k in keyring.keys if k.alg == "RS256" and k.state == "next")
    # Rotation done by the CLI on the shared directory; the server follows.
    KeyRing(keyring.directory, keyring.retention).rotate()
    keyring._checked = 0
    time.sleep(0.01)
    keyring.refresh(interval=0)
    with broker_server.browser() as browser:
        new = rp.token(rp.login(browser)).json()["id_token"]
    header = json.loads(__import__("base64").urlsafe_b64decode(new.split(".")[0] + "=="))
    assert header["kid"] == next_kid != old_kid
    # An RP that fetches the JWKS now verifies both.
    assert rp.verify(old)["sub"] == rp.verify(new)["sub"]


def _generate_and_report(directory: str, start: float) -> tuple[bytes, list[str]]:
    while time.time() < start:  # every process generates at the same moment
        pass
    ring = KeyRing(Path(directory), retention=600)
    ring.generate_missing()
    ring.load()
    return ring.secrets[0], tuple(sorted(k.kid for k in ring.keys))


def test_workers_generating_keys_together_end_with_one_set(tmp_path):
    """`broker serve --workers N` with keys.generate: the workers start at once on an empty
    keys directory. They must all end with the same secret and keys, or a record one worker
    sealed is unreadable to the next (the benchmark's logins failed with 410)."""
    start = time.time() + 1.0
    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = pool.starmap(_generate_and_report, [(str(tmp_path / "keys"), start)] * 6)
    assert len(set(results)) == 1
    _secret, kids = results[0]
    assert len(kids) == 4  # an active and a next key for RS256 and ES256

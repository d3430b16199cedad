"""Scale-out: replicas keep nothing of their own. Two `broker serve` processes share one
Redis; a login begun on one finishes on the other, and a replica killed in the middle of a
login loses nothing."""

from __future__ import annotations

import httpx
import pytest
from ops_helpers import ANNA, BERTIL, REDIRECT, SECRET, Login, Replica, write_config

from tests.support.redis import free_port


@pytest.fixture(scope="module")
def pair(redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaleout")
    port_a, port_b = free_port(), free_port()
    # One config for both, as behind a load balancer: same issuer, keys and store prefix.
    cfg = write_config(tmp, issuer=f"http://127.0.0.1:{port_a}", store_url=redis,
                       metrics_port=free_port())
    cfg_b = tmp / "broker-b.yaml"
    cfg_b.write_text(cfg.read_text().replace(f"port: {_metrics_port(cfg)}",
                                             f"port: {free_port()}"))
    a = Replica(cfg, port=port_a).start()
    b = Replica(cfg_b, port=port_b).start()
    yield a, b
    a.stop()
    b.stop()


def _metrics_port(cfg) -> int:
    import yaml

    return yaml.safe_load(cfg.read_text())["metrics"]["port"]


def test_login_begun_on_a_finishes_on_b(pair):
    a, b = pair
    login = Login(BERTIL)
    login.authorize(a.url)
    login.open(a.url)  # binds this browser; shows the role picker

    # The binding is in the store, so B refuses another browser ...
    stranger = httpx.post(b.url + login.txn_path + "/select",
                          data={"csrf": login.csrf, "assignment": "a-b-2"})
    assert stranger.status_code == 403
    # ... and accepts this one: B issues the code, A redeems it.
    login.select(b.url)
    tokens = login.redeem(a.url)
    assert tokens["id_token"]

    # The refresh token from A works at B.
    refreshed = httpx.post(b.url + "/token", auth=("rp-basic", SECRET), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    # Single use holds across replicas: B refuses the same code (and revokes its tokens).
    again = httpx.post(b.url + "/token", auth=("rp-basic", SECRET), data={
        "grant_type": "authorization_code", "code": login.code, "redirect_uri": REDIRECT,
        "code_verifier": login.verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    revoked = httpx.post(a.url + "/token", auth=("rp-basic", SECRET), data={
        "grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]})
    assert revoked.status_code == 400


def test_replica_killed_mid_login_loses_nothing(pair):
    a, b = pair
    plain = Login(ANNA)
    plain.authorize(a.url)
    picker = Login(BERTIL)
    picker.authorize(a.url)
    picker.open(a.url)

    a.kill()  # SIGKILL: no shutdown at all
    a.start()

    plain.open(a.url)
    plain.redeem(a.url)
    picker.select(a.url)
    picker.redeem(b.url)

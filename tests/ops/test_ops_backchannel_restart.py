"""Back-channel logout notifications survive the death of the replica that owed them.

A `broker serve` process answers 20 logouts while the RP's back-channel endpoint refuses
connections, and is killed (SIGKILL) with every notification still owed. The RP comes
back; another replica, started on the same Redis, delivers every one of them."""

from __future__ import annotations

import signal
import time

import httpx
from ops_helpers import ANNA, Login, Replica, write_config

from tests.support.logout_receiver import LogoutReceiver
from tests.support.redis import free_port


def test_a_killed_replica_s_pending_logouts_are_delivered_by_another(redis, tmp_path):
    port_a = free_port()
    receiver = LogoutReceiver(f"http://127.0.0.1:{port_a}", "rp-basic")
    cfg = write_config(tmp_path, issuer=f"http://127.0.0.1:{port_a}", store_url=redis,
                       metrics_port=free_port(), backchannel_uri=receiver.uri,
                       backchannel={"lease": 5, "timeout": 3.0})
    a = Replica(cfg, port=port_a).start()
    sids = []
    try:
        for _ in range(20):
            login = Login(ANNA)
            login.authorize(a.url)
            login.open(a.url)
            tokens = login.redeem(a.url)
            bye = login.browser.get(a.url + "/logout",
                                    params={"id_token_hint": tokens["id_token"]})
            assert bye.status_code == 200
            sids.append(_sid(tokens["id_token"]))
            login.close()
        a.signal(signal.SIGKILL)
        a.wait(10)
    finally:
        a.kill()
    assert receiver.sids == []
    # The issuer stays the same (both replicas sit behind one name in production); the RP
    # verifies the tokens against it, so B takes A's port once A is gone.
    b = Replica(cfg, port=port_a, metrics_port=free_port()).start()
    try:
        with receiver.up():
            deadline = time.monotonic() + 30  # within a lease and a backoff or two
            while len(receiver.sids) < 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert sorted(set(receiver.sids)) == sorted(sids), (len(receiver.sids), receiver.bad)
            assert receiver.bad == []
        assert httpx.get(b.url + "/readyz", timeout=10).status_code == 200
    finally:
        b.stop()


def _sid(id_token: str) -> str:
    import base64
    import json

    body = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sid"]

"""Back-channel logout is durable: an RP that is away gets every notification when it
comes back, and one that stays away is given up on loudly after the deadline. The courier
runs on a clock the test moves (no sleeping through backoffs)."""

from __future__ import annotations

import logging
import time

from tests.support.brokers import running_broker
from tests.support.fakes import FakeSource, default_users
from tests.support.logout_receiver import LogoutReceiver
from tests.support.redis import free_port
from tests.support.rp import FakeRP

REDIRECT = "https://lifecare.example/cb"
CLIENTS = ("rp-basic", "rp-post", "rp-jwt", "rp-flat", "lifecare")


def wait_for(check, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def metric(b, outcome: str) -> float:
    text = b.broker.metrics.exposition().decode()
    for line in text.splitlines():
        if line.startswith(f'broker_backchannel_deliveries_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


def logins_and_logouts(b, rp: FakeRP, count: int) -> list[str]:
    sids = []
    for _ in range(count):
        with b.browser() as browser:
            tokens = rp.token(rp.login(browser)).json()
            assert browser.get("/logout", params={"id_token_hint": tokens["id_token"]}).status_code == 200
        sids.append(rp.verify(tokens["id_token"])["sid"])
    return sids


def broker_with_lifecare(redis, tmp_path, clock, **backchannel):
    port = free_port()
    receiver = LogoutReceiver(f"http://127.0.0.1:{port}", "lifecare")
    client = {"client_id": "lifecare", "client_name": "Lifecare", "client_secret": "l" * 32,
              "redirect_uris": [REDIRECT], "backchannel_logout_uri": receiver.uri}
    broker = running_broker(redis, tmp_path, clock=clock, port=port, extra_clients=[client],
                            source=FakeSource(default_users(CLIENTS)),
                            backchannel={"timeout": 5.0, **backchannel})
    return receiver, broker


def test_an_rp_away_for_30_seconds_gets_every_notification_when_it_is_back(redis, tmp_path, clock):
    receiver, broker = broker_with_lifecare(redis, tmp_path, clock)
    with broker as b:
        rp = FakeRP(b.issuer, "lifecare", REDIRECT, "l" * 32)
        sids = logins_and_logouts(b, rp, 20)
        wait_for(lambda: metric(b, "retried") >= 20)  # each tried once: connection refused
        for _ in range(6):  # 30 s away, in steps of 5
            clock.advance(5)
            time.sleep(0.3)
        assert receiver.sids == [] and metric(b, "given_up") == 0
        with receiver.up():
            clock.advance(60)  # past every pause so far
            wait_for(lambda: len(receiver.sids) >= 20)
            assert sorted(receiver.sids) == sorted(sids) and receiver.bad == []
            wait_for(lambda: 'broker_backchannel_pending 0.0' in
                     b.broker.metrics.exposition().decode())
        assert metric(b, "delivered") == 20


def test_an_rp_that_stays_away_is_given_up_on_loudly(redis, tmp_path, clock, caplog):
    receiver, broker = broker_with_lifecare(redis, tmp_path, clock, deadline=60)
    with broker as b, caplog.at_level(logging.ERROR):
        rp = FakeRP(b.issuer, "lifecare", REDIRECT, "l" * 32)
        sid = logins_and_logouts(b, rp, 1)[0]
        wait_for(lambda: metric(b, "retried") >= 1)
        clock.advance(61)
        wait_for(lambda: metric(b, "given_up") == 1)
        given_up = [r for r in caplog.records if "given up" in r.getMessage()]
        assert len(given_up) == 1 and sid in given_up[0].getMessage()
        assert given_up[0].levelno == logging.ERROR
        with receiver.up():
            clock.advance(600)
            time.sleep(1.5)
        assert receiver.sids == []  # gone from the outbox

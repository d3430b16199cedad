"""Outages are not revocations; retries are not replays.

A real Redis behind a TCP proxy that loses replies or goes down, a real HTTP
authorization service that fails or stops, and the broker has to keep every grant."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker.authz.http import HttpSource
from broker.store import scripts
from tests.grants.grants_support import login, refresh, userinfo
from tests.sso.sso_support import RelyingParty
from tests.support.brokers import Gate, running_broker
from tests.support.fakes import FakeSource, default_users
from tests.support.proxy import redis_proxy
from tests.support.redis import free_port, redis_server
from tests.support.server import running

REDEMPTION = b"if not value then return 0 end"  # a piece of the redemption script
TAKE = b"return string.sub(done, string.find"  # a piece of the take script (logout uses it)
assert REDEMPTION.decode() in scripts.TAKE_AND_PUT and TAKE.decode() in scripts.TAKE
assert REDEMPTION.decode() not in scripts.TAKE + scripts.UNDO_TAKE
assert TAKE.decode() not in scripts.TAKE_AND_PUT + scripts.UNDO_TAKE


class AuthzService:
    """The authorization service an HTTP source asks: answers, fails with 500, or is gone."""

    def __init__(self) -> None:
        users = {u.id: u for u in default_users(("rp-basic", "rp-post", "rp-jwt", "rp-flat"))}
        self.users = {uid: _as_json(u) for uid, u in users.items()}
        self.status: int | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/authz"

    async def authz(self, request: Request) -> Response:
        body = await request.json()
        if self.status is not None:
            return Response("failure", status_code=self.status)
        if body.get("ping"):
            return Response(status_code=204)
        for user in self.users.values():
            if body.get("user_id") == user["id"] or (
                    body.get("personal_identity_number")
                    and body["personal_identity_number"] == user["personal_identity_number"]):
                return JSONResponse(user)
        return JSONResponse({"error": "unknown user"}, status_code=404)

    def config(self) -> uvicorn.Config:
        return uvicorn.Config(Starlette(routes=[Route("/authz", self.authz, methods=["POST"])]),
                              host="127.0.0.1", port=self.port, log_level="warning",
                              lifespan="off", timeout_graceful_shutdown=1)


def _as_json(user) -> dict:
    return {"id": user.id, "personal_identity_number": user.personal_identity_number,
            "hsa_id": user.hsa_id, "given_name": user.given_name,
            "family_name": user.family_name, "email": user.email,
            "assignments": [{"id": a.id, "role": {"code": a.role.id, "name": a.role.name},
                             "unit": {"id": a.unit.id, "name": a.unit.name},
                             "organization": {"id": a.organization.id, "name": a.organization.name},
                             "clients": sorted(a.clients),
                             "valid_to": a.valid_to.isoformat() if a.valid_to else None}
                            for a in user.assignments]}


def test_an_http_source_outage_then_recovery_keeps_the_grant(redis, tmp_path):
    service = AuthzService()
    with running(service.config()):
        source = HttpSource(service.url, timeout=1.0, cache_ttl=0)
        with running_broker(redis, tmp_path, source=source) as b:
            rp, first = login(b)
            service.status = 500
            for _ in range(3):
                refused = refresh(rp, first["refresh_token"])
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "temporarily_unavailable"
                assert int(refused.headers["retry-after"]) > 0
            assert userinfo(rp, first["access_token"]) == 200  # nothing was revoked
            service.status = None
            assert refresh(rp, first["refresh_token"]).status_code == 200
    # Stopped altogether (connection refused): the same.
    with running_broker(redis, tmp_path / "2", source=HttpSource(service.url, timeout=1.0,
                                                                 cache_ttl=0)) as b:
        with running(service.config()):
            rp, first = login(b)
        refused = refresh(rp, first["refresh_token"])
        assert refused.status_code == 503 and refused.json()["error"] == "temporarily_unavailable"
        with running(service.config()):
            assert refresh(rp, first["refresh_token"]).status_code == 200


def test_a_definite_no_from_the_source_still_withdraws(redis, tmp_path):
    service = AuthzService()
    with running(service.config()):
        source = HttpSource(service.url, timeout=1.0, cache_ttl=0)
        with running_broker(redis, tmp_path, source=source) as b:
            rp, first = login(b)
            del service.users["u-anna"]  # 404: the person is gone
            assert refresh(rp, first["refresh_token"]).json()["error"] == "invalid_grant"
            service.users = AuthzService().users
            assert refresh(rp, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_redis_outage_then_recovery_keeps_the_grant(redis, tmp_path):
    with redis_proxy(redis) as proxy, \
            running_broker(proxy.url, tmp_path, store_timeout=0.5) as b:
        rp, first = login(b)
        proxy.set_down(True)
        refused = refresh(rp, first["refresh_token"])
        assert refused.status_code == 503 and refused.json()["error"] == "temporarily_unavailable"
        assert "retry-after" in refused.headers
        proxy.set_down(False)
        assert refresh(rp, first["refresh_token"]).status_code == 200


def test_prompt_none_during_a_source_outage_goes_back_to_the_rp(redis, tmp_path):
    with running_broker(redis, tmp_path) as b:
        rp = b.rp()
        with b.browser() as browser:
            rp.login(browser)  # an SSO session
            b.source.down = True
            try:
                answer = rp.callback(rp.authorize(browser, prompt="none"))
            finally:
                b.source.down = False
        assert answer["error"] == "temporarily_unavailable"
        assert answer["state"] == rp.last["state"]


@pytest.mark.parametrize("mode", ["close", "hang"])
def test_a_redemption_whose_reply_was_lost_succeeds_exactly_once(redis, tmp_path, mode):
    with redis_proxy(redis) as proxy, \
            running_broker(proxy.url, tmp_path, store_timeout=0.5) as b:
        rp = b.rp()
        with b.browser() as browser:
            code = rp.login(browser)
        proxy.lose_reply_to(REDEMPTION, mode)
        tokens = rp.token(code)
        assert proxy.dropped == 1, "the fault did not happen"
        assert tokens.status_code == 200, tokens.text
        assert userinfo(rp, tokens.json()["access_token"]) == 200
        assert refresh(rp, tokens.json()["refresh_token"]).status_code == 200
        # A real replay is still one: refused, and what the code produced is revoked.
        assert rp.token(code).json()["error"] == "invalid_grant"
        assert userinfo(rp, tokens.json()["access_token"]) == 401


def test_a_logout_whose_reply_was_lost_still_ends_the_session_and_tells_the_rp(redis, tmp_path):
    with redis_proxy(redis) as proxy:
        port = free_port()
        lifecare = RelyingParty("Lifecare", "lifecare", "l" * 32, f"http://127.0.0.1:{port}",
                                free_port())
        source_users = default_users(("rp-basic", "lifecare"))
        with running_broker(proxy.url, tmp_path, store_timeout=0.5,
                            source=FakeSource(source_users),
                            extra_clients=[lifecare.client_config()], port=port) as b, \
                running(uvicorn.Config(lifecare.app(), host="127.0.0.1", port=lifecare.port,
                                       log_level="warning", lifespan="off")):
            with httpx.Client(timeout=15, follow_redirects=True) as browser:
                page = browser.get(lifecare.url + "/start")
                assert page.status_code == 200, page.text[:300]
                sid = lifecare.last.claims["sid"]
                proxy.lose_reply_to(TAKE, "close")
                bye = browser.get(b.issuer + "/logout", params={
                    "id_token_hint": lifecare.last.tokens["id_token"],
                    "post_logout_redirect_uri": lifecare.bye_uri})
                assert bye.status_code == 200
            assert proxy.dropped == 1, "the fault did not happen"
            deadline = time.monotonic() + 10
            while not lifecare.valid_logouts(sid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(lifecare.valid_logouts(sid)) == 1
            assert refresh_lifecare(b.issuer, lifecare).json()["error"] == "invalid_grant"


def refresh_lifecare(issuer: str, rp: RelyingParty) -> httpx.Response:
    return httpx.post(issuer + "/token", auth=(rp.client_id, rp.secret),
                      data={"grant_type": "refresh_token",
                            "refresh_token": rp.last.tokens["refresh_token"]})


def test_the_loser_of_two_concurrent_redemptions_revokes_the_winner(redis, tmp_path):
    """Both arrive while the code is still pending and collide at the atomic take: one
    takes it, the other finds it gone. That is a replay: what the code produced ends."""
    with running_broker(redis, tmp_path, wrap=lambda s: Gate(s, "take_and_put", 2)) as b:
        rp = b.rp()
        with b.browser() as browser:
            code = rp.login(browser)
        data, auth = rp.client_auth()
        data.update({"grant_type": "authorization_code", "code": code,
                     "redirect_uri": rp.redirect_uri, "code_verifier": rp.verifier})
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: httpx.post(b.issuer + "/token", data=data,
                                                         auth=auth, timeout=20), range(2)))
        assert sorted(a.status_code for a in answers) == [200, 400]
        won = next(a.json() for a in answers if a.status_code == 200)
        lost = next(a.json() for a in answers if a.status_code == 400)
        assert lost["error"] == "invalid_grant"
        assert userinfo(rp, won["access_token"]) == 401
        assert refresh(rp, won["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_redemption_no_replica_confirmed_is_a_503_and_its_retry_gets_the_tokens(tmp_path):
    """Right after a fail-over the new master has no replica in sync: the redemption's
    script runs on it, no replica confirms it within the store's patience, and the RP gets
    a 503. Its retry with the same code is not a replay: it gets tokens, once."""
    with redis_server() as (master_url, _), redis_server() as (replica_url, replica):
        master = int(master_url.rsplit(":", 1)[1].split("/")[0])
        _cli(replica_url, "replicaof", "127.0.0.1", str(master))
        _until(lambda: "master_link_status:up" in _cli(replica_url, "info", "replication"))
        with running_broker(master_url, tmp_path,
                            store={"replicas": 1, "replica_timeout": 0.1}) as b:
            rp = b.rp()
            with b.browser() as browser:
                code = rp.login(browser)
            replica.send_signal(signal.SIGSTOP)  # acknowledges nothing until SIGCONT
            try:
                first = rp.token(code)
            finally:
                replica.send_signal(signal.SIGCONT)
            assert first.status_code == 503, first.text
            assert first.json()["error"] == "temporarily_unavailable"
            retry = rp.token(code)
            assert retry.status_code == 200, retry.text
            assert userinfo(rp, retry.json()["access_token"]) == 200
            assert refresh(rp, retry.json()["refresh_token"]).status_code == 200
            assert rp.token(code).json()["error"] == "invalid_grant"  # a replay still is one


def _cli(url: str, *args: str) -> str:
    port = url.rsplit(":", 1)[1].split("/")[0]
    return subprocess.run(["redis-cli", "-p", port, *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout


def _until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the replica did not come in sync"
        time.sleep(0.05)


def test_a_redemption_whose_master_died_under_it_is_resent_to_the_next(redis, tmp_path):
    """The master runs the redemption and dies before answering; a master is back within
    the store's patience (a Sentinel promotion): the resend, with its operation key, finds
    the redemption done and the RP gets its tokens at the first try."""
    with redis_proxy(redis) as proxy, \
            running_broker(proxy.url, tmp_path, store_timeout=0.5) as b:
        rp = b.rp()
        with b.browser() as browser:
            code = rp.login(browser)
        proxy.lose_reply_to(REDEMPTION, "die")
        back = threading.Timer(1.0, proxy.set_down, (False,))
        back.start()
        tokens = rp.token(code)
        back.join()
        assert proxy.dropped == 1, "the fault did not happen"
        assert tokens.status_code == 200, tokens.text
        assert refresh(rp, tokens.json()["refresh_token"]).status_code == 200
        assert rp.token(code).json()["error"] == "invalid_grant"


def test_a_redemption_lost_with_its_master_is_undone_when_one_is_back(redis, tmp_path):
    """No master for longer than the patience: a 503, and the undo waits for the next
    master; the RP's retry then redeems the code instead of being refused as a replay."""
    with redis_proxy(redis) as proxy, \
            running_broker(proxy.url, tmp_path, store_timeout=0.5,
                           store={"replica_timeout": 0.1}) as b:
        rp = b.rp()
        with b.browser() as browser:
            code = rp.login(browser)
        proxy.lose_reply_to(REDEMPTION, "die")
        first = rp.token(code)
        assert proxy.dropped == 1, "the fault did not happen"
        assert first.status_code == 503, first.text
        proxy.set_down(False)
        retry = rp.token(code)
        assert retry.status_code == 200, retry.text
        assert userinfo(rp, retry.json()["access_token"]) == 200
        assert rp.token(code).json()["error"] == "invalid_grant"

"""The order flow helper the login pages use, the rate limits, and the settings model."""

import httpx
import pytest

from broker.config import ConfigError, parse_settings
from broker.connectors.bankid import (
    AlreadyInProgress,
    BankIDClient,
    BankIDOrders,
    BankIDSettings,
    OrderState,
    StartLimits,
    WebContext,
    error_message,
    identity_from_completion,
)
from broker.connectors.bankid.tls import ROOT_FINGERPRINTS, bundled_root, fingerprint
from broker.simulators.bankid_settings import from_config
from broker.store.memory import MemoryStore

ANNA = "199001012385"


@pytest.fixture
async def orders(make_sim, clock):
    def build(sim_settings=None, **settings):
        app = make_sim(**(sim_settings or {}))
        client = BankIDClient("http://sim/rp/v6.0/", transport=httpx.ASGITransport(app=app),
                              clock=clock, maintenance_retry_delay=0)
        s = BankIDSettings.model_validate({"environment": "simulator", **settings})
        return BankIDOrders(client, s, clock=clock), app.state.simulator

    return build


async def test_qr_flow_to_identity(orders, clock):
    flow, sim = orders()
    state = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="Lifecare",
                             web=WebContext(user_agent="UA"))
    assert sim.orders[state.order_ref].summary(clock())["userVisibleData"] == \
        "Inloggning till Lifecare"
    first = await flow.poll(state)
    assert first.message.rfa == "RFA1" and first.qr.endswith(".0." + first.qr.split(".")[-1])
    clock.advance(1.2)
    again = await flow.poll(state)  # within the 2 s interval: no collect, new QR frame
    assert again.qr != first.qr and ".1." in again.qr
    sim.scan(again.qr, ANNA)
    clock.advance(1.0)
    signing = await flow.poll(state)
    assert (signing.hint_code, signing.message.rfa, signing.qr) == ("userSign", "RFA9", None)
    sim.approve(state.order_ref)
    clock.advance(2.0)
    done = await flow.poll(state)
    assert done.status == "complete" and done.message is None
    ident = identity_from_completion(done.completion, order_ref=state.order_ref, auth_time=1)
    assert (ident.method, ident.personal_identity_number, ident.given_name) == (
        "bankid", ANNA, "Anna")
    assert ident.claims["https://id.oidc.se/claim/deviceIp"] == "192.0.2.77"
    assert ident.evidence["completionData"]["user"]["personalNumber"] == ANNA
    # The state survives a round trip through the store, without exposing the secret in repr.
    restored = OrderState.from_record(state.to_record())
    assert restored == state and state.qr_start_secret not in repr(restored)


async def test_start_failed_restarts_within_window_then_gives_up(orders, clock):
    flow, _sim = orders(start_retry_window=60)
    state = await flow.start(end_user_ip="192.0.2.5", flow="autostart", client_name="X")
    first_ref = state.order_ref
    assert (await flow.poll(state)).message.rfa == "RFA13"
    clock.advance(31)
    res = await flow.poll(state)
    assert res.status == "pending" and state.order_ref != first_ref and state.restarts == 1
    clock.advance(31)
    res = await flow.poll(state)  # 62 s after the first start: window closed
    assert (res.status, res.hint_code, res.message.rfa) == ("failed", "startFailed", "RFA17A")


async def test_failure_messages_and_cancel(orders, clock):
    flow, sim = orders()
    state = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    sim.fail(state.order_ref, "certificateErr")
    res = await flow.poll(state)
    assert (res.status, res.message.rfa) == ("failed", "RFA16")
    other = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    await flow.cancel(other)
    assert other.order_ref not in sim.orders and other.finished
    await flow.cancel(other)  # idempotent


async def test_transient_errors_are_tolerated_then_fail(orders, clock):
    from broker.simulators.bankid_engine import Fault

    flow, sim = orders()
    state = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    sim.set_fault("collect", Fault(status=500, times=None))
    for _ in range(2):
        clock.advance(2)
        assert (await flow.poll(state)).status == "pending"
    clock.advance(2)
    res = await flow.poll(state)
    assert (res.status, res.message.rfa) == ("failed", "RFA5")


async def test_already_in_progress_message(orders):
    flow, _sim = orders()
    await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X", personal_number=ANNA)
    with pytest.raises(AlreadyInProgress) as e:
        await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X",
                         personal_number=ANNA)
    assert error_message(e.value).rfa == "RFA4"


async def test_high_risk_is_blocked(orders, clock):
    flow, sim = orders({"risk": "high"}, return_risk=True)
    state = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    sim.approve(state.order_ref)
    res = await flow.poll(state)
    assert res.risk_blocked and res.status == "failed" and res.completion.risk == "high"


async def test_collect_throttle_is_shared_through_the_store(orders, clock):
    flow, sim = orders()
    flow.store = MemoryStore()
    state = await flow.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    await flow.poll(state)
    other_replica = OrderState.from_record(state.to_record())
    other_replica.last_collect_at = 0.0
    sim.fail(state.order_ref, "userCancel")
    res = await flow.poll(other_replica)  # the lock taken by the first poll stops it
    assert res.status == "pending"


async def test_rate_limits():
    store = MemoryStore()
    limits = BankIDSettings(environment="simulator", rate_limits={"starts_per_ip_per_minute": 2,
                                         "starts_per_transaction": 3}).rate_limits
    now = [600.0]
    starts = StartLimits(store, limits, clock=lambda: now[0])
    assert await starts.exceeded(client_ip="198.51.100.1", txn_id="t1") is None
    assert await starts.exceeded(client_ip="198.51.100.1", txn_id="t1") is None
    assert await starts.exceeded(client_ip="198.51.100.1", txn_id="t1") == "ip"
    now[0] += 60
    assert await starts.exceeded(client_ip="198.51.100.1", txn_id="t1") is None
    assert await starts.exceeded(client_ip="198.51.100.2", txn_id="t1") == "transaction"


# -- settings --------------------------------------------------------------------------------


def settings_error(bankid: dict) -> str:
    simulator = bankid.get("environment", "simulator") == "simulator"
    with pytest.raises(ConfigError) as e:
        settings = parse_settings({"issuer": "https://login.example.se",
                                   "connectors": {"bankid": {"environment": "simulator", **bankid}}},
                                  "broker.yaml", env={})
        if simulator:  # the simulator's own section is checked by the simulator package
            from_config(settings.connectors.bankid.simulator, "broker.yaml")
    return str(e.value)


def test_settings_defaults():
    s = BankIDSettings(environment="simulator")
    assert (s.environment, s.collect_interval, s.personal_number_field) == ("simulator", 2.0, False)
    assert s.visible_text("Lifecare") == "Inloggning till Lifecare"
    assert BankIDSettings(environment="test", certificate={"p12": "rp.p12"}).url == \
        "https://appapi2.test.bankid.com/rp/v6.0/"


@pytest.mark.parametrize(
    ("bankid", "needle"),
    [
        ({"environment": "production"}, "connectors.bankid: certificate: required"),
        ({"environment": "prod"}, "connectors.bankid.environment"),
        ({"certificate": {"p12": "a.p12", "cert": "b.pem"}}, "either p12 or cert + key"),
        ({"certificate": {"cert": "b.pem"}}, "give p12"),
        ({"user_visible_data": "Hej {user}"}, "unknown placeholder {user}"),
        ({"base_url": "https://example.se/api"}, "must end in /rp/v6.0/"),
        ({"requirement": {"certificate_policies": ["1.2.*"]}}, "is not an OID"),
        ({"collect_interval": 0.2}, "connectors.bankid.collect_interval"),
        ({"simulator": {"auto_approve": "199001012384"}}, "check digit"),
        ({"simulator": {"auto_approve": "196004042393", "persons": [
            {"personal_number": ANNA, "given_name": "A", "surname": "B"}]}},
         "one of `persons`"),
        ({"simulator": {"start_timeout": 200}}, "shorter than order_timeout"),
        ({"simulator": {"surprise": 1}}, "connectors.bankid.simulator.surprise: unknown key"),
        ({"environment": "production", "certificate": {"p12": "a"},
          "base_url": "https://appapi2.test.bankid.com/rp/v6.0/"}, "test service in production"),
    ],
)
def test_settings_errors_name_the_key(bankid, needle):
    assert needle in settings_error(bankid)


def test_password_is_not_shown():
    s = BankIDSettings(environment="test", certificate={"p12": "rp.p12", "password": "qwerty123"})
    assert "qwerty123" not in repr(s) and "qwerty123" not in str(s.model_dump())


def test_bundled_roots_match_the_published_fingerprints():
    from cryptography import x509

    for env in ("test", "production"):
        cert = x509.load_pem_x509_certificate(bundled_root(env).encode())
        assert fingerprint(cert) == ROOT_FINGERPRINTS[env]
        assert "BankID SSL Root CA v1" in cert.subject.rfc4514_string()

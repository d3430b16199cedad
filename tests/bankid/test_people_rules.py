"""The rules behind BankID as people use it: which browser gets which returnUrl, the
personal-number field as typed, start limits that fit offices, and the risk indication."""

from datetime import date

import httpx
import pytest

from broker.config import ConfigError, parse_settings
from broker.connectors.bankid import BankIDClient, BankIDOrders, BankIDSettings, StartLimits
from broker.connectors.bankid.entry import EntryError, parse_personal_number
from broker.connectors.bankid.launch import detect, launch_url, return_url
from broker.connectors.bankid.ratelimit import start_key
from broker.store.memory import MemoryStore
from tests.bankid.user_agents import UA

WAIT = "https://login.example.se/login/bankid/T1/wait?nonce=n0"


@pytest.mark.parametrize(("ua", "expected"), [
    ("ios_safari", WAIT),
    ("ios_chrome", "googlechromes://login.example.se/login/bankid/T1/wait?nonce=n0"),
    ("ios_firefox", "firefox://open-url?url=https%3A%2F%2Flogin.example.se%2Flogin%2Fbankid%2FT1"
                    "%2Fwait%3Fnonce%3Dn0"),
    ("ios_edge", "microsoft-edge-https://login.example.se/login/bankid/T1/wait?nonce=n0"),
    ("ios_facebook", None),   # in-app browsers: the "◀ app" breadcrumb returns, not Safari
    ("ios_instagram", None),
    ("android_chrome", None),  # Android returns to the launching browser by itself
    ("android_samsung", None),
    ("windows_edge", None),    # a computer: the page polls
])
def test_return_url_reopens_the_browser_that_started(ua, expected):
    assert return_url(detect(UA[ua]), WAIT) == expected


def test_plain_http_schemes_for_a_development_issuer():
    dev = "http://localhost:8080/login/bankid/T1/wait?nonce=n0"
    assert return_url(detect(UA["ios_chrome"]), dev).startswith("googlechrome://localhost:8080/")
    assert return_url(detect(UA["ios_edge"]), dev).startswith("microsoft-edge-http://localhost")


def test_launch_links_per_device():
    assert launch_url(detect(UA["android_chrome"]), "tok") == \
        "https://app.bankid.com/?autostarttoken=tok&redirect=null"
    assert launch_url(detect(UA["windows_edge"]), "tok") == \
        "bankid:///?autostarttoken=tok&redirect=null"
    assert detect(UA["ios_safari"]).mobile and not detect(UA["windows_edge"]).mobile


TODAY = date(2025, 6, 1)


@pytest.mark.parametrize(("typed", "expected"), [
    ("900101-2385", "199001012385"),
    ("9001012385", "199001012385"),
    ("19900101-2385", "199001012385"),
    ("199001012385", "199001012385"),
    (" 900101 - 2385 ", "199001012385"),
    ("100101+2382", "191001012382"),       # "+": 100 years or older
    ("050101-2389", "200501012389"),       # under 100: this century
    ("250601-2380", "202506012380"),       # born today
    ("250602-2389", "192506022389"),       # "born tomorrow" means a century ago
    ("900161-2382", "199001612382"),       # a coordination number (day + 60)
])
def test_personal_number_as_typed(typed, expected):
    assert parse_personal_number(typed, today=TODAY) == expected


@pytest.mark.parametrize(("typed", "key"), [
    ("900101-2384", "bankid_pnr_check_digit"),
    ("19901301-2385", "bankid_pnr_date"),
    ("12345", "bankid_pnr_format"),
    ("90-0101-2385", "bankid_pnr_format"),
    ("abcdef-ghij", "bankid_pnr_format"),
    ("20990101-2386", "bankid_pnr_date"),  # in the future
])
def test_personal_number_errors_are_message_keys(typed, key):
    with pytest.raises(EntryError) as e:
        parse_personal_number(typed, today=TODAY)
    assert e.value.key == key


def limits(**kw):
    return BankIDSettings(environment="simulator", rate_limits=kw).rate_limits


def starts(store, lim):
    return StartLimits(store, lim, clock=lambda: 600)


async def test_ipv6_addresses_count_per_64():
    store, lim = MemoryStore(), limits(starts_per_ip_per_minute=2)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        assert await starts(store, lim).exceeded(client_ip=host, txn_id=host) is None
    # A third address in the same /64 is the same household or office.
    assert await starts(store, lim).exceeded(client_ip="2001:db8:1:2:aaaa::9", txn_id="x") == "ip"
    assert await starts(store, lim).exceeded(client_ip="2001:db8:1:3::1", txn_id="y") is None
    assert start_key("::ffff:192.0.2.7", lim) == start_key("192.0.2.7", lim)


async def test_sixty_starts_a_minute_from_one_address_by_default():
    store, lim = MemoryStore(), limits()
    answers = [await starts(store, lim).exceeded(client_ip="192.0.2.10", txn_id=f"t{i}")
               for i in range(61)]
    assert answers[:60] == [None] * 60 and answers[60] == "ip"


async def test_an_office_network_has_its_own_budget():
    store = MemoryStore()
    lim = limits(starts_per_ip_per_minute=2, networks=[
        {"network": "198.51.100.0/24", "starts_per_minute": 5},
        {"network": "198.51.100.7/32", "starts_per_minute": 1}])
    # The office's addresses share its budget of 5 (not 2 each, not unlimited).
    answers = [await starts(store, lim).exceeded(client_ip=f"198.51.100.{10 + i}", txn_id=f"t{i}") for i in range(6)]
    assert answers == [None] * 5 + ["ip"]
    # The most specific network counts: the NAT address has a budget of its own.
    assert await starts(store, lim).exceeded(client_ip="198.51.100.7", txn_id="a") is None
    assert await starts(store, lim).exceeded(client_ip="198.51.100.7", txn_id="b") == "ip"
    assert start_key("192.0.2.1", lim) == ("v4:192.0.2.1", 2)


def test_a_bad_network_names_the_key():
    with pytest.raises(ConfigError) as e:
        parse_settings({"issuer": "https://login.example.se", "connectors": {"bankid": {
            "environment": "simulator",
            "rate_limits": {"networks": [{"network": "10.0.0.0/33", "starts_per_minute": 5}]}}}},
            "broker.yaml", env={})
    assert "connectors.bankid.rate_limits.networks[0].network" in str(e.value)
    assert "is not an IP network" in str(e.value)


@pytest.mark.parametrize("key", ["client_uri", "initiate_login_uri"])
def test_client_links_are_checked_like_other_uris(key):
    client = {"client_id": "c", "client_name": "C", "client_secret": "s" * 32,
              "redirect_uris": ["https://rp.example/cb"], key: "http://rp.example/"}
    with pytest.raises(ConfigError) as e:
        parse_settings({"issuer": "https://login.example.se", "clients": [client]}, "b.yaml", env={})
    assert f"clients[0].{key}: " in str(e.value) and "https" in str(e.value)


async def test_block_risk_works_with_the_default_config(make_sim, clock):
    """The default block_risk (high) needs BankID's risk indication: it is asked for even
    though return_risk is off, and a high-risk login is refused."""
    app = make_sim(risk="high")
    sim = app.state.simulator
    client = BankIDClient("http://sim/rp/v6.0/", transport=httpx.ASGITransport(app=app),
                          clock=clock)
    settings = BankIDSettings(environment="simulator")
    assert settings.block_risk == "high" and settings.return_risk is False
    orders = BankIDOrders(client, settings, clock=clock)
    state = await orders.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    assert sim.orders[state.order_ref].body["returnRisk"] is True
    sim.approve(state.order_ref)
    result = await orders.poll(state)
    assert result.risk_blocked and result.status == "failed"
    assert await orders.completion(state) is None  # a blocked login leaves nothing to finish
    unblocked = BankIDOrders(client, BankIDSettings(environment="simulator", block_risk=None),
                             clock=clock)
    other = await unblocked.start(end_user_ip="192.0.2.5", flow="qr", client_name="X")
    assert "returnRisk" not in sim.orders[other.order_ref].body

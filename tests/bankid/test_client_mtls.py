"""The RP API client against the simulator over real mutual TLS (uvicorn, CERT_REQUIRED)."""

import base64
import ssl
from datetime import date

import httpx
import pytest

from broker.connectors.bankid import (
    AlreadyInProgress,
    BankIDClient,
    BankIDConnectionError,
    BankIDSettings,
    InternalError,
    InvalidParameters,
    Maintenance,
    OrderRequirement,
    RequestTimeout,
    TLSConfigError,
    TooManyRequests,
    WebContext,
    client_from_settings,
    context_from_settings,
    qr_payload_at,
    user_message,
)
from broker.connectors.bankid.errors import MethodNotAllowed, NotFound, Unauthorized

P12_PASSWORD = "qwerty123"
KEY_PASSWORD = "hemligt-nyckel"


def settings_for(server, pki, **over):
    data = {
        "environment": "test",
        "base_url": server.base_url,
        "ca_file": str(pki.ca),
        "certificate": {"p12": str(pki.client_p12), "password": P12_PASSWORD},
        "maintenance_retry_delay": 0,
        "timeouts": {"connect": 2, "read": 2, "total": 5},
    }
    data.update(over)
    return BankIDSettings.model_validate(data)


@pytest.fixture
async def client(tls_sim, pki):
    c = client_from_settings(settings_for(tls_sim, pki))
    yield c
    await c.aclose()


async def control(server, path, body=None, method="POST"):
    # The control API shares the TLS listener, so it needs the client certificate too.
    ctx = ssl.create_default_context(cafile=str(server_ca(server)))
    ctx.load_cert_chain(server.pki.client_cert, server.pki.client_key, password=KEY_PASSWORD)
    async with httpx.AsyncClient(verify=ctx, base_url=server.control_url) as h:
        r = await h.request(method, path, json=body)
    return r


def server_ca(server):
    return server.pki.ca


@pytest.fixture(autouse=True)
def _attach_pki(tls_server, pki):
    tls_server.pki = pki


async def test_auth_collect_approve_complete_over_mtls(client, tls_sim):
    order = await client.auth(
        "192.0.2.5",
        user_visible_data="Inloggning till Lifecare",
        return_risk=True,
        web=WebContext(device_identifier="dev-1", referring_domain="Login.Example.SE",
                       user_agent="UA" * 200),
    )
    assert order.order_ref and order.auto_start_token and order.qr_start_token
    assert "qr_start_secret" not in repr(order)

    first = await client.collect(order.order_ref)
    assert (first.status, first.hint_code) == ("pending", "outstandingTransaction")

    # The person scans the current QR frame and approves in the app.
    frame = qr_payload_at(order.qr_start_token, order.qr_start_secret,
                          tls_sim.clock.now, tls_sim.clock.now)
    r = await control(tls_sim, "/control/scan", {"qr": frame, "personalNumber": "199001012385"})
    assert r.status_code == 200, r.text
    signing = await client.collect(order.order_ref)
    assert signing.hint_code == "userSign"
    assert user_message(signing.status, signing.hint_code, None, "qr").rfa == "RFA9"

    r = await control(tls_sim, "/control/approve", {"orderRef": order.order_ref})
    assert r.status_code == 200, r.text
    done = await client.collect(order.order_ref)
    assert done.complete and done.status == "complete"
    c = done.completion
    assert c.user.personal_number == "199001012385"
    assert (c.user.given_name, c.user.surname, c.user.name) == ("Anna", "Andersson", "Anna Andersson")
    assert c.device.ip_address == "192.0.2.77"  # the phone's address in a QR flow
    assert c.device.uhi and len(c.device.uhi) == 28
    assert c.bank_id_issue_date == date(2023, 11, 29)
    assert c.risk == "low"
    xml = base64.b64decode(c.signature).decode()
    assert "<funcId>Identification</funcId>" in xml
    assert base64.b64encode(b"Inloggning till Lifecare").decode() in xml
    assert "199001012385" not in repr(c)

    assert tls_sim.sim.orders == {}  # a terminal state is collected once, then gone
    with pytest.raises(InvalidParameters) as e:
        await client.collect(order.order_ref)
    assert e.value.no_such_order
    assert user_message(error_code=e.value.error_code).rfa == "RFA22"


async def test_request_shape_web_block_and_requirement(client, tls_sim):
    order = await client.auth(
        "2001:db8::1",
        requirement=OrderRequirement(pin_code=True, personal_number="199001012385",
                                     certificate_policies=("1.2.3.4.25",)),
        return_url="https://login.example.se/bankid/return#n=1",
        web=WebContext(device_identifier="d", referring_domain="login.example.se",
                       user_agent="x" * 300),
    )
    body = tls_sim.sim.orders[order.order_ref].body
    assert body["requirement"] == {"pinCode": True, "certificatePolicies": ["1.2.3.4.25"],
                                   "personalNumber": "199001012385"}
    assert len(body["web"]["userAgent"]) == 256
    assert body["returnUrl"].endswith("#n=1")
    assert "userVisibleData" not in body


async def test_sign_and_mrtd_step_up(client, tls_sim):
    order = await client.sign("192.0.2.5", "Jag godkänner **avtalet**",
                              requirement=OrderRequirement(mrtd=True),
                              user_non_visible_data=b"\x00\x01digest",
                              user_visible_data_format="simpleMarkdownV1")
    r = await control(tls_sim, "/control/open", {"autoStartToken": order.auto_start_token})
    assert r.json()["hintCode"] == "started"
    assert (await client.collect(order.order_ref)).hint_code == "started"
    await control(tls_sim, "/control/select", {"orderRef": order.order_ref,
                                               "personalNumber": "198502022398"})
    assert (await client.collect(order.order_ref)).hint_code == "userMrtd"
    await control(tls_sim, "/control/advance", {"orderRef": order.order_ref})
    assert (await client.collect(order.order_ref)).hint_code == "userSign"
    await control(tls_sim, "/control/approve", {"orderRef": order.order_ref})
    done = await client.collect(order.order_ref)
    assert done.completion.step_up_mrtd is True
    assert done.completion.device.ip_address == "192.0.2.5"  # autostart: the end user's IP
    assert done.completion.risk is None  # not asked for
    xml = base64.b64decode(done.completion.signature).decode()
    assert "<funcId>Signing</funcId>" in xml and "<usrNonVisibleData>" in xml


async def test_cancel_semantics(client, tls_sim):
    order = await client.auth("192.0.2.5")
    await client.cancel(order.order_ref)
    with pytest.raises(InvalidParameters) as e:
        await client.collect(order.order_ref)
    assert e.value.details == "No such order"
    with pytest.raises(InvalidParameters):
        await client.cancel(order.order_ref)


@pytest.mark.parametrize(
    ("hint", "rfa_qr"),
    [("userCancel", "RFA6"), ("certificateErr", "RFA16"), ("startFailed", "RFA17B"),
     ("expiredTransaction", "RFA8"), ("cancelled", "RFA3"), ("notSupportedByUserApp", "RFA22")],
)
async def test_failed_hints_reach_client_with_message(client, tls_sim, hint, rfa_qr):
    order = await client.auth("192.0.2.5")
    r = await control(tls_sim, "/control/fail", {"orderRef": order.order_ref, "hintCode": hint})
    assert r.status_code == 200
    res = await client.collect(order.order_ref)
    assert (res.status, res.hint_code, res.failed, res.pending) == ("failed", hint, True, False)
    assert user_message(res.status, res.hint_code, None, "qr").rfa == rfa_qr


async def test_already_in_progress(client, tls_sim):
    req = OrderRequirement(personal_number="199001012385")
    first = await client.auth("192.0.2.5", requirement=req)
    with pytest.raises(AlreadyInProgress) as e:
        await client.auth("192.0.2.5", requirement=req)
    assert e.value.details == "Order already in progress for pno"
    assert user_message(error_code=e.value.error_code).rfa == "RFA4"
    # The existing order is killed too (reported real-server behaviour).
    res = await client.collect(first.order_ref)
    assert (res.status, res.hint_code) == ("failed", "cancelled")


async def test_phone_auth(client, tls_sim):
    order = await client.phone_auth("199001012385", "RP")
    assert order.auto_start_token is None and order.qr_start_token is None
    await control(tls_sim, "/control/phone", {"orderRef": order.order_ref})
    assert (await client.collect(order.order_ref)).hint_code == "userCallConfirm"
    await control(tls_sim, "/control/fail", {"orderRef": order.order_ref,
                                             "hintCode": "userDeclinedCall"})
    res = await client.collect(order.order_ref)
    assert res.hint_code == "userDeclinedCall"


@pytest.mark.parametrize(
    ("status", "exc", "rfa"),
    [(408, RequestTimeout, "RFA5"), (429, TooManyRequests, "RFA5"), (500, InternalError, "RFA5"),
     (401, Unauthorized, "RFA22"), (404, NotFound, "RFA22"), (405, MethodNotAllowed, "RFA22")],
)
async def test_error_codes_are_typed_and_not_retried(client, tls_sim, status, exc, rfa):
    r = await control(tls_sim, "/control/faults", {"endpoint": "auth", "status": status, "times": 2})
    assert r.status_code == 200
    with pytest.raises(exc) as e:
        await client.auth("192.0.2.5")
    assert e.value.http_status == status
    assert user_message(error_code=e.value.error_code).rfa == rfa
    # Exactly one attempt was made: one of the two injected faults is left.
    assert tls_sim.sim.faults["auth"].times == 1
    if status == 429:
        assert (e.value.limit, e.value.remaining, e.value.reset) == (10, 0, 1)


async def test_maintenance_is_retried_then_succeeds(client, tls_sim):
    await control(tls_sim, "/control/faults", {"endpoint": "collect", "status": 503, "times": 2})
    order = await client.auth("192.0.2.5")
    res = await client.collect(order.order_ref)  # two 503s swallowed, third attempt answers
    assert res.hint_code == "outstandingTransaction"
    assert "collect" not in tls_sim.sim.faults


async def test_maintenance_gives_up_after_the_configured_retries(client, tls_sim):
    await control(tls_sim, "/control/faults", {"endpoint": "auth", "status": 503, "times": 5})
    with pytest.raises(Maintenance):
        await client.auth("192.0.2.5")
    assert tls_sim.sim.faults["auth"].times == 2  # 1 try + 2 retries


async def test_maintenance_retries_pause_longer_each_time(tls_sim, pki):
    """BankID asks for a pause on maintenance: delay, twice that, ... (no pause before the
    first attempt, none after the last)."""
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    s = settings_for(tls_sim, pki)
    async with BankIDClient(tls_sim.base_url, ssl_context=context_from_settings(s),
                            maintenance_retries=3, maintenance_retry_delay=0.5,
                            sleep=sleep) as c:
        await control(tls_sim, "/control/faults", {"endpoint": "auth", "status": 503, "times": 3})
        order = await c.auth("192.0.2.5")
        assert order.order_ref
        assert pauses == [0.5, 1.0, 1.5]
        pauses.clear()
        await control(tls_sim, "/control/faults", {"endpoint": "auth", "status": 503, "times": 9})
        with pytest.raises(Maintenance):
            await c.auth("192.0.2.5")
        assert pauses == [0.5, 1.0, 1.5]
        assert tls_sim.sim.faults["auth"].times == 5  # 1 try + 3 retries of the 9


async def test_slow_answer_hits_the_read_timeout(tls_sim, pki):
    s = settings_for(tls_sim, pki, timeouts={"connect": 2, "read": 0.3, "total": 5})
    async with client_from_settings(s) as c:
        await control(tls_sim, "/control/faults", {"endpoint": "auth", "delay": 1.0})
        with pytest.raises(BankIDConnectionError):
            await c.auth("192.0.2.5")
        assert user_message(error_code="connectionError").rfa == "RFA5"


async def test_pem_certificate_with_encrypted_key(tls_sim, pki):
    s = settings_for(tls_sim, pki, certificate={
        "cert": str(pki.client_cert), "key": str(pki.client_key), "password": KEY_PASSWORD})
    async with client_from_settings(s) as c:
        order = await c.auth("192.0.2.5")
        assert order.order_ref in tls_sim.sim.orders


async def test_server_refuses_rp_certificate_from_unknown_ca(tls_sim, pki):
    s = settings_for(tls_sim, pki, certificate={"p12": str(pki.other_p12),
                                                "password": P12_PASSWORD})
    async with client_from_settings(s) as c:
        with pytest.raises(BankIDConnectionError):
            await c.auth("192.0.2.5")
    assert tls_sim.sim.orders == {}


async def test_client_refuses_server_not_under_pinned_root(tls_sim, pki):
    s = settings_for(tls_sim, pki, ca_file=str(pki.other_ca))
    async with client_from_settings(s) as c:
        with pytest.raises(BankIDConnectionError):
            await c.auth("192.0.2.5")
    # The bundled BankID test root does not vouch for our throwaway server either.
    s = settings_for(tls_sim, pki, ca_file=None)
    async with client_from_settings(s) as c:
        with pytest.raises(BankIDConnectionError):
            await c.auth("192.0.2.5")


def test_wrong_p12_password_is_a_clear_error_without_the_password(tls_sim, pki):
    s = settings_for(tls_sim, pki, certificate={"p12": str(pki.client_p12),
                                                "password": "fel-lösenord"})
    with pytest.raises(TLSConfigError) as e:
        context_from_settings(s)
    assert "rp.p12" in str(e.value) and "fel-lösenord" not in str(e.value)


async def test_exact_content_type_and_compact_json_on_the_wire():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["ct"] = request.headers["content-type"]
        seen["body"] = request.content
        return httpx.Response(200, json={"orderRef": "r", "autoStartToken": "a",
                                         "qrStartToken": "q", "qrStartSecret": "s"})

    async with BankIDClient("https://bankid.invalid/rp/v6.0/",
                            transport=httpx.MockTransport(handler)) as c:
        await c.auth("192.0.2.5", user_visible_data="Åäö")
    assert seen["ct"] == "application/json"
    assert b": " not in seen["body"] and b", " not in seen["body"]
    assert seen["body"].startswith(b'{"endUserIp":"192.0.2.5","userVisibleData":"')

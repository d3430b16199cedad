"""No personal identity number in clear in Redis, at any step of a BankID login: the
pending order (entered number, RP's login_hint), the transaction and SSO session after the
upstream login, the code, and the family after redemption and refresh. The number still
reaches the RP in its claim, and the audit log (a file of its own, 0600) keeps it."""

from __future__ import annotations

import re
import time

import httpx
import redis as redis_sync

from broker.store.codec import SealingCodec
from tests.bankidweb.conftest import BankIDBroker, start_broker
from tests.support.server import serve

PNR = "199001012385"
FORMS = (PNR, PNR[2:], "19900101-2385", "900101-2385")
SCOPE = "openid https://id.oidc.se/scope/naturalPersonNumber"


def scan(url: str, prefix: str) -> list[str]:
    """Every key of the broker and every value, as text; the PIN may be in none."""
    raw = redis_sync.Redis.from_url(url)
    seen = []
    for key in raw.scan_iter(match=prefix + "*", count=500):
        kind = raw.type(key)
        if kind == b"string":
            value = raw.get(key) or b""
        elif kind == b"zset":
            value = b" ".join(raw.zrange(key, 0, -1))
        else:
            value = repr(raw.dump(key)).encode()
        seen.append(f"{key.decode()} {value.decode(errors='replace')}")
    return seen


def assert_sealed(url: str, prefix: str, step: str) -> int:
    records = scan(url, prefix)
    leaks = [r[:120] for r in records if any(form in r for form in FORMS)]
    assert not leaks, f"{step}: personal number in clear in {leaks}"
    return len(records)


def test_no_personal_number_in_clear_in_redis_during_a_bankid_login(redis, tmp_path):
    issuer, port, app = start_broker(redis, tmp_path, personal_number_field=True)
    prefix = app.state.broker.settings.store.prefix
    with serve(app, port), httpx.Client(base_url=issuer) as browser:
        bb = BankIDBroker(issuer, app, tmp_path)
        rp = bb.rp()
        choice = rp.authorize(browser, login_hint=PNR, scope=SCOPE)
        action = re.search(r'action="(/login/bankid/[^"]+/start)"', choice.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', choice.text).group(1)
        txn_id = action.split("/")[3]
        started = browser.post(action, data={"csrf": csrf, "device": "other",
                                             "personal_number": "19900101-2385"})
        assert started.status_code == 303
        assert assert_sealed(redis, prefix, "order pending") > 0
        orders = browser.get("/bankid-simulator/control/orders").json()["orders"]
        ref = next(o["orderRef"] for o in orders if o["status"] == "pending")
        browser.post("/bankid-simulator/control/approve",
                     json={"orderRef": ref, "personalNumber": PNR}).raise_for_status()
        deadline, nxt = time.monotonic() + 15, None
        while nxt is None and time.monotonic() < deadline:
            nxt = browser.get(f"/login/bankid/{txn_id}/status").json().get("next")
            time.sleep(0.2)
        assert nxt, "the order did not complete"
        assert_sealed(redis, prefix, "order complete")
        result = rp.callback(browser.get(nxt))
        assert_sealed(redis, prefix, "code issued, SSO session")
        tokens = rp.token(result["code"]).json()
        assert_sealed(redis, prefix, "code redeemed")
        assert rp.refresh(tokens["refresh_token"]).status_code == 200
        assert_sealed(redis, prefix, "refreshed")
        claims = rp.verify(tokens["id_token"])
        assert claims["https://id.oidc.se/claim/personalIdentityNumber"] == PNR
    assert PNR in (tmp_path / "audit.log").read_text()


def test_sealing_codec_round_trip_rotation_and_tampering():
    old, new = b"o" * 32, b"n" * 32
    record = {"identity": {"personal_identity_number": PNR, "method": "bankid"},
              "params": {"login_hint": PNR, "scope": "openid"},
              "choices": [{"personalNumber": PNR}], "n": 1}
    sealed = SealingCodec([old]).encode(record)
    assert PNR.encode() not in sealed and b'"method":"bankid"' in sealed
    assert SealingCodec([old]).encode(record) != sealed  # a fresh nonce every time
    assert SealingCodec([new, old]).decode(sealed) == record  # after a rotation
    try:
        SealingCodec([new]).decode(sealed)
    except ValueError as exc:
        assert "personal_identity_number" in str(exc) or "sealed" in str(exc)
    else:
        raise AssertionError("a record sealed under a removed key must not open")
    moved = sealed.replace(b'"login_hint"', b'"personal_number"')  # a value moved to another field
    try:
        SealingCodec([old]).decode(moved)
    except ValueError:
        pass
    else:
        raise AssertionError("a sealed value is bound to its field")
    odd = {"login_hint": 'a"b\\c åäö \u2028', "note": '"login_hint":"not a field"'}
    sealed_odd = SealingCodec([old]).encode(odd)
    assert b"\xc3\xa5" not in sealed_odd  # the hint's å is sealed with it
    assert SealingCodec([old]).decode(sealed_odd) == odd  # escapes and unicode survive
    plain = {"claims": {"x": 1}, "scope": "openid"}
    assert SealingCodec([old]).encode(plain) == b'{"claims":{"x":1},"scope":"openid"}'

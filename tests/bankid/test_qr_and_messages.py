import pytest

from broker.connectors.bankid.messages import MESSAGES, user_message
from broker.connectors.bankid.qr import (
    parse_qr_payload,
    qr_auth_code,
    qr_payload,
    qr_payload_at,
    qr_time,
    verify_qr_payload,
)

TOKEN = "67df3917-fa0d-44e5-b327-edcc928297f8"
SECRET = "d28db9a7-4cde-429e-a983-359be676944c"
VECTORS = {
    0: "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8",
    1: "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2",
    2: "a9e5ec59cb4eee4ef4117150abc58fad7a85439a6a96ccbecc3668b41795b3f3",
}


@pytest.mark.parametrize(("t", "code"), VECTORS.items())
def test_qr_reference_vectors(t, code):
    assert qr_auth_code(SECRET, t) == code
    assert qr_payload(TOKEN, SECRET, t) == f"bankid.{TOKEN}.{t}.{code}"


def test_qr_time_counts_whole_seconds_since_receipt():
    assert qr_time(100.0, 100.99) == 0
    assert qr_time(100.0, 102.5) == 2
    assert qr_time(100.0, 99.0) == 0  # clock skew never gives a negative time
    assert qr_payload_at(TOKEN, SECRET, 100.0, 101.7).endswith(VECTORS[1])


def test_qr_verify_and_parse():
    frame = qr_payload(TOKEN, SECRET, 2)
    assert verify_qr_payload(frame, TOKEN, SECRET) == 2
    assert verify_qr_payload(frame, TOKEN, "another-secret") is None
    assert verify_qr_payload(frame.replace(".2.", ".3."), TOKEN, SECRET) is None
    assert parse_qr_payload("bankid.x.1") is None
    assert parse_qr_payload(f"bankid.{TOKEN}.-1.{VECTORS[0]}") is None
    assert parse_qr_payload(f"nope.{TOKEN}.0.{VECTORS[0]}") is None
    with pytest.raises(ValueError):
        qr_payload(TOKEN, SECRET, -1)


@pytest.mark.parametrize(
    ("status", "hint", "error", "flow", "device", "rfa"),
    [
        ("pending", "outstandingTransaction", None, "qr", "desktop", "RFA1"),
        ("pending", "outstandingTransaction", None, "autostart", "desktop", "RFA13"),
        ("pending", "noClient", None, "qr", "desktop", "RFA1"),
        ("pending", "started", None, "autostart", "desktop", "RFA15A"),
        ("pending", "started", None, "autostart", "mobile", "RFA15B"),
        ("pending", "userMrtd", None, "qr", "desktop", "RFA23"),
        ("pending", "userSign", None, "qr", "desktop", "RFA9"),
        ("pending", "userCallConfirm", None, "qr", "desktop", "RFA21"),
        ("pending", "somethingNew", None, "qr", "desktop", "RFA21"),
        ("brandNewStatus", None, None, "qr", "desktop", "RFA21"),
        ("failed", "expiredTransaction", None, "qr", "desktop", "RFA8"),
        ("failed", "certificateErr", None, "qr", "desktop", "RFA16"),
        ("failed", "userCancel", None, "qr", "desktop", "RFA6"),
        ("failed", "cancelled", None, "qr", "desktop", "RFA3"),
        ("failed", "startFailed", None, "qr", "desktop", "RFA17B"),
        ("failed", "startFailed", None, "autostart", "desktop", "RFA17A"),
        ("failed", "userDeclinedCall", None, "qr", "desktop", "RFA22"),
        ("failed", "notSupportedByUserApp", None, "qr", "desktop", "RFA22"),
        ("failed", "transactionRiskBlocked", None, "qr", "desktop", "RFA22"),
        ("failed", "whoKnows", None, "qr", "desktop", "RFA22"),
        (None, None, "alreadyInProgress", "qr", "desktop", "RFA4"),
        (None, None, "requestTimeout", "qr", "desktop", "RFA5"),
        (None, None, "internalError", "qr", "desktop", "RFA5"),
        (None, None, "maintenance", "qr", "desktop", "RFA5"),
        (None, None, "tooManyRequests", "qr", "desktop", "RFA5"),
        (None, None, "connectionError", "qr", "desktop", "RFA5"),
        (None, None, "invalidParameters", "qr", "desktop", "RFA22"),
        (None, None, "unauthorized", "qr", "desktop", "RFA22"),
        (None, None, "unsupportedMediaType", "qr", "desktop", "RFA22"),
        (None, None, "aNewErrorCode", "qr", "desktop", "RFA22"),
    ],
)
def test_rfa_mapping(status, hint, error, flow, device, rfa):
    msg = user_message(status, hint, error, flow, device=device)
    assert msg is not None
    assert msg.rfa == rfa
    assert msg.sv and msg.en and msg.sv != msg.en


def test_complete_has_no_message_and_texts_are_localised():
    assert user_message("complete", None, None, "qr") is None
    qr_msg = user_message("pending", "outstandingTransaction", None, "qr")
    assert "QR" in qr_msg.sv and "QR" in qr_msg.en
    assert qr_msg.text("sv-SE") == qr_msg.sv and qr_msg.text("en") == qr_msg.en
    assert "säkerhetskod" in MESSAGES["RFA9"].sv
    assert "install.bankid.com" in MESSAGES["RFA17A"].en

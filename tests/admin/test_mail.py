"""Mail over STARTTLS and implicit TLS to a real aiosmtpd server with a test certificate,
credentials, and the settings' refusals."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from admin_support import Outbox
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from broker.mail import Mail, Mailer, MailError, SmtpSettings
from tests.support.redis import free_port


def certificate(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Auth:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        self.seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"right-password")


@pytest.fixture
def tls_server(tmp_path: Path, request):
    from aiosmtpd.controller import Controller

    implicit = request.param == "tls"
    cert, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    outbox, auth = Outbox(), Auth()
    options = {"ssl_context": context} if implicit else {
        "tls_context": context, "require_starttls": True}
    # aiosmtpd does not count implicit TLS as TLS for auth_require_tls; the whole
    # connection is TLS there anyway.
    controller = Controller(outbox, hostname="127.0.0.1", port=free_port(),
                            authenticator=auth, auth_require_tls=not implicit, **options)
    controller.start()
    try:
        yield request.param, controller.port, cert, outbox, auth
    finally:
        controller.stop()


@pytest.mark.parametrize("tls_server", ["starttls", "tls"], indirect=True)
async def test_sends_over_tls_with_credentials(tls_server, tmp_path) -> None:
    security, port, cert, outbox, auth = tls_server
    settings = SmtpSettings(host="127.0.0.1", port=port, security=security,
                            username="broker", password="right-password",
                            from_address="behorighet@kommun.example",
                            from_name="Behörighetsadministration", ca_bundle=cert.name)
    mailer = Mailer(settings, tmp_path)
    await mailer.send(Mail("anna@omsorg.example", "Hej – åäö", "Rad ett\nRad två"))
    msg = outbox.wait_for("anna@omsorg.example")[0]
    assert msg["Subject"] == "Hej – åäö" and "Rad två" in msg.get_content()
    assert "Behörighetsadministration" in msg["From"]
    assert auth.seen == [(b"broker", b"right-password")]
    wrong = Mailer(settings.model_copy(update={"password": "wrong", "timeout": 2}), tmp_path)
    with pytest.raises(MailError, match="did not accept"):
        await wrong.send(Mail("anna@omsorg.example", "x", "y"))
    # Without the test CA the server's certificate is not trusted: nothing is sent.
    untrusted = Mailer(settings.model_copy(update={"ca_bundle": None, "timeout": 2}), tmp_path)
    with pytest.raises(MailError):
        await untrusted.send(Mail("anna@omsorg.example", "x", "y"))
    assert len(outbox.messages) == 1


def test_settings_refuse_clear_text_off_localhost_and_half_credentials() -> None:
    with pytest.raises(ValidationError, match="only allowed for a relay on localhost"):
        SmtpSettings(host="smtp.example", security="none", from_address="a@b.se")
    with pytest.raises(ValidationError, match="username and password together"):
        SmtpSettings(host="smtp.example", username="u", from_address="a@b.se")
    with pytest.raises(ValidationError, match="from_address"):
        SmtpSettings(host="smtp.example", from_address="not an address")
    assert SmtpSettings(host="localhost", security="none", from_address="a@b.se")

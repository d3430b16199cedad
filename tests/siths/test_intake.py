"""Every proxy header format decodes to the same certificate; spoofed headers are ignored."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from broker.connectors.siths import (
    CertificateDecodeError,
    certificate_from_headers,
    certificate_from_scope,
    decode_header,
    presented_certificate,
)
from broker.connectors.siths.testpki import SithsTestPKI, create_test_pki

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.fixture(scope="module")
def local_pki() -> SithsTestPKI:
    return create_test_pki("http://pki.test")


def pem(cert) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def der(cert) -> bytes:
    return cert.public_bytes(Encoding.DER)


def b64(cert) -> str:
    return base64.b64encode(der(cert)).decode()


def test_nginx_escaped_pem(local_pki):
    card = local_pki.card("anna-hsa")
    value = quote(pem(card.cert), safe="")  # like $ssl_client_escaped_cert: %0A, %2B, %3D ...
    assert "%0A" in value and "\n" not in value
    got = decode_header("nginx", value)
    assert got.leaf == card.cert
    assert got.chain == ()
    assert got.source == "header:nginx"


def test_nginx_legacy_tab_indented_pem(local_pki):
    card = local_pki.card("anna-hsa")
    value = pem(card.cert).strip().replace("\n", "\n\t")
    assert decode_header("nginx", value).leaf == card.cert


def test_envoy_xfcc_cert_chain_hash_and_by(local_pki):
    card = local_pki.card("anna-pnr")
    issuer = card.issuer.cert
    digest = hashlib.sha256(der(card.cert)).hexdigest()
    value = (
        'By=spiffe://cluster.local/ns/broker/sa/edge;'
        f'Hash={digest};'
        f'Cert="{quote(pem(card.cert), safe="")}";'
        f'Chain="{quote(pem(card.cert) + pem(issuer), safe="")}";'
        'Subject="CN=Anna Andersson,serialNumber=x,C=SE";DNS=a.example;DNS=b.example'
    )
    got = decode_header("envoy", value)
    assert got.leaf == card.cert
    assert got.chain == (issuer,)


def test_envoy_takes_the_last_element(local_pki):
    """The element appended by our edge proxy is the last; an earlier one is client-supplied."""
    real, fake = local_pki.card("anna-hsa"), local_pki.card("bertil-reserve")
    value = (
        f'By=spiffe://attacker;Cert="{quote(pem(fake.cert), safe="")}";Subject="CN=x, O=y",'
        f'By=spiffe://edge;Cert="{quote(pem(real.cert), safe="")}"'
    )
    assert decode_header("envoy", value).leaf == real.cert


def test_envoy_hash_mismatch_refused(local_pki):
    card = local_pki.card("anna-hsa")
    value = f'Hash={"0" * 64};Cert="{quote(pem(card.cert), safe="")}"'
    with pytest.raises(CertificateDecodeError, match="Hash"):
        decode_header("envoy", value)


def test_envoy_without_cert_refused():
    with pytest.raises(CertificateDecodeError):
        decode_header("envoy", 'By=spiffe://edge;Subject="CN=x"')


def test_traefik_base64_der_list_not_url_encoded(local_pki):
    card = local_pki.card("anna-hsa")
    issuer = card.issuer.cert
    value = f"{b64(card.cert)},{b64(issuer)}"
    assert "+" in value or "/" in value  # plain base64 that unquote_plus would corrupt
    got = decode_header("traefik", value)
    assert got.leaf == card.cert
    assert got.chain == (issuer,)


def test_traefik_percent_encoded_variant(local_pki):
    card = local_pki.card("anna-hsa")
    assert decode_header("traefik", quote(b64(card.cert), safe="")).leaf == card.cert


def test_haproxy_der_and_concatenated_chain(local_pki):
    card = local_pki.card("anna-hsa")
    chain = base64.b64encode(der(card.cert) + der(card.issuer.cert) + der(local_pki.root.cert)).decode()
    got = decode_header("haproxy", b64(card.cert), chain)
    assert got.leaf == card.cert
    assert got.chain == (card.issuer.cert, local_pki.root.cert)


def test_haproxy_truncated_chain_refused(local_pki):
    card = local_pki.card("anna-hsa")
    chain = base64.b64encode(der(card.issuer.cert)[:-10]).decode()
    with pytest.raises(CertificateDecodeError):
        decode_header("haproxy", b64(card.cert), chain)


def test_rfc9440_byte_sequences(local_pki):
    card = local_pki.card("anna-pnr")
    got = decode_header("rfc9440", f":{b64(card.cert)}:",
                        f":{b64(card.issuer.cert)}:, :{b64(local_pki.root.cert)}:;p=1")
    assert got.leaf == card.cert
    assert got.chain == (card.issuer.cert, local_pki.root.cert)


def test_rfc9440_requires_colons(local_pki):
    with pytest.raises(CertificateDecodeError, match="byte sequence"):
        decode_header("rfc9440", b64(local_pki.card("anna-pnr").cert))


@pytest.mark.parametrize("fmt", ["nginx", "envoy", "traefik", "haproxy", "rfc9440"])
def test_garbage_refused(fmt):
    with pytest.raises(CertificateDecodeError):
        decode_header(fmt, "not-a-certificate")


@pytest.mark.parametrize(
    ("fmt", "header"),
    [("nginx", "ssl-client-cert"), ("traefik", "x-forwarded-tls-client-cert"),
     ("rfc9440", "client-cert")],
)
def test_from_headers_trusted_peer(local_pki, fmt, header):
    card = local_pki.card("anna-hsa")
    value = {"nginx": quote(pem(card.cert), safe=""), "traefik": b64(card.cert),
             "rfc9440": f":{b64(card.cert)}:"}[fmt]
    raw = [(header.encode(), value.encode()), (b"host", b"siths.example")]
    got = certificate_from_headers("10.1.2.3", raw, trusted_proxies=PROXIES, header=header, fmt=fmt)
    assert got is not None and got.leaf == card.cert


def test_spoofed_header_from_untrusted_peer_ignored(local_pki, caplog):
    card = local_pki.card("anna-hsa")
    value = quote(pem(card.cert), safe="")
    with caplog.at_level(logging.WARNING):
        got = certificate_from_headers("192.0.2.7", {"SSL-Client-Cert": value},
                                       trusted_proxies=PROXIES, header="ssl-client-cert", fmt="nginx")
    assert got is None
    assert "untrusted peer 192.0.2.7" in caplog.text
    assert value[:40] not in caplog.text and "BEGIN" not in caplog.text
    assert "SE2321000016" not in caplog.text


def test_no_header_is_no_certificate_and_no_warning(caplog):
    with caplog.at_level(logging.WARNING):
        got = certificate_from_headers("192.0.2.7", {"host": "x"}, trusted_proxies=PROXIES,
                                       header="ssl-client-cert", fmt="nginx")
    assert got is None
    assert caplog.text == ""


def test_empty_header_from_proxy_is_no_certificate():
    assert certificate_from_headers("10.0.0.1", {"ssl-client-cert": ""}, trusted_proxies=PROXIES,
                                    header="ssl-client-cert", fmt="nginx") is None


def test_duplicate_header_refused(local_pki, caplog):
    real, fake = local_pki.card("anna-hsa"), local_pki.card("bertil-reserve")
    raw = [(b"ssl-client-cert", quote(pem(fake.cert), safe="").encode()),
           (b"ssl-client-cert", quote(pem(real.cert), safe="").encode())]
    with caplog.at_level(logging.WARNING):
        got = certificate_from_headers("10.0.0.1", raw, trusted_proxies=PROXIES,
                                       header="ssl-client-cert", fmt="nginx")
    assert got is None
    assert "more than once" in caplog.text


def test_undecodable_header_from_proxy_logged_without_contents(caplog):
    with caplog.at_level(logging.WARNING):
        got = certificate_from_headers("10.0.0.1", {"ssl-client-cert": "SECRETSTUFF"},
                                       trusted_proxies=PROXIES, header="ssl-client-cert", fmt="nginx")
    assert got is None
    assert "could not decode" in caplog.text and "SECRETSTUFF" not in caplog.text


@pytest.mark.parametrize(
    ("peer", "unix", "expected"),
    [("10.9.9.9", False, True), ("::ffff:10.0.0.5", False, True), ("fd00::1", False, True),
     ("11.0.0.1", False, False), (None, False, False), (None, True, True), ("junk", False, False)],
)
def test_peer_rules(local_pki, peer, unix, expected):
    card = local_pki.card("anna-hsa")
    got = certificate_from_headers(peer, {"client-cert": f":{b64(card.cert)}:"},
                                   trusted_proxies=PROXIES, header="client-cert", fmt="rfc9440",
                                   trust_unix_socket=unix)
    assert (got is not None) == expected


def test_scope_extension_pem_and_der(local_pki):
    card = local_pki.card("anna-hsa")
    scope = {"extensions": {"tls": {"client_cert_chain": [pem(card.cert), pem(card.issuer.cert)]}}}
    got = certificate_from_scope(scope)
    assert got.leaf == card.cert and got.chain == (card.issuer.cert,) and got.source == "tls"
    scope = {"extensions": {"tls": {"client_cert_chain": [der(card.cert)]}}}
    assert certificate_from_scope(scope).leaf == card.cert
    assert certificate_from_scope({"extensions": {"tls": {"client_cert_chain": []}}}) is None
    assert certificate_from_scope({}) is None


def test_presented_certificate_follows_mode(local_pki, make_settings):
    card = local_pki.card("anna-hsa")
    headers = [(b"x-forwarded-client-cert", f'Cert="{quote(pem(card.cert), safe="")}"'.encode())]
    settings = make_settings(proxy={"format": "envoy", "trusted_proxies": ["10.0.0.0/8"]})
    scope = {"type": "http", "client": ("10.0.0.2", 5555), "headers": headers}
    assert presented_certificate(scope, settings).leaf == card.cert
    assert presented_certificate({**scope, "client": ("8.8.8.8", 1)}, settings) is None
    direct = make_settings(mode="direct", direct={"certfile": "x.pem"})
    tls_scope = {"type": "http", "client": ("8.8.8.8", 1), "headers": headers,
                 "extensions": {"tls": {"client_cert_chain": [pem(card.cert)]}}}
    assert presented_certificate(tls_scope, direct).leaf == card.cert
    assert presented_certificate(scope, direct) is None  # headers never count in direct mode

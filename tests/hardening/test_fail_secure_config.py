"""Fail-secure configuration: nothing meant for tests runs on a deployment.

The BankID simulator (whose control API approves any order as any test person), generated
keys, the memory store and the broker's own SITHS test PKI need a loopback issuer or
`broker demo`; anywhere else start-up and `broker check-config` stop with one line per
switch naming its key. `connectors.bankid.environment` has no default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from broker.app import create_app
from broker.config import ConfigError, parse_settings
from broker.connectors.siths.testpki import create_test_pki
from broker.keys import KeyRing
from tests.support.fakes import FakeSource, default_users

DEPLOYED = "https://login.example.kommun.se"
LOCAL = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    KeyRing(directory, retention=600).generate_missing()
    return directory


def config(issuer: str, key_dir: Path, **extra) -> dict:
    """A deployable config (Redis store, keys made beforehand) plus `extra` sections."""
    data = {
        "issuer": issuer,
        "store": {"url": "redis://redis.example:6379/0"},
        "keys": {"dir": str(key_dir)},
        "clients": [{"client_id": "rp", "client_name": "RP", "client_secret": "r" * 32,
                     "redirect_uris": ["https://rp.example/cb"]}],
    }
    data.update(extra)
    return data


def start(data: dict, tmp_path: Path, **kwargs):
    settings = parse_settings(data, str(tmp_path / "broker.yaml"), env={})
    return create_app(settings, source=FakeSource(default_users(("rp",))), **kwargs)


def refusal(data: dict, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        start(data, tmp_path)
    return str(info.value).splitlines()


def check_config(data: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {"PATH": os.environ["PATH"], **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    return subprocess.run([sys.executable, "-m", "broker.cli", "check-config", "--config",
                           str(path)], capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)


# -- connectors.bankid.environment ------------------------------------------------------------

def test_a_config_without_environment_is_refused(tmp_path, keys):
    data = config(DEPLOYED, keys, connectors={"bankid": {}})
    with pytest.raises(ConfigError) as info:
        parse_settings(data, "broker.yaml", env={})
    assert str(info.value) == "broker.yaml: connectors.bankid.environment: required key is missing"
    result = check_config(data, tmp_path)
    assert result.returncode == 2
    assert "connectors.bankid.environment: required key is missing" in result.stderr


def test_the_simulator_refuses_to_mount_with_a_non_loopback_issuer(tmp_path, keys):
    """The review's finding: `environment: simulator` with an https issuer started silently."""
    data = config(DEPLOYED, keys, connectors={"bankid": {"environment": "simulator"}})
    lines = refusal(data, tmp_path)
    assert len(lines) == 1 and lines[0].startswith(
        f"{tmp_path}/broker.yaml: connectors.bankid.environment: simulator")
    result = check_config(data, tmp_path)
    assert result.returncode == 2, result.stdout
    assert "connectors.bankid.environment: simulator" in result.stderr
    # With a loopback issuer, or as `broker demo` does, the very same section mounts it.
    for app in (start(config(LOCAL, keys, connectors={"bankid": {"environment": "simulator"}}),
                      tmp_path),
                start(data, tmp_path, allow_test_only=True)):
        assert "/bankid-simulator" in [getattr(r, "path", None) for r in app.routes]


def test_auto_approve_is_refused_and_needs_the_simulator(tmp_path, keys):
    sim = {"environment": "simulator", "simulator": {"auto_approve": "199001012385"}}
    lines = refusal(config(DEPLOYED, keys, connectors={"bankid": sim}), tmp_path)
    assert [line.split(": ")[1] for line in lines] == [
        "connectors.bankid.environment", "connectors.bankid.simulator.auto_approve"]
    # A simulator section is refused where it would do nothing (no simulator runs).
    with pytest.raises(ConfigError, match=r"connectors.bankid: simulator: only used with "
                                          r"environment simulator"):
        parse_settings(config(DEPLOYED, keys, connectors={"bankid": {
            "environment": "test", "certificate": {"p12": "rp.p12"},
            "simulator": {"auto_approve": "199001012385"}}}), "broker.yaml", env={})


def test_simulator_settings_are_checked_by_check_config(tmp_path, keys):
    data = config(LOCAL, keys, connectors={"bankid": {"environment": "simulator",
                                                      "simulator": {"surprise": 1}}})
    result = check_config(data, tmp_path)
    assert result.returncode == 2
    assert "connectors.bankid.simulator.surprise: unknown key" in result.stderr


def test_production_settings_never_import_the_simulator():
    code = ("import sys, broker.config, broker.connectors.bankid, broker.connectors.bankid.connector;"
            "print(sorted(m for m in sys.modules if m.startswith('broker.simulators')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


# -- the other test-only switches ---------------------------------------------------------------

def test_generated_keys_are_refused(tmp_path, keys):
    data = config(DEPLOYED, tmp_path / "fresh", keys={"dir": str(tmp_path / "fresh"),
                                                       "generate": True})
    lines = refusal(data, tmp_path)
    assert len(lines) == 1 and ": keys.generate: " in lines[0]
    assert not (tmp_path / "fresh").exists()  # refused before anything was generated
    assert check_config(data, tmp_path).returncode == 2
    local = config(LOCAL, tmp_path / "dev", keys={"dir": str(tmp_path / "dev"), "generate": True})
    start(local, tmp_path)
    assert len(list((tmp_path / "dev").glob("*.json"))) == 4


def test_the_memory_store_is_refused(tmp_path, keys):
    data = config(DEPLOYED, keys, store={"url": "memory://"})
    lines = refusal(data, tmp_path)
    assert len(lines) == 1 and ": store.url: memory://" in lines[0]
    result = check_config(data, tmp_path)
    assert result.returncode == 2 and "store.url" in result.stderr
    del data["store"]  # the default is memory:// too
    assert ": store.url: " in refusal(data, tmp_path)[0]
    start(config(DEPLOYED, keys), tmp_path)  # a deployable config starts


def _foreign_root(path: Path) -> None:
    """A self-signed CA that is not the broker's test PKI (as Inera's roots are not)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inera AB"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "SITHS e-id Root CA v2")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_the_test_pki_is_refused(tmp_path, keys):
    (tmp_path / "test-ca.pem").write_bytes(create_test_pki(people=False).bundle_pem())
    _foreign_root(tmp_path / "real-ca.pem")

    def siths(bundle: str) -> dict:
        return config(DEPLOYED, keys, connectors={"siths": {
            "mode": "proxy", "login_url": "https://siths.login.example.kommun.se/login/siths/",
            "proxy": {"trusted_proxies": ["10.0.0.0/8"]}, "trust": {"ca_bundle": bundle}}})

    lines = refusal(siths("test-ca.pem"), tmp_path)
    assert len(lines) == 1 and ": connectors.siths.trust.ca_bundle: " in lines[0]
    result = check_config(siths("test-ca.pem"), tmp_path)
    assert result.returncode == 2 and "connectors.siths.trust.ca_bundle" in result.stderr
    app = start(siths("real-ca.pem"), tmp_path)
    assert "siths" in app.state.broker.connectors


def test_every_switch_gets_its_own_line_in_check_config(tmp_path):
    (tmp_path / "test-ca.pem").write_bytes(create_test_pki(people=False).bundle_pem())
    data = {
        "issuer": DEPLOYED, "keys": {"dir": "keys", "generate": True},
        "connectors": {
            "bankid": {"environment": "simulator", "simulator": {"auto_approve": "199001012385"}},
            "siths": {"mode": "proxy", "login_url": "https://siths.example.se/login/siths/",
                      "proxy": {"trusted_proxies": ["10.0.0.0/8"]},
                      "trust": {"ca_bundle": "test-ca.pem"}}},
    }
    result = check_config(data, tmp_path)
    assert result.returncode == 2
    keys = [line.split(": ")[1] for line in result.stderr.splitlines()[1:]]
    assert keys == ["connectors.bankid.environment", "connectors.bankid.simulator.auto_approve",
                    "keys.generate", "store.url", "connectors.siths.trust.ca_bundle"]


# -- other insecure defaults ---------------------------------------------------------------------

@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0"])
def test_trusting_every_address_as_a_proxy_is_refused(keys, network):
    with pytest.raises(ConfigError, match=r"http\.trusted_proxies: .* would trust every address"):
        parse_settings(config(DEPLOYED, keys, http={"trusted_proxies": [network]}), "b.yaml",
                       env={})


def test_a_client_registered_without_scopes_gets_openid_only(keys):
    settings = parse_settings(config(DEPLOYED, keys), "b.yaml", env={})
    assert settings.clients[0].scopes == ["openid"]

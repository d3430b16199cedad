"""Configuration errors name the file and the key; the CLI exits non-zero and never
half-starts; keys can be generated, rotated and listed from the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from broker.config import ConfigError, load_settings

GOOD = """
issuer: https://login.example.se
store: {url: "redis://redis.example:6379/0"}
keys: {dir: keys}
clients:
  - client_id: lifecare
    client_name: Lifecare
    client_secret: ${LIFECARE_SECRET}
    redirect_uris: [https://lifecare.example/cb]
authorization: {source: file, path: authz.yaml}
"""


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "broker.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "LIFECARE_SECRET": "x" * 20,
                               **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}})


def write(tmp_path: Path, text: str, authz: str | None = "users: []\n") -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    if authz is not None:
        (tmp_path / "authz.yaml").write_text(authz)
    return path


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("https://lifecare.example/cb", "http://lifecare.example/cb"),
     "broker.yaml: clients[0].redirect_uris: must use https"),
    (GOOD.replace("redis://redis.example:6379/0", "postgres://x"),
     "broker.yaml: store.url: must start with one of"),
    (GOOD + "bogus: 1\n", "broker.yaml: bogus: unknown key"),
    (GOOD.replace("client_secret: ${LIFECARE_SECRET}", "client_secret: ${NOPE}"),
     "clients[0].client_secret: environment variable NOPE is not set"),
    (GOOD.replace("    client_secret: ${LIFECARE_SECRET}\n", ""),
     "clients[0]: client_secret is required for client_secret_basic"),
    (GOOD.replace("issuer: https://login.example.se", "issuer: [1"), "broker.yaml: not valid YAML at line 3"),
])
def test_bad_config_names_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={"LIFECARE_SECRET": "x" * 20})
    assert expected in str(err.value).replace(str(tmp_path) + "/", "")
    result = run("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "x" * 20 not in result.stderr


def test_cli_keys_and_check_config(tmp_path):
    path = write(tmp_path, GOOD)
    missing = run("check-config", "--config", str(path), cwd=tmp_path)
    assert missing.returncode == 2 and "broker keys generate" in missing.stderr
    assert run("keys", "generate", "--config", str(path), cwd=tmp_path).returncode == 0
    ok = run("check-config", "--config", str(path), cwd=tmp_path)
    assert ok.returncode == 0 and "OK" in ok.stdout
    listing = run("keys", "list", "--config", str(path), cwd=tmp_path).stdout
    assert listing.count("active") == 2 and listing.count("next") == 2
    rotated = run("keys", "rotate", "--config", str(path), cwd=tmp_path)
    assert "signs now" in rotated.stdout
    listing = run("keys", "list", "--config", str(path), cwd=tmp_path).stdout
    assert listing.count("retired_at") == 2 and listing.count("active") == 2
    for f in (tmp_path / "keys").glob("*.json"):
        assert "d" in json.loads(f.read_text())  # private keys live only in keys.dir


def test_serve_refuses_bad_config_before_binding(tmp_path):
    path = write(tmp_path, GOOD)  # no keys and keys.generate off
    result = run("serve", "--config", str(path), "--port", "1", cwd=tmp_path)
    assert result.returncode == 2 and "keys.dir" in result.stderr


@pytest.mark.parametrize("authz, says", [
    (None, "cannot read the file"),
    ("users: [{id: x}]\n", "authz.yaml"),
])
def test_a_missing_or_broken_authorization_file_is_a_configuration_error(tmp_path, authz, says):
    path = write(tmp_path, GOOD, authz=authz)
    assert run("keys", "generate", "--config", str(path), cwd=tmp_path).returncode == 0
    for command in (("check-config", "--config", str(path)),
                    ("serve", "--config", str(path), "--port", "1")):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "authorization.path" in result.stderr and says in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("level, ok", [("loa3", True), ("loa2", False), ("loa4", False)])
def test_check_config_refuses_a_client_no_login_method_can_serve(tmp_path, level, ok):
    """BankID reaches LoA 3 only: a client that demands another level by default could never
    log anyone in, and check-config says so before a deployment does (as start-up would)."""
    text = GOOD.replace("https://login.example.se", "http://127.0.0.1:8080").replace(
        "keys: {dir: keys}", "keys: {dir: keys, generate: true}\n"
        "connectors: {bankid: {environment: simulator}}").replace(
        "    redirect_uris: [https://lifecare.example/cb]\n",
        "    redirect_uris: [https://lifecare.example/cb]\n"
        f"    default_acr_values: [http://id.elegnamnden.se/loa/1.0/{level}]\n")
    result = run("check-config", "--config", str(write(tmp_path, text)), cwd=tmp_path)
    if ok:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 2
        assert "clients[0].default_acr_values: no configured login method" in result.stderr
        assert "http://id.elegnamnden.se/loa/1.0/loa3" in result.stderr  # what it does give

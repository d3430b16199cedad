"""`broker demo` as a newcomer runs it: a real process with its three listeners, the URLs and
the test card it prints, and a SITHS login with that card from the demo RP's button to its
callback page (an httpx "browser" that presents the card's certificate)."""

from __future__ import annotations

import html
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from tests.support.redis import free_port

ROOT = Path(__file__).resolve().parents[2]


class DemoProcess:
    def __init__(self, proc: subprocess.Popen, output: str, port: int, siths_port: int) -> None:
        self.proc = proc
        self.output = output
        self.base = f"http://localhost:{port}"
        self.siths = f"https://localhost:{siths_port}"

    def printed(self, label: str) -> str:
        match = re.search(rf"^\s*{re.escape(label)}:\s*(\S+)", self.output, re.MULTILINE)
        assert match, f"{label!r} not printed:\n{self.output}"
        return match.group(1)


def _start(args: list[str], port: int, siths_port: int) -> DemoProcess:
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "demo", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops" in line:
            break
    output = "".join(lines)
    if "Ctrl-C stops" not in output:
        proc.kill()
        pytest.fail(f"broker demo did not start:\n{output}\n{proc.stderr.read() if proc.stderr else ''}")
    demo = DemoProcess(proc, output, port, siths_port)
    for url in (demo.base + "/.well-known/openid-configuration", demo.siths + "/static/"):
        _wait_for(url)
    return demo


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, verify=False, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _stop(demo: DemoProcess) -> tuple[int, str, str]:
    demo.proc.send_signal(signal.SIGTERM)
    try:
        out, err = demo.proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        demo.proc.kill()
        out, err = demo.proc.communicate()
        pytest.fail(f"broker demo did not stop on SIGTERM:\n{err}")
    return demo.proc.returncode, out, err


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port, siths_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("broker-demo")
    running = _start(["--port", str(port), "--siths-port", str(siths_port),
                      "--dir", str(workdir)], port, siths_port)
    running.workdir = workdir
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.communicate()


def _card_client(demo: DemoProcess, tmp: Path) -> httpx.Client:
    """A "browser" with the demo card imported: the .p12 and the password the demo printed,
    and the printed test root trusted for the SITHS host."""
    card, password = Path(_card_path(demo)), demo.printed("Card password")
    key, cert, extra = pkcs12.load_key_and_certificates(card.read_bytes(), password.encode())
    assert key is not None and cert is not None
    chain, key_file = tmp / "card-chain.pem", tmp / "card.key"
    chain.write_bytes(cert.public_bytes(Encoding.PEM)
                      + b"".join(c.public_bytes(Encoding.PEM) for c in extra))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ctx = ssl.create_default_context(cafile=demo.printed("Test root CA"))
    ctx.load_cert_chain(str(chain), str(key_file))
    return httpx.Client(verify=ctx, timeout=15)


def _card_path(demo: DemoProcess) -> str:
    match = re.search(r"Test card \(Anna[^)]*\):\s*(\S+\.p12)", demo.output)
    assert match, demo.output
    return match.group(1)


def _choose(browser: httpx.Client, chooser: httpx.Response, method: str) -> httpx.Response:
    assert chooser.status_code == 200, chooser.text[:500]
    page = chooser.text
    assert "BankID" in page and "SITHS-kort" in page
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return browser.post(str(chooser.url.join(html.unescape(action))),
                        data={"csrf": html.unescape(csrf), "method": method})


def test_demo_prints_urls_and_the_card(demo):
    assert f"{demo.base}/demo-rp/" in demo.output
    assert f"{demo.base}/.well-known/openid-configuration" in demo.output
    assert demo.printed("SITHS host") == f"{demo.siths}/login/siths/"
    card = Path(_card_path(demo))
    assert card.is_file() and card.parent == demo.workdir / "siths"
    assert card.stat().st_mode & 0o077 == 0  # the test card's key is private to its owner
    assert demo.printed("Card password")
    assert "Firefox" in demo.output and "Chrome" in demo.output
    assert "close every browser window" in demo.output


def test_demo_serves_the_rp_and_discovery(demo):
    rp = httpx.get(demo.base + "/demo-rp/", timeout=10)
    assert rp.status_code == 200 and "Logga in i Lifecare (demo)" in rp.text
    discovery = httpx.get(demo.base + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == demo.base
    assert discovery["authorization_endpoint"] == demo.base + "/authorize"


def test_siths_login_with_the_demo_card_from_rp_to_callback(demo, tmp_path):
    with _card_client(demo, tmp_path) as browser:
        chooser = browser.get(demo.base + "/demo-rp/login", follow_redirects=True)
        to_siths = _choose(browser, chooser, "siths")
        assert to_siths.status_code == 303
        assert to_siths.headers["location"].startswith(demo.siths + "/login/siths/?ref=")
        done = browser.get(to_siths.headers["location"], follow_redirects=True)
    assert done.status_code == 200, done.text[:1000]
    assert str(done.url).startswith(demo.base + "/demo-rp/callback")
    assert "Inloggad som Anna Andersson" in done.text
    assert "SE2321000016-1234" in done.text  # employeeHsaId in the ID token shown


def test_siths_host_serves_only_the_certificate_step(demo):
    """Without a card the SITHS host answers (our page, not a TLS error); the main host never
    serves the certificate endpoint."""
    ctx = ssl.create_default_context(cafile=demo.printed("Test root CA"))
    page = httpx.get(demo.siths + "/login/siths/?ref=" + "A" * 43, verify=ctx, timeout=10)
    assert page.status_code == 400
    assert httpx.get(demo.base + "/login/siths/?ref=" + "A" * 43, timeout=10).status_code == 404


def test_sigterm_stops_the_demo_cleanly(demo):
    code, out, err = _stop(demo)
    assert code == 0, err
    assert "Broker demo stopped." in out
    assert "Traceback" not in err, err
    with pytest.raises(httpx.TransportError):
        httpx.get(demo.base + "/demo-rp/", timeout=2)
    # A directory named with --dir is the person's: kept, keys and cards included.
    assert (demo.workdir / "keys").is_dir() and (demo.workdir / "siths").is_dir()


def _start_in(tmp: Path, *args: str) -> subprocess.Popen:
    """`broker demo` with its temporary directory under `tmp` (TMPDIR), so the test can see
    the directory the demo made."""
    return subprocess.Popen([sys.executable, "-m", "broker.cli", "demo", *args], cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(tmp)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stopped(proc: subprocess.Popen, sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"broker demo did not stop on {signal.Signals(sig).name}:\n{err}")
    return proc.returncode, out, err


@pytest.mark.parametrize(("sig", "args"), [
    (signal.SIGTERM, ()),                # kill, a service manager
    (signal.SIGINT, ("--no-siths",)),   # Ctrl-C
    (signal.SIGHUP, ("--no-siths",)),   # the terminal window closed
], ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_temporary_directory_is_removed_when_the_demo_stops(tmp_path, sig, args):
    """Without --dir the demo's files (private keys, test cards, an audit log with personal
    numbers) are in a directory of their own, removed when the demo stops."""
    port, siths_port = free_port(), free_port()
    proc = _start_in(tmp_path, "--port", str(port), "--siths-port", str(siths_port), *args)
    try:
        _wait_for(f"http://localhost:{port}/.well-known/openid-configuration")
        made = list(tmp_path.glob("broker-demo-*"))
        assert len(made) == 1, made
        assert (made[0] / "keys").is_dir() and (made[0] / "authz.yaml").is_file()
    finally:
        code, out, err = _stopped(proc, sig)
    assert code == 0, err
    assert f"files in {made[0]}: removed when the demo stops" in out
    assert "Broker demo stopped." in out and "Traceback" not in err, err
    assert not made[0].exists()
    assert list(tmp_path.iterdir()) == []


def test_temporary_directory_is_removed_when_stopped_while_starting(tmp_path):
    """A person who presses Ctrl-C (or a script that kills the demo) before it is up leaves
    nothing behind either: the signal arrives while keys and the test PKI are being made."""
    proc = _start_in(tmp_path, "--port", str(free_port()), "--siths-port", str(free_port()))
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("broker-demo-*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    code, _out, err = _stopped(proc, signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_no_siths_offers_bankid_only(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "demo", "--port", str(port),
                             "--no-siths", "--dir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://localhost:{port}/.well-known/openid-configuration")
        with httpx.Client(timeout=10) as browser:
            # One method: no chooser, straight to the BankID page.
            page = browser.get(f"http://localhost:{port}/demo-rp/login", follow_redirects=True)
        assert page.status_code == 200
        assert "SITHS-kort" not in page.text
        assert not (tmp_path / "siths").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "SITHS host" not in out

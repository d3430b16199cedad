"""`broker simulator bankid` as a real process."""

import socket
import subprocess
import sys
import time

import httpx
import pytest

from broker.simulators.bankid import main


def test_bad_auto_approve_is_refused_with_a_message(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--auto-approve", "199001012384"])
    assert e.value.code == 2
    assert "check digit" in capsys.readouterr().err


def test_runs_and_serves_the_api(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("from broker.simulators.bankid import main; import sys; "
            f"sys.exit(main(['--port', '{port}', '--auto-approve', '199001012385']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/rp/v6.0/auth",
                               json={"endUserIp": "192.0.2.5"})
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        ref = r.json()["orderRef"]
        got = httpx.post(f"http://127.0.0.1:{port}/rp/v6.0/collect", json={"orderRef": ref}).json()
        assert got["status"] == "complete"
        assert got["completionData"]["user"]["personalNumber"] == "199001012385"
        assert httpx.get(f"http://127.0.0.1:{port}/rp/v6.0/auth").status_code == 405
    finally:
        proc.terminate()
        proc.wait(timeout=10)

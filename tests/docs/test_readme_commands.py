"""The two commands on the README's first screen work as written, in a fresh clone with a
fresh `.venv`, and CI runs exactly the README's test command.

The `readme` tests are slow (a new venv, everything installed from the registry again: pip's
cache in $HOME is used where the registry lets it cache), so their timeout is generous but
bounded. They run once per test run; the inner run they start selects a few fast tests with
`-k`, which never matches these tests, so nothing recurses.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.redis import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
#: A tiny selection for the inner test run that still needs what .ci/setup installs (helm,
#: hadolint, the test extras); it matches none of the tests in this file.
INNER_SELECTION = "test_smoke or test_hadolint_is_clean or test_helm_lint_strict"
INSTALL_TIMEOUT = 600  # seconds for a fresh venv and a full install, on a loaded 2-core machine


def readme_commands() -> tuple[str, str]:
    """(demo command, test command): the command lines of the README's first code block."""
    block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README.md has no ```sh block"
    lines = [ln.strip() for ln in block.group(1).splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) == 2, f"the README's first block should hold two commands: {lines}"
    demo, tests = lines
    assert demo.endswith("broker demo") and ".venv" in demo, demo
    assert "pytest" in tests and ".venv" in tests, tests
    return demo, tests


def test_ci_runs_exactly_the_readme_test_command():
    _, command = readme_commands()
    lines = [ln.strip() for ln in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert command in lines, f".ci/run does not run {command!r}"
    assert lines[-1] == command, ".ci/run must end with the README's test command"


def test_readme_selection_matches_no_readme_test():
    names = re.findall(r"^def (test_\w+)", Path(__file__).read_text(encoding="utf-8"), re.M)
    for name in names:
        assert not any(word.strip() in name for word in INNER_SELECTION.split(" or ")), name


# --- the commands themselves, in a fresh clone ---------------------------------------------


def _fresh_clone(dest: Path) -> Path:
    """A clone of this repository with this working tree's uncommitted changes laid over it
    (what a clone would be once they are committed), without .venv or any ignored file."""
    clone = dest / "broker"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
        check=True, capture_output=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, changed):
        src, dst = ROOT / name, clone / name
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        elif dst.is_file():
            dst.unlink()
    assert not (clone / ".venv").exists()
    return clone


def _person_env(tmp: Path) -> dict[str, str]:
    """The environment of a person at a shell: no PYTHONPATH or active venv pointing at this
    checkout; HOME (pip's and Go's caches) kept; temporary files under `tmp`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    own_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != own_bin)
    env["TMPDIR"] = str(tmp)
    return env


def _installed_into_the_system(clone: Path) -> str:
    """What the system's python3 knows of the clone: the README promises to install into the
    project's .venv only. (Not a before/after comparison of everything installed: on a shared
    machine other people's installs would change that while the test runs.)"""
    shown = subprocess.run(["python3", "-m", "pip", "show", "broker"], capture_output=True,
                           text=True, timeout=120, env=_person_env(Path("/tmp"))).stdout
    return shown if str(clone) in shown else ""


def _installed_into_the_venv(clone: Path) -> bool:
    shown = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-m", "pip", "show",
                            "broker"], capture_output=True, text=True, timeout=120,
                           env=_person_env(Path("/tmp"))).stdout
    return f"Editable project location: {clone}" in shown


@pytest.mark.readme
@pytest.mark.timeout(INSTALL_TIMEOUT + 180)
def test_readme_demo_command_in_a_fresh_clone(tmp_path):
    """The demo command as written (on free ports) installs into .venv and serves discovery;
    Ctrl-C stops it and removes its temporary directory."""
    command, _ = readme_commands()
    clone, tmp = _fresh_clone(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    port, siths_port = free_port(), free_port()
    # Its own process group, as in a terminal: Ctrl-C reaches every process of the command.
    proc = subprocess.Popen(["bash", "-c", f"{command} --port {port} --siths-port {siths_port}"],
                            cwd=clone, env=_person_env(tmp), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    issuer = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + INSTALL_TIMEOUT
        while True:
            assert proc.poll() is None, f"the demo command ended:\n{proc.communicate()[0]}"
            try:
                meta = httpx.get(issuer + "/.well-known/openid-configuration", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "discovery did not answer in time"
                time.sleep(1)
        assert meta["issuer"] == issuer
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "Broker demo stopped." in out
    assert (clone / ".venv" / "bin" / "broker").is_file()
    assert not list(tmp.glob("broker-demo-*")), "the demo left its temporary directory"
    assert _installed_into_the_venv(clone)
    assert _installed_into_the_system(clone) == "", "the demo command installed into the system"


@pytest.mark.readme
@pytest.mark.timeout(INSTALL_TIMEOUT + 600)
def test_readme_test_command_in_a_fresh_clone(tmp_path):
    """The test command as written, with a tiny -k selection: .ci/setup makes .venv and
    installs what those tests need (helm and hadolint among them), and they pass."""
    _, command = readme_commands()
    clone, tmp = _fresh_clone(tmp_path), tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.run(["bash", "-c", f"{command} -p no:cacheprovider -k '{INNER_SELECTION}'"],
                          cwd=clone, env=_person_env(tmp), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=INSTALL_TIMEOUT + 540)
    out = proc.stdout
    assert proc.returncode == 0, out[-5000:]
    summary = out.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 3, summary
    assert not re.search(r"failed|error|skipped", summary), summary
    assert (clone / ".venv" / "bin" / "hadolint").is_file()
    assert _installed_into_the_venv(clone)
    assert _installed_into_the_system(clone) == "", "the test command installed into the system"


def test_person_env_drops_this_checkout(monkeypatch, tmp_path):
    """The inner commands must not see this checkout's code or venv: otherwise they would
    test it instead of the fresh clone."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PATH", f"{ROOT / '.venv' / 'bin'}{os.pathsep}/usr/bin")
    env = _person_env(tmp_path)
    assert "PYTHONPATH" not in env
    assert env["PATH"] == "/usr/bin"

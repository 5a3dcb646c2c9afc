"""Fixtures shared by every test folder."""

import os
import pty
import subprocess
import sys

import pytest
from hypothesis import settings

# CI replays the same examples every run (a red CI blocks a landing); `make test` on a
# desk draws new ones each time, which is how the edge cases get found.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def on_terminal():
    """Run ``volley ARGS`` with stderr on a pseudo-terminal: (exit code, stdout, what the
    terminal showed). For progress displays, which only draw on a terminal."""

    def run(*args: str, timeout: float = 60) -> tuple[int, bytes, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args], stderr=slave, stdout=subprocess.PIPE
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=timeout)
        os.close(master)
        return proc.returncode, out, shown.decode(errors="replace")

    return run

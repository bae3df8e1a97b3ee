"""The suite does not depend on the SIGINT disposition its runner inherited (conftest)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_children_start_with_pythons_own_sigint_handler() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    check = (
        "import signal, sys; "
        "sys.exit(signal.getsignal(signal.SIGINT) is not signal.default_int_handler)"
    )
    assert subprocess.run([sys.executable, "-c", check], check=False).returncode == 0

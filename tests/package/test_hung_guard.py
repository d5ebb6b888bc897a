"""The suite's guard against a hung test (tests/conftest.py, ``hung_test_ends``), run as CI
runs the suite: pytest with xdist in a process of its own, on a test that never ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zse_cli import ROOT, TIMEOUT

pytestmark = pytest.mark.main_interpreter

HANGS = """
import threading


def test_hangs():
    threading.Event().wait()  # what never comes


def test_after():
    assert True
"""


def test_a_hung_test_fails_with_its_stacks_and_the_run_goes_on(tmp_path: Path) -> None:
    """A test still running after its time (2 s here) is reported failed with every thread's
    stack under its name, and the tests after it run; the reports' directory is removed."""
    (tmp_path / "test_hang.py").write_text(HANGS)
    env = {k: v for k, v in os.environ.items() if k != "ZSE_TEST_HUNG_DIR"}  # not this run's
    env["ZSE_TEST_HUNG_AFTER"] = "2"
    env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-n", "1", "-q", "-W", "ignore::DeprecationWarning", f"--rootdir={tmp_path}",
         str(tmp_path / "test_hang.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out
    assert "worker 'gw0' crashed while running 'test_hang.py::test_hangs'" in out
    assert "1 failed, 1 passed" in out
    _, _, hung = out.partition("= hung test =")
    assert hung.splitlines()[1:3] == ["test_hang.py::test_hangs: still running after 2 s",
                                      "Timeout (0:00:02)!"]  # fmt: skip
    assert f'File "{tmp_path / "test_hang.py"}", line 6 in test_hangs' in hung
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("zse-hung-")]

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


def _pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest with the suite's conftest on ``tmp_path/test_hang.py`` (its guard at 2 s, its
    temporary directories in ``tmp_path``), ``env`` added to this process's environment (less
    the reports' directory an earlier guard named there)."""
    (tmp_path / "test_hang.py").write_text(HANGS)
    inherited = {k: v for k, v in os.environ.items() if k != "ZSE_TEST_HUNG_DIR"}
    env = {**inherited, "ZSE_TEST_HUNG_AFTER": "2", "TMPDIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "-q", "-W", "ignore::DeprecationWarning", f"--rootdir={tmp_path}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def _made(tmp_path: Path) -> list[str]:
    """The reports' directories the guard left in ``tmp_path``."""
    return [p.name for p in tmp_path.iterdir() if p.name.startswith("zse-hung-")]


def test_a_hung_test_fails_with_its_stacks_and_the_run_goes_on(tmp_path: Path) -> None:
    """A test still running after its time (2 s here) is reported failed with every thread's
    stack under its name, and the tests after it run; the reports' directory is removed."""
    done = _pytest(tmp_path, "-n", "1", str(tmp_path / "test_hang.py"))
    out = done.stdout
    assert done.returncode == 1, out
    assert "worker 'gw0' crashed while running 'test_hang.py::test_hangs'" in out
    assert "1 failed, 1 passed" in out
    _, _, hung = out.partition("= hung test =")
    assert hung.splitlines()[1:3] == ["test_hang.py::test_hangs: still running after 2 s",
                                      "Timeout (0:00:02)!"]  # fmt: skip
    assert f'File "{tmp_path / "test_hang.py"}", line 6 in test_hangs' in hung
    assert not _made(tmp_path)


def test_a_hung_test_in_one_process_says_its_stacks_as_the_run_ends(tmp_path: Path) -> None:
    """Without xdist workers (``-p no:xdist``, as ``make pytest`` runs with one process, or a
    plain ``pytest``) the hung test ends the run itself: it ended with status 1 and not a
    word, its stacks written in a directory nobody was told of, and left there (or, for a
    pytest run by a test, in the reports' directory of the run around it, named in that
    run's summary). The stacks now go to the run's standard error, and nowhere else. The
    hostile review of the guard found it."""
    outer = tmp_path / "outer"
    outer.mkdir()
    done = _pytest(
        tmp_path, "-p", "no:xdist", str(tmp_path / "test_hang.py"), ZSE_TEST_HUNG_DIR=str(outer)
    )
    assert done.returncode == 1, done.stdout
    assert "Timeout (0:00:02)!" in done.stderr
    assert f'File "{tmp_path / "test_hang.py"}", line 6 in test_hangs' in done.stderr
    assert (_made(tmp_path), [*outer.iterdir()]) == ([], [])


def test_a_run_without_a_summary_leaves_no_reports_directory(tmp_path: Path) -> None:
    """``pytest --markers`` (with xdist's workers asked for) configures and ends without a
    terminal summary: the reports' directory, removed there, was left in the temporary
    directory at each such run."""
    done = _pytest(tmp_path, "-n", "2", "--markers", str(tmp_path / "test_hang.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not _made(tmp_path)

"""A standard output that cannot be written: a full one (``>/dev/full``) said ``error:
OSError: No space left on device`` (exit 1), and ``zse --help`` / ``--version`` printed a
traceback; each is now ``error: cannot write standard output: why``, exit status 2 as a
named output's write failure. A closed pipe (``| head -0``) ends quietly, as Python advises
for EPIPE on standard output: no traceback, no error line. Each is run with standard output
buffered and unbuffered (``PYTHONUNBUFFERED``: the write then fails where it is made)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.zse_cli import ROOT, run_zse

CODE = "83FED3407A939723A5C639B26916D505C3B5"
CSV = str(ROOT / "examples" / "devices.csv")
#: A capture whose decoded lines are more than a write buffer (8 KiB).
CAPTURE = str(ROOT / "tests" / "capture" / "published" / "killerbee-control4-sample.pcap")
COMMANDS = [
    ["installcode", CODE],
    ["installcode", "--json", CODE],
    ["installcode", "--csv", CSV],
    ["capture", CAPTURE],
    ["cert", "--help"],
    ["--help"],
    ["--version"],
]
FULL = "error: cannot write standard output: No space left on device"


@pytest.fixture(params=["buffered", "unbuffered"])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    """This process's environment, with standard output buffered or not."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return environ | ({"PYTHONUNBUFFERED": "1"} if request.param == "unbuffered" else {})


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error")]


@pytest.fixture
def full() -> Iterator[int]:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """The writing end of a pipe whose reader has gone."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        yield writer
    finally:
        os.close(writer)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_full_standard_output_is_one_line_and_status_2(
    args: list[str], full: int, env: dict[str, str]
) -> None:
    """The error is the last line (``--csv``'s summary of rows may come before it)."""
    done = run_zse(*args, stdout=full, env=env)
    assert done.returncode == 2, done.stderr
    assert _errors(done.stderr) == [FULL]
    assert done.stderr.endswith(FULL + "\n")


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_pipe_ends_quietly(args: list[str], closed_pipe: int, env: dict[str, str]) -> None:
    """Exit status 1 exactly (click's for EPIPE), buffered or not; also so on 3.12 and 3.13."""
    done = run_zse(*args, stdout=closed_pipe, env=env)
    assert done.returncode == 1, done.stderr
    assert _errors(done.stderr) == []


def test_a_file_error_is_still_said_as_the_file_s(tmp_path: Path, full: int) -> None:
    """A failure that names a file is that file's, even with a full standard output."""
    done = run_zse("installcode", "--csv", str(tmp_path / "missing.csv"), stdout=full, env=None)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: cannot read {tmp_path / 'missing.csv'}: ")

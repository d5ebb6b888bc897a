"""Output files that cannot be written are named (a store review, 2026-12-06): a write that
fails halfway (a full disk, a file size limit) was "error: OSError: No space left on device",
which names no file, from ``zse capture --write``, ``zse demo`` (tests/package/
test_cli_faults.py) and a write to a name ``zse headend init`` cannot create. Each is now one
line "cannot write PATH: why", exit status 2 as the outputs' other errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.zse_cli import run_zse as _zse

ROOT = Path(__file__).resolve().parents[2]
#: A capture whose decrypted copy is larger than a write buffer (8 KiB): written in several
#: writes, the first of which fails under a 1000-byte file size limit.
CAPTURE = ROOT / "tests" / "capture" / "published" / "killerbee-control4-sample.pcap"


def _said(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_capture_write_to_a_full_device_names_it() -> None:
    """``--write /dev/full`` was "error: OSError: No space left on device", exit 1."""
    result = _zse("capture", str(CAPTURE), "--write", "/dev/full")
    assert result.returncode == 2
    assert _said(result) == ("error: cannot write --write /dev/full: No space left on device")


def test_capture_write_failing_halfway_names_it_and_leaves_nothing(tmp_path: Path) -> None:
    """A ``--write`` file that fails past its first buffer (the disk full halfway) was
    "error: OSError: File too large", exit 1; nothing is left of it, nor of its temporary."""
    out = tmp_path / "clear.pcap"
    result = _zse("capture", str(CAPTURE), "--write", str(out), limit=1000)
    assert result.returncode == 2
    assert _said(result) == f"error: cannot write --write {out}: File too large"
    assert list(tmp_path.iterdir()) == []


def test_headend_init_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    """A file of ``zse headend init`` that could not be created was said as its directory,
    which exists: "DIR: No such file or directory"."""
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "ca-key.pem").symlink_to(tmp_path / "gone" / "key.pem")  # to nowhere
    result = _zse("headend", "init", str(directory))
    assert result.returncode == 2
    assert _said(result) == (
        f"error: cannot write {directory / 'ca-key.pem'}: No such file or directory"
    )


def test_headend_init_names_the_file_a_full_disk_stops(tmp_path: Path) -> None:
    """A write of ``zse headend init`` failing halfway (a full disk) named no file: only the
    directory could be said."""
    directory = tmp_path / "pki"
    result = _zse("headend", "init", str(directory), limit=100)
    assert result.returncode == 2
    said = _said(result)
    assert said.startswith(f"error: cannot write {directory}{os.sep}"), said
    assert said.endswith(".pem: File too large"), said

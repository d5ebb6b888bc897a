"""``zse capture FILE | head``: a reader that goes away ends the command quietly with status 1,
as every other command (``zse installcode``, ``zse demo``) and Python do. It ended with status
0, which the exit-status table says means "the capture was read to its end", and with
``--write`` its output file was not written at all: the previous one is kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.zse_cli import ROOT, run_zse

#: A capture whose decoded lines are more than a write buffer (8 KiB).
CAPTURE = str(ROOT / "tests" / "capture" / "published" / "killerbee-control4-sample.pcap")


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_a_reader_that_goes_away_ends_it_with_status_1(unbuffered: bool, tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env = environ | ({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    target = tmp_path / "out.pcap"
    target.write_bytes(b"the previous file")
    reader, writer = os.pipe()
    os.close(reader)  # the reader has gone before the first line
    try:
        done = run_zse("capture", CAPTURE, "--write", str(target), stdout=writer, env=env)
    finally:
        os.close(writer)
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    assert target.read_bytes() == b"the previous file"

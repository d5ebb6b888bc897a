"""The HHT executed log (:class:`~zse.interpan.hht.FileLog`) given a file that is not a log
(hostile-input audit D10): it is refused with a :class:`StoreError` naming the file and never
modified (it used to be cut to 0 bytes as a "torn tail" when it started with a zero byte)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from zse.errors import InvalidFrame, StoreError
from zse.interpan.hht import FileLog, LogEntry

FOREIGN = {
    "mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + random.Random(1).randbytes(20_000),
    "short mp4": b"\x00\x00\x00\x18ftypmp42",
    "zero then text": b"\x00hello, world\n",
    "text": b"hello",  # 'h' = 104 bytes claimed: it looked like a record cut short
    "png": b"\x89PNG\r\n\x1a\n" + bytes(30),
}


@pytest.mark.parametrize("data", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_foreign_file_is_a_store_error_and_left_as_it_is(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "not-a-log.bin"
    path.write_bytes(data)
    with pytest.raises(StoreError, match=rf"^{re.escape(str(path))}: not an HHT log"):
        FileLog(path, fsync=False)
    assert path.read_bytes() == data


def test_a_real_log_followed_by_junk_after_a_zero_byte_is_not_cut(tmp_path: Path) -> None:
    """Zero bytes where a length belongs, then more than one append of other bytes: damage in
    the middle of the log, reported, the file unchanged."""
    path = tmp_path / "hht.log"
    log = FileLog(path, fsync=False)
    log.begin(LogEntry(0x1000_0001, 7, 0, 1))
    log.close()
    data = path.read_bytes() + b"\x00" + random.Random(2).randbytes(5000).replace(b"\x00", b"\x01")
    path.write_bytes(data)
    with pytest.raises(InvalidFrame, match="corrupt HHT log record at file offset"):
        FileLog(path, fsync=False)
    assert path.read_bytes() == data


def test_an_empty_or_zero_filled_file_is_still_a_log(tmp_path: Path) -> None:
    path = tmp_path / "hht.log"
    path.write_bytes(bytes(4096))  # created, then a power cut before its data reached the disk
    FileLog(path, fsync=False).close()
    assert path.read_bytes() == b""

"""Garbage to the HHT executed log's reader (:class:`~zse.interpan.hht.FileLog`, the meter's
record of what it ran, replayed at every start): a valid log, short and wide records
(format 2) alike, with bytes replaced, bits flipped, spans dropped or inserted, cut or grown
gives only InvalidFrame (damage in the middle) or StoreError (not a log), never another
exception; a log that opens kept a prefix of the file (only a torn tail is ever cut), and
opens again to the same entries."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings

from tests.garbage import near_valid
from zse.errors import InvalidFrame, StoreError
from zse.interpan.hht import FileLog, LogEntry, Status


def _seed() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hht.log"
        log = FileLog(path, fsync=False)
        for txid, status, result in (
            (1, Status.EXECUTED, b"ok"),
            (2, Status.FAILED, bytes(range(252))),  # a DONE record over 255 bytes: wide
            (3, None, b""),  # begun, never done
        ):
            log.begin(LogEntry(txid, 7, txid - 1, 3))
            if status is not None:
                log.done(txid, status, result)
        log.close()
        return path.read_bytes()


SEED = _seed()


def _entries(log: FileLog) -> list[LogEntry | None]:
    return [log.get(txid) for txid in range(1, 4)]


@settings(max_examples=100, deadline=None)
@given(data=near_valid([SEED], most=2))
def test_damaged_logs_open_or_raise_invalid_frame_or_store_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hht.log"
        path.write_bytes(data)
        try:
            log = FileLog(path, fsync=False)
        except (InvalidFrame, StoreError):
            assert path.read_bytes() == data  # refused, and left as it was
            return
        log.close()
        kept = path.read_bytes()
        assert data.startswith(kept)
        again = FileLog(path, fsync=False)
        again.close()
        assert _entries(again) == _entries(log)
        assert path.read_bytes() == kept

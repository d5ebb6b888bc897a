"""The HHT's executed log (:class:`zse.interpan.hht.FileLog`) survives a power cut from its
first record on: each append was fsynced, but the log's directory never was, so a log created
just before a power cut could lose its name, and with it the BEGIN of a command that ran (run
again after the restart: at-most-once broken). ``os.fsync`` is watched, not replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.store.helpers import watch_fsync
from zse.interpan.hht import FileLog, LogEntry


def test_a_new_log_s_directory_is_synced_before_its_first_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hht.log"
    synced = watch_fsync(monkeypatch, lambda: path.stat().st_size)  # (a directory?, size)
    log = FileLog(path)
    try:
        log.begin(LogEntry(0x2000_0001, 7, 0, 1))
    finally:
        log.close()
    assert synced[0] == (True, 0), synced  # the name on disk, then the record
    assert synced[1:] == [(False, path.stat().st_size)]
    synced.clear()
    FileLog(path).close()  # an existing log: its name is on disk already
    assert synced == []


def test_without_fsync_nothing_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    log = FileLog(tmp_path / "hht.log", fsync=False)
    log.begin(LogEntry(1, 1, 0, 1))
    log.close()
    assert synced == []

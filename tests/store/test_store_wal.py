"""A damaged SQLite write-ahead log (audit: persistence #3). After a crash the newest
commits live only in ``<store>-wal``; SQLite keeps its frames up to the first one whose
checksum fails and drops the rest without an error, so one flipped bit opened the store with
acknowledged commits gone, nothing said. A crash is imaged here by copying the store's
files while it is open (every commit is in the log: ``synchronous=FULL``)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path

import pytest

from zse.errors import StoreError
from zse.store import Batch, Store

COMMITS = 20
PAGE = 4096  # the store's page size: frames of 24 + PAGE bytes after a 32-byte header


async def _crash_image(tmp_path: Path) -> Path:
    """A store of ``COMMITS`` acknowledged commits as a crash leaves it: the log not
    checkpointed."""
    live, image = tmp_path / "live.db", tmp_path / "image" / "s.db"
    image.parent.mkdir()
    store = await Store.open(live)
    try:
        for i in range(COMMITS):
            await store.commit(Batch().put("ns", f"k{i:03}", {"i": i}))
        shutil.copyfile(live, image)
        shutil.copyfile(f"{live}-wal", f"{image}-wal")
    finally:
        await store.close()
    return image


def flip_bit(path: Path, offset: int) -> None:
    """The lowest bit of the byte at ``offset`` of the file, flipped in place."""
    with path.open("r+b") as data:
        data.seek(offset)
        byte = data.read(1)[0]
        data.seek(offset)
        data.write(bytes([byte ^ 0x01]))


async def _records(path: Path) -> int:
    store = await Store.open(path)
    try:
        return len(await store.load("ns"))
    finally:
        await store.close()


async def test_a_crash_image_opens_whole(tmp_path: Path) -> None:
    assert await _records(await _crash_image(tmp_path)) == COMMITS


async def test_acknowledged_commits_lost_in_a_damaged_log_refuse_the_store(
    tmp_path: Path,
) -> None:
    image = await _crash_image(tmp_path)
    wal = Path(f"{image}-wal")
    frames = (wal.stat().st_size - 32) // (24 + PAGE)
    flip_bit(wal, 32 + frames // 2 * (24 + PAGE) + 100)  # a page of a commit half way
    with pytest.raises(StoreError, match="damaged write-ahead log") as refused:
        await Store.open(image)
    assert "s.db-wal.damaged" in str(refused.value)
    aside = Path(f"{image}-wal.damaged")
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600  # it holds what the store holds
    # SQLite's close kept what it could and removed the log: refused while the copy is there
    with pytest.raises(StoreError, match="set aside"):
        await Store.open(image)
    os.unlink(aside)  # the operator's call: go on with what SQLite recovered
    assert 0 < await _records(image) < COMMITS


async def test_the_last_transaction_dropped_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One transaction dropped, the last: a power cut may have cut it short before it was
    acknowledged; opened, with a warning."""
    image = await _crash_image(tmp_path)
    wal = Path(f"{image}-wal")
    flip_bit(wal, wal.stat().st_size - 100)
    with caplog.at_level(logging.WARNING, logger="zse.store_sqlite"):
        assert await _records(image) == COMMITS - 1
    assert any("last transaction" in r.getMessage() for r in caplog.records)

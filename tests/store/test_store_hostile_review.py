"""A hostile review of the store files on an operator's bad day: what SQLite cannot open beside
a store (its ``-wal`` or ``-shm`` a directory) is not "damaged" (whose advice, restore a backup
or move the file away, would throw a healthy store away), and a disk that fills up mid-commit
loses nothing acknowledged. SQLite only: these are about the files beside a store's file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.store.helpers import run_python
from zse.errors import StoreError
from zse.store import Batch, Store


async def _healthy(path: os.PathLike[str]) -> None:
    async with await Store.open(path) as store:
        await store.commit(Batch().put("ns", "k", 1).append("ns", "kind", 1))


@pytest.mark.parametrize("beside", ["-wal", "-shm"])
async def test_a_directory_beside_a_store_is_said_not_called_damage(tmp_path, beside):
    """A ``-wal`` directory (or one at ``-shm`` while the log holds commits) beside a healthy
    store was "a damaged SQLite database ...: restore a backup, or move the file away to start
    afresh"; and a new store beside one, a "damaged" empty file."""
    for fresh in (False, True):
        path = tmp_path / f"{beside}{fresh}.db"
        if not fresh:
            await _healthy(path)
        before = path.read_bytes() if path.exists() else None
        os.mkdir(f"{path}{beside}")
        with pytest.raises(StoreError) as refused:
            await Store.open(path)
        said = str(refused.value)
        assert "\n" not in said
        assert "damaged" not in said, said
        assert "restore a backup" not in said, said
        assert f"cannot open {path.name}{beside}" in said, said
        if before is not None:
            assert path.read_bytes() == before
        os.rmdir(f"{path}{beside}")
        async with await Store.open(path) as store:  # the directory gone: all there
            assert await store.load("ns") == ({} if fresh else {"k": 1})


@pytest.mark.parametrize("beside", ["-wal", "-shm"])
async def test_what_sqlite_cannot_open_beside_a_store_is_not_called_damage(tmp_path, beside):
    """SQLite's "unable to open database file" (its ``-wal`` or ``-shm`` a link to nowhere, as
    a directory it may not write) was "a damaged SQLite database": said as what it is."""
    path = tmp_path / "s.db"
    await _healthy(path)
    before = path.read_bytes()
    os.symlink(tmp_path / "gone" / "x", f"{path}{beside}")
    with pytest.raises(StoreError) as refused:
        await Store.open(path)
    said = str(refused.value)
    assert said.startswith(f"{path}: cannot open: unable to open database file; "), said
    assert "damaged" not in said.replace("is not damaged", ""), said
    assert "backup" not in said, said
    assert path.read_bytes() == before


READ_ONLY = """
import asyncio, os, sys
from tests.store.helpers import run_python
from zse.errors import StoreError
from zse.store import Store

os.chdir(sys.argv[1])
if os.geteuid() == 0:  # as a user who owns the store but may not write its directory
    os.setuid(int(sys.argv[2]))

async def main():
    try:
        await Store.open("s.db")
    except StoreError as exc:
        print(exc)

asyncio.run(main())
"""


async def test_a_read_only_directory_is_not_called_damage(tmp_path):
    """A store whose directory may not be written (SQLite cannot create ``-shm`` beside it)
    was "a damaged SQLite database ...: restore a backup, or move the file away"."""
    user = 65534  # nobody: SQLite opens by the absolute path, which that user must traverse
    with tempfile.TemporaryDirectory() as top:  # tmp_path's parents are their owner's alone
        directory = Path(top) / "ro"
        directory.mkdir()
        await _healthy(directory / "s.db")
        if os.geteuid() == 0:
            os.chmod(top, 0o755)
            os.chown(directory / "s.db", user, user)
        directory.chmod(0o555)
        try:
            said = run_python(READ_ONLY, str(directory), str(user))
        finally:
            directory.chmod(0o755)
        assert said.startswith("s.db: cannot open: attempt to write a readonly database; "), said
        assert "damaged" not in said.replace("is not damaged", ""), said
        async with await Store.open(directory / "s.db") as store:
            assert await store.load("ns") == {"k": 1}


FILLING = """
import asyncio, resource, sys
from tests.store.helpers import run_python
from zse.errors import StoreError
from zse.store import Batch, Store

async def main(path):
    store = await Store.open(path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # the disk fills up
    i = 0
    try:
        while True:
            await store.commit(Batch().put("ns", f"{i:06}", "x" * 3000).append("ns", "a", i))
            print(i, flush=True)
            i += 1
    except StoreError as exc:
        print("refused:", exc, flush=True)
    try:
        await store.commit(Batch().put("ns", "after", 0))
    except StoreError as exc:
        print("refused again:", exc, flush=True)
    await store.close()

asyncio.run(main(sys.argv[1]))
"""


async def test_a_full_disk_is_a_store_error_and_loses_nothing_acknowledged(tmp_path):
    """The file size limit (RLIMIT_FSIZE, as a full disk: writes fail with EFBIG) hit
    mid-commit: that commit and the next are StoreError, one line each; every acknowledged
    batch is there after a restart, whole (its record and its journal entry)."""
    path = tmp_path / "full.db"
    lines = run_python(FILLING, str(path)).splitlines()
    acknowledged = [int(line) for line in lines if line.isdigit()]
    assert acknowledged, lines
    refused = [line for line in lines if line.startswith("refused")]
    assert len(refused) == 2, lines
    assert all(f"{path}: cannot commit: " in line for line in refused), refused
    async with await Store.open(path) as store:
        records = await store.load("ns")
        journal = await store.journal("ns")
        assert await store.quarantined() == []
    assert "after" not in records
    assert [f"{i:06}" for i in acknowledged] == sorted(records)[: len(acknowledged)]
    assert len(records) == len(journal)
    assert sorted(e.value for e in journal) == [int(key) for key in sorted(records)]

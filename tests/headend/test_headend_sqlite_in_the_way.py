"""The headend's work queue on an operator's bad day, as a store is (tests/store/
test_store_hostile_review.py): what SQLite cannot open beside the queue's file (its ``-wal``,
``-shm`` or ``-journal`` a directory, a link to nowhere) or a directory this user may not write
is said as what it is, naming the file in the way, never a bare "disk I/O error"; and a
``-shm`` directory no longer opens the queue read-only, every send then failing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.helpers import run_python
from zse.errors import StoreError
from zse.headend.core import SendKind
from zse.headend.queue import open_queue

BESIDE = ["-wal", "-shm", "-journal"]
NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]
#: A broker never reached: the worker opens its queue first.
BROKER = ["--broker", "mqtt://127.0.0.1:1"]


async def _queue_with_a_send(path: Path) -> None:
    queue = await open_queue(path)
    try:
        await queue.enqueue(1, SendKind.MESSAGE, {"n": 1}, [("0011223344556677", "m-1")], now=1.0)
    finally:
        await queue.close()


def _not_called_damage(said: str) -> None:
    assert "\n" not in said
    assert "damaged" not in said.replace("is not damaged", ""), said
    assert "backup" not in said, said


@pytest.mark.parametrize("fresh", [False, True], ids=["queue", "new"])
@pytest.mark.parametrize("beside", BESIDE)
async def test_a_directory_beside_the_queue_is_named(
    tmp_path: Path, beside: str, fresh: bool
) -> None:
    """A ``-wal`` (or ``-journal``) directory was "cannot open the work queue: disk I/O error"
    or "unable to open database file"; a ``-shm`` one opened the queue read-only, and the
    first send failed "attempt to write a readonly database"."""
    path = tmp_path / "q.sqlite"
    if not fresh:
        await _queue_with_a_send(path)
    before = path.read_bytes() if path.exists() else None
    os.mkdir(f"{path}{beside}")
    with pytest.raises(StoreError) as refused:
        await open_queue(path)
    said = str(refused.value)
    _not_called_damage(said)
    assert said.startswith(f"{path}: cannot open q.sqlite{beside}: a directory, "), said
    assert f"move q.sqlite{beside} away" in said, said
    if before is not None:
        assert path.read_bytes() == before
    os.rmdir(f"{path}{beside}")
    queue = await open_queue(path)  # the directory gone: all there
    try:
        assert len(await queue.rows()) == (0 if fresh else 1)
    finally:
        await queue.close()


@pytest.mark.parametrize("beside", ["-wal", "-shm"])
async def test_what_sqlite_cannot_open_beside_the_queue_is_said_so(
    tmp_path: Path, beside: str
) -> None:
    """SQLite's "unable to open database file" (a ``-wal`` or ``-shm`` that is a link to
    nowhere) was "cannot open the work queue: unable to open database file", with no hint."""
    path = tmp_path / "q.sqlite"
    await _queue_with_a_send(path)
    before = path.read_bytes()
    os.symlink(tmp_path / "gone" / "x", f"{path}{beside}")
    with pytest.raises(StoreError) as refused:
        await open_queue(path)
    said = str(refused.value)
    _not_called_damage(said)
    assert said.startswith(f"{path}: cannot open: unable to open database file; "), said
    assert "the file is not damaged by this" in said, said
    assert path.read_bytes() == before


#: Opens the queue in argv[1] as user argv[2] (who owns it but may not write its directory).
READ_ONLY = """
import asyncio, os, sys
from zse.errors import StoreError
from zse.headend.queue import open_queue

async def main():
    await (await open_queue("q.sqlite")).close()

os.chdir(sys.argv[1])
os.setuid(int(sys.argv[2])) if os.geteuid() == 0 else None
try:
    asyncio.run(main())
except StoreError as exc:
    print(exc)
else:
    print("opened")
"""


@contextlib.contextmanager
def _unwritable(path: Path) -> Iterator[None]:
    """The directory of ``path`` read-only for ``path``'s owner (:data:`NOBODY`'s, when the
    tests run as root, who may write anywhere) while the block runs."""
    if os.geteuid() == 0:
        os.chmod(path.parent.parent, 0o755)  # SQLite opens by the absolute path
        os.chown(path, NOBODY, NOBODY)
    path.parent.chmod(0o555)
    try:
        yield
    finally:
        path.parent.chmod(0o755)


async def test_a_read_only_directory_is_said_so() -> None:
    """A queue whose directory may not be written (SQLite cannot create ``-shm`` beside it)
    was "cannot open the work queue: attempt to write a readonly database", with no hint."""
    with tempfile.TemporaryDirectory() as top:  # tmp_path's parents are their owner's alone
        path = Path(top) / "ro" / "q.sqlite"
        path.parent.mkdir()
        await _queue_with_a_send(path)
        with _unwritable(path):
            said = run_python(READ_ONLY, str(path.parent), str(NOBODY)).strip()
        assert said.startswith(
            "q.sqlite: cannot open: attempt to write a readonly database; the file is not "
            "damaged by this: check that this user may write its directory"
        ), said
        _not_called_damage(said)
        queue = await open_queue(path)
        try:
            assert len(await queue.rows()) == 1
        finally:
            await queue.close()


def test_the_worker_names_the_directory_in_the_way(tmp_path: Path) -> None:
    """``zse headend worker`` on a queue whose ``-wal`` is a directory said "cannot open the
    work queue: disk I/O error"."""
    path = tmp_path / "h-queue.sqlite"
    os.mkdir(f"{path}-wal")
    result = subprocess.run(
        [sys.executable, "-m", "zse", "headend", "worker", "--database", str(path), *BROKER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {path}: cannot open h-queue.sqlite-wal: a directory, where SQLite keeps the "
        "work queue's write-ahead log; refused, the work queue left as it is: move "
        "h-queue.sqlite-wal away\n"
    )

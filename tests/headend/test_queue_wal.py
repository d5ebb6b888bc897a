"""The work queue's write-ahead log checked at open, as a store's is (audit: persistence #3,
left open for the queue). SQLite keeps a log's frames up to the first whose checksum fails
and drops the rest without an error: one flipped bit in ``<queue>-wal`` after a crash opened
the queue with acknowledged jobs gone, nothing said. Several processes share the queue's file,
so the log is checked only by an opener that has the file to itself; the others must never be
refused because a live writer moved the log under them. Real processes, killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store.test_store_wal import flip_bit
from zse.errors import StoreError
from zse.headend.queue import open_queue

COMMITS = 20
PAGE = 4096  # SQLite's default page size: frames of 24 + PAGE bytes after a 32-byte header

#: Enqueues (one acknowledged transaction each) and prints each one done; ``forever``: goes on
#: until killed, with payloads large enough that the log is checkpointed and restarted often.
WRITER = """
import asyncio, sys
from zse.headend.core import SendKind
from zse.headend.queue import open_queue

async def main(path, count, size):
    queue = await open_queue(path)
    send = 0
    while count < 0 or send < count:
        send += 1
        payload = {"message": "x" * size, "n": send}
        devices = [(f"{send:08X}{d:08X}", "meter-1") for d in range(4)]
        await queue.enqueue(send, SendKind.MESSAGE, payload, devices, now=float(send))
        print(send, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


#: Another program (``sqlite3``, no zse) writing to the queue's file until killed.
SQLITE_WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
n = 0
while True:
    n += 1
    db.execute("INSERT INTO headend_readers VALUES (?, ?)", ("x" * 200_000 + str(n), n))
    db.execute("DELETE FROM headend_readers WHERE since < ?", (n - 2,))
    print(n, flush=True)
"""


def _writer(path: Path, count: int, size: int, script: str = WRITER) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(path), str(count), str(size)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def _wait_for(writer: subprocess.Popen[str], acknowledged: int) -> None:
    assert writer.stdout is not None
    while True:
        line = writer.stdout.readline()
        assert line, "writer died"
        if int(line) >= acknowledged:
            return


def _kill(writer: subprocess.Popen[str]) -> None:
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.stdout is not None
    writer.stdout.close()


async def _sends(path: Path) -> int:
    queue = await open_queue(path)
    try:
        return len({row.send for row in await queue.rows()})
    finally:
        await queue.close()


async def test_acknowledged_jobs_lost_in_a_damaged_log_refuse_the_queue(tmp_path: Path) -> None:
    """Was: opened with half the acknowledged sends gone, no error (the check ran on stores
    only)."""
    path = tmp_path / "h-queue.sqlite"
    writer = _writer(path, COMMITS, 100)
    _wait_for(writer, COMMITS)
    _kill(writer)  # its commits only in the log: never checkpointed
    wal = Path(f"{path}-wal")
    frames = (wal.stat().st_size - 32) // (24 + PAGE)
    flip_bit(wal, 32 + frames // 2 * (24 + PAGE) + 100)  # a page of a commit half way
    with pytest.raises(StoreError, match="damaged write-ahead log") as refused:
        await open_queue(path)
    assert "h-queue.sqlite-wal.damaged" in str(refused.value)
    with pytest.raises(StoreError, match="set aside"):  # by every opener, while it is there
        await open_queue(path)
    os.unlink(f"{path}-wal.damaged")  # the operator's call: go on with what SQLite recovered
    assert 0 < await _sends(path) < COMMITS


async def test_a_whole_log_after_a_kill_opens_with_every_acknowledged_job(tmp_path: Path) -> None:
    path = tmp_path / "h-queue.sqlite"
    writer = _writer(path, COMMITS, 100)
    _wait_for(writer, COMMITS)
    _kill(writer)
    assert await _sends(path) == COMMITS


async def test_openers_beside_a_live_writer_are_never_refused(tmp_path: Path) -> None:
    """The log checked only by an opener alone with the file: beside a process writing (its
    log checkpointed and restarted under the opener), a check would count commits that a
    checkpoint moved into the file as dropped."""
    path = tmp_path / "h-queue.sqlite"
    writer = _writer(path, -1, 200_000)  # about 50 pages a commit: a checkpoint every 20
    try:
        _wait_for(writer, 1)
        for _ in range(40):
            queue = await open_queue(path)  # raises StoreError if wrongly refused
            await queue.close()
            assert writer.poll() is None
    finally:
        _kill(writer)
    assert not Path(f"{path}-wal.damaged").exists()


async def test_openers_beside_another_program_writing_are_never_refused(tmp_path: Path) -> None:
    """Another program (no zse lock of its own) is seen by SQLite's lock on ``-shm``."""
    path = tmp_path / "h-queue.sqlite"
    await (await open_queue(path)).close()
    writer = _writer(path, -1, 0, SQLITE_WRITER)
    try:
        _wait_for(writer, 1)
        for _ in range(40):
            queue = await open_queue(path)
            await queue.close()
            assert writer.poll() is None
    finally:
        _kill(writer)
    assert not Path(f"{path}-wal.damaged").exists()

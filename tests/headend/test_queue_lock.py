"""The lock of the work queue's file never waited on without end (audit today #2, #8).

The queue's openers share an ``flock`` on its file; the first, alone with it, holds it
exclusive to check the write-ahead log. A running headend's store holds its file exclusive for
as long as it runs, so ``zse headend worker --database <the store>`` (as the option's help
then said) waited silently until the headend stopped, where it had said at once "not a work
queue"; Ctrl-C could not end the wait. Real processes, as in tests/headend/test_queue_wal.py.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zse.errors import StoreError
from zse.headend.queue import _Sqlite, open_queue
from zse.store_engine import hold_virtual_clock
from zse.store_sqlite import claim_shared, release

#: Guards only: each process here ends (or says what it waits for) within a second or two.
GUARD = 60.0

ZSE = [sys.executable, "-m", "zse"]
NO_BROKER = "mqtt://127.0.0.1:1"

#: Holds a store open (as a running headend does) until its standard input closes.
STORE = """
import asyncio, sys
from pathlib import Path
from zse.store import Store

async def main(path):
    store = await Store.open(Path(path))
    print("open", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await store.close()

asyncio.run(main(sys.argv[1]))
"""

#: Holds an exclusive ``flock`` on a file (an opener checking it, or another program) until
#: its standard input closes.
EXCLUSIVE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def _holder(script: str, path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline(), "the holder died"
    return holder


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.communicate()


def _worker(database: Path) -> subprocess.Popen[str]:
    """``zse headend worker`` (a broker that is never reached: the queue is opened first),
    with SIGINT at its default, as an interactive shell starts it."""
    return subprocess.Popen(
        [*ZSE, "headend", "worker", "--database", str(database), "--broker", NO_BROKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )


def test_a_worker_given_a_running_headends_store_says_so_at_once(tmp_path: Path) -> None:
    """Was: waited without a word for as long as the headend ran (its store's lock)."""
    store = tmp_path / "headend.sqlite"
    holder = _holder(STORE, store)
    try:
        worker = _worker(store)
        try:
            _, err = worker.communicate(timeout=GUARD)
        finally:
            _end(worker)
    finally:
        _end(holder)
    assert worker.returncode == 1
    assert "not a work queue: a zse store" in err
    assert "headend-queue.sqlite" in err
    assert len(err.strip().splitlines()) == 1


async def test_an_exclusive_lock_kept_is_waited_for_a_bounded_time(tmp_path: Path) -> None:
    """Was: waited until the holder let go, however long (a thread blocked in ``flock``).
    The wait is real time, also while a store's work holds the virtual clock."""
    path = tmp_path / "h-queue.sqlite"
    await (await open_queue(path)).close()
    holder = _holder(EXCLUSIVE, path)
    try:
        with (
            pytest.raises(StoreError, match="in use exclusively by another process") as held,
            hold_virtual_clock(),
        ):
            await claim_shared(path, wait=0.2)
    finally:
        _end(holder)
    assert "0.2 s" in str(held.value)
    lock, alone = await claim_shared(path, wait=0.2)  # let go: taken at once, alone
    release(lock)
    assert alone


def test_ctrl_c_ends_a_worker_waiting_for_the_queues_lock(tmp_path: Path) -> None:
    """Was: Ctrl-C cancelled the open, but the process waited at exit for the thread blocked
    in ``flock`` (``asyncio.run`` joins its threads) as long as the lock was held."""
    path = tmp_path / "h-queue.sqlite"
    holder = _holder(EXCLUSIVE, path)
    try:
        worker = _worker(path)
        try:
            assert worker.stderr is not None
            said, _, _ = select.select([worker.stderr], [], [], GUARD)
            assert said, "the worker did not say it waits"
            assert "waiting up to" in worker.stderr.readline()
            worker.send_signal(signal.SIGINT)
            _, err = worker.communicate(timeout=GUARD)
        finally:
            _end(worker)
    finally:
        _end(holder)
    assert worker.returncode == 0, err  # ended by Ctrl-C, not by the wait's end (1)
    assert "in use exclusively" not in err


async def test_the_exclusive_lock_is_kept_only_for_the_log_check(tmp_path: Path) -> None:
    """Was: kept through ``PRAGMA integrity_check`` and the schema's changes, every other
    opener waiting for as long as the whole file took to read."""
    path = tmp_path / "h-queue.sqlite"
    await (await open_queue(path)).close()
    other = os.open(path, os.O_RDWR)  # another opener's description of the file
    during: list[bool] = []

    def shared_now() -> bool:
        try:
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
        return True

    def traced(sql: str) -> None:
        if "integrity_check" in sql:
            during.append(shared_now())

    connection = _Sqlite(path)
    try:
        await connection.connect()
        assert not shared_now()  # alone: exclusive while the log is checked
        await connection._db.set_trace_callback(traced)
        await connection.create()
    finally:
        await connection.close()
        os.close(other)
    assert during == [True]

"""Closing the HHT meter's log while a write is in flight (review of the off-loop log): the
usual shutdown cancels the serving task, whose frame leaves its write running in the executor,
and closes the log. The close waits for that write; it never lands in (nor truncates) another
file of the process that took the log's descriptor number after the close."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import pytest

from tests.interpan.test_interpan_hht_off_loop import (
    LIMIT,
    READ,
    SlowLog,
    execute,
    in_flight,
    recording,
    result_of,
)
from zse.errors import StoreError
from zse.interpan.hht import FileLog, HhtMeter, LogEntry, Result, Status
from zse.interpan.service import answer_carrier, drain

#: How the held write fails, in the log's error.
FULL = "cannot write the HHT log: No space left on device"
#: What a file of the process, opened once the log is closed, holds (and must go on holding).
PRECIOUS = b"IMPORTANT DATA"


class _Watched:
    """A lock that sets ``contended`` when a thread has to wait for it."""

    def __init__(self, contended: threading.Event) -> None:
        self._lock = threading.Lock()
        self._contended = contended

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self._contended.set()
            self._lock.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


class ClosingLog(FileLog):
    """A FileLog that records when an append ends and when :meth:`close` returns, and sets
    :attr:`go` when a close has to wait for an append in flight (the test sets it too, once
    a close that did not wait returned)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.events: list[str] = []
        self.go = threading.Event()
        self._lock = _Watched(self.go)  # type: ignore[assignment]

    def _append(self, record: bytes) -> None:
        try:
            super()._append(record)
        finally:
            self.events.append("append ended")

    def close(self) -> None:
        super().close()
        self.events.append("closed")


class SlowDisk:
    """``os.write`` as a disk that takes long: the first write made on :attr:`thread` blocks
    until :attr:`release` is set, then writes (or, with :attr:`fail`, fails as a full disk
    does). The log has taken its descriptor number by then."""

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False
        self._write = os.write

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if threading.get_ident() == self.thread and not self.release.is_set():
            self.entered.set()
            assert self.release.wait(LIMIT), "the held write was never released"
            if self.fail:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._write(fd, data)


@pytest.fixture
def writer() -> Iterator[ThreadPoolExecutor]:
    """The meter's log writes run on this one thread."""
    with ThreadPoolExecutor(1) as pool:
        yield pool


async def thread_of(pool: ThreadPoolExecutor) -> int:
    """The thread of a one-thread pool (once everything submitted before has ended)."""
    return await asyncio.get_running_loop().run_in_executor(pool, threading.get_ident)


async def wait_for(event: threading.Event) -> None:
    """Until ``event`` is set in some thread (a real wait: the loop keeps running)."""
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, LIMIT)


def open_victim(path: Path) -> int:
    """Another file of the process, opened now: it gets the lowest free descriptor number."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, PRECIOUS)
    return fd


@pytest.mark.parametrize("fails", [False, True], ids=["written", "failed"])
async def test_close_while_a_cancelled_frames_write_is_in_flight(
    tmp_path: Path,
    writer: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fails: bool,
) -> None:
    """The serving task cancelled while its frame's BEGIN is inside ``write`` (the log holds
    its descriptor), then the log closed in another thread: the close returns only once the
    append has ended, and a file opened after the close is untouched, whether the held write
    then completes (the BEGIN is in the log: the command is answered INTERRUPTED, never run)
    or fails (what the failed write left is cut from the log, not from that file; the
    failure, which no frame awaits, is logged)."""
    path, victim = tmp_path / "hht.log", tmp_path / "victim.db"
    log = ClosingLog(path)
    runs: list[bytes] = []
    meter = HhtMeter(log, {READ: recording(runs, b"ran")})
    disk = SlowDisk(await thread_of(writer))
    disk.fail = fails
    monkeypatch.setattr(os, "write", disk)
    serving = asyncio.create_task(answer_carrier(meter, execute(0xD00D), executor=writer))
    await wait_for(disk.entered)
    serving.cancel()
    await asyncio.wait((serving,))
    assert serving.cancelled()

    def shut_down() -> int:  # the log closed, then the process opens a file of its own
        log.close()
        fd = open_victim(victim)
        log.go.set()
        return fd

    closing = asyncio.get_running_loop().run_in_executor(None, shut_down)
    await wait_for(log.go)  # the close returned, or waits for the append
    disk.release.set()
    fd = await closing
    await thread_of(writer)  # the append has ended, whatever the close did
    os.close(fd)
    await drain(meter)
    del meter, serving
    gc.collect()  # the write's future: its outcome was retrieved, nothing left unreported
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == (
        [f"HHT log write of a cancelled carrier frame failed: {path}: {FULL}"] if fails else []
    )
    assert victim.read_bytes() == PRECIOUS
    assert log.events == ["append ended", "closed"]
    assert path.stat().st_size == (0 if fails else 1 + 9 + 4)
    assert runs == []
    with contextlib.closing(FileLog(path)) as reopened:
        meter = HhtMeter(reopened, {READ: recording(runs, b"ran")})
        answer = result_of(meter.receive(execute(0xD00D)))
    if fails:  # its BEGIN never reached the log: it had not run, and runs now
        assert (answer, runs) == (Result(0xD00D, Status.EXECUTED, b"ran"), [b""])
    else:
        assert (answer, runs) == (Result(0xD00D, Status.INTERRUPTED), [])


async def test_an_append_held_before_the_file_is_refused_after_close(tmp_path: Path) -> None:
    """An append held before it reached the file while the log is closed: the close does
    not wait for it, and the append is refused (StoreError) and writes nothing, to the log
    or to a file opened after the close; so is any append after the close."""
    path, victim = tmp_path / "hht.log", tmp_path / "victim.db"
    log = SlowLog(path)
    meter = HhtMeter(log, {READ: recording([], b"")})
    held = asyncio.create_task(answer_carrier(meter, execute(0xD00E)))
    await in_flight(log)
    log.close()
    fd = open_victim(victim)
    log.release.set()
    with pytest.raises(StoreError, match=r"the HHT log is closed$"):
        await held
    with pytest.raises(StoreError, match=r"the HHT log is closed$"):
        log.begin(LogEntry(0xD00F, 1, 0, 1))
    os.close(fd)
    assert victim.read_bytes() == PRECIOUS
    assert path.stat().st_size == 0
    assert log.get(0xD00E) is None


async def test_drain_waits_for_the_write_a_cancelled_frame_left(tmp_path: Path) -> None:
    """The shutdown order (docs/interpan.md): the serving task cancelled mid-write, then
    ``await drain(meter)`` returns once that write is on disk, so closing the log after it
    does not block the event loop."""
    path = tmp_path / "hht.log"
    log = SlowLog(path)
    meter = HhtMeter(log, {READ: recording([], b"")})
    await drain(meter)  # nothing answered yet: nothing to wait for
    serving = asyncio.create_task(answer_carrier(meter, execute(0xD010)))
    await in_flight(log)
    serving.cancel()
    await asyncio.wait((serving,))
    draining = asyncio.create_task(drain(meter))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not draining.done()
    log.release.set()
    await draining
    assert (log.busy, path.stat().st_size) == (0, 1 + 9 + 4)  # the BEGIN ended, on disk
    log.close()
    assert log.get(0xD010) == LogEntry(0xD010, 1, 0, 1)

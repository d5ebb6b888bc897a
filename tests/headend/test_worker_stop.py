"""A worker's stop, and the work queue, when the database fails the rollback of a transaction
that a cancellation cut short (the database away: a disk I/O error, a broken connection)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from zse.headend.core import SendKind
from zse.headend.link import EsiLink
from zse.headend.queue import JobQueue, _Sqlite
from zse.headend.worker import Worker
from zse.store_engine import hold_virtual_clock

DEVICE, METER = "000D6F0000000001", "meter-1"


class _Failing(_Sqlite):
    """The queue's SQLite connection with the database's failures on demand: a claim it is
    slow to answer (``slow``: it never does) and ROLLBACKs that fail (``failing``: how
    many), as a disk I/O error makes them (SQLite cannot be made to fail one on cue)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.slow = False
        self.failing = 0
        self.claiming = asyncio.Event()

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.slow and "SET state = 'leased'" in sql:
            self.claiming.set()
            await asyncio.Event().wait()
        return await super().fetch(sql, params)

    async def rollback(self) -> None:
        if self.failing:
            self.failing -= 1
            raise sqlite3.OperationalError("disk I/O error")
        await super().rollback()


@pytest.fixture
async def failing(tmp_path: Path) -> AsyncIterator[tuple[JobQueue, _Failing]]:
    connection = _Failing(tmp_path / "queue.sqlite")
    with hold_virtual_clock():
        await connection.connect()
        await connection.create()
    queue = JobQueue(connection)
    try:
        yield queue, connection
    finally:
        connection.slow, connection.failing = False, 0
        await queue.close()


async def test_stop_returns_when_the_rollback_fails(
    failing: tuple[JobQueue, _Failing],
) -> None:
    """Was: the cancelled claim's failed ROLLBACK replaced the cancellation with a
    StoreError, the worker's loop caught it and went on, and ``stop()`` never returned."""
    queue, connection = failing
    worker = Worker(queue, EsiLink({}), owner="w1", poll=0.05)
    await worker.start()
    connection.slow, connection.failing = True, 1
    async with asyncio.timeout(60):
        await connection.claiming.wait()
    task = worker._task
    assert task is not None
    async with asyncio.timeout(60):  # virtual seconds: the worker polls every 0.05
        await worker.stop()
    assert task.cancelled()
    assert connection.failing == 0  # the rollback was tried, and failed


async def test_queue_works_after_a_failed_rollback(
    failing: tuple[JobQueue, _Failing],
) -> None:
    """Was: a cancelled transaction whose ROLLBACK failed ended in StoreError, not its
    cancellation, and left the connection inside the transaction: every later one failed
    ("cannot start a transaction within a transaction"). Now the cancellation is raised and
    the rollback made before the next use, its changes undone."""
    queue, connection = failing
    inside = asyncio.Event()

    async def cut_short() -> None:
        async with queue.transaction("record a reader") as db:
            await db.execute("INSERT INTO headend_readers (reader, since) VALUES ('r', 1)")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(cut_short())
    await inside.wait()
    connection.failing = 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    await queue.enqueue(1, SendKind.MESSAGE, {"message_id": 1}, [(DEVICE, METER)], now=0.0)
    [job] = await queue.claim("w1", now=1.0, lease=30.0, limit=5)
    assert (job.send, job.device) == (1, DEVICE)
    async with queue.transaction("read the readers") as db:
        assert await db.fetch("SELECT reader FROM headend_readers") == []

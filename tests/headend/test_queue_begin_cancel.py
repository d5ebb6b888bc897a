"""A cancel landing while the work queue's SQLite ``BEGIN IMMEDIATE`` waits for another writer
leaves no transaction open (audit asyncio robustness #2).

The cancel ended the await outside the rollback's ``try``, but aiosqlite's thread still ran the
BEGIN once the other writer committed: the transaction stayed open, no rollback owed, and the
queue's next use failed "cannot start a transaction within a transaction" (its write lock held
for good). Two real connections on one queue file, one holding the write lock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from zse.headend.queue import open_queue


async def _since(path: Path) -> dict[str, float]:
    """The readers' marks as stored, read through a queue of its own."""
    queue = await open_queue(path)
    try:
        async with queue.transaction("read the readers") as db:
            rows = await db.fetch("SELECT reader, since FROM headend_readers")
    finally:
        await queue.close()
    return {str(reader): float(since) for reader, since in rows}


async def test_a_cancel_during_begin_leaves_no_transaction_open(tmp_path: Path) -> None:
    """Was: the next use of the queue raised StoreError ("cannot start a transaction within a
    transaction") and its connection kept the write lock."""
    path = tmp_path / "h-queue.sqlite"
    holder = await open_queue(path)
    queue = await open_queue(path)
    try:
        async with holder.transaction("hold the write lock") as db:
            await db.execute("INSERT INTO headend_readers (reader, since) VALUES ('holder', 1)")
            cut = asyncio.create_task(queue.mark_read("api", 1.0))
            await asyncio.sleep(0)  # its first wait: BEGIN IMMEDIATE, behind the holder's lock
            assert not cut.done()
            cut.cancel()
            await asyncio.gather(cut, return_exceptions=True)
            assert cut.cancelled()
        # the holder committed: the cancelled BEGIN may now open its transaction
        await queue.mark_read("api", 2.0)
        await holder.mark_read("holder", 3.0)  # the write lock is free again
    finally:
        await queue.close()
        await holder.close()
    assert await _since(path) == {"api": 2.0, "holder": 3.0}

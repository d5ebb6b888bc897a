"""A process killed (SIGKILL) while committing loses nothing it was told was committed."""

from __future__ import annotations

from tests.postgres_server import wait_released
from tests.store.helpers import kill_at
from zse.store import Store

WRITER = """
import asyncio, sys
from zse.store import Batch, Store

async def main(path, run):
    store = await Store.open(path)
    i = 0
    while True:
        # One record and two journal entries per transaction.
        v = [run, i]
        batch = Batch().put("ns", f"{run}-{i:06}", v)
        await store.commit(batch.append("ns", "a", v).append("ns", "b", v))
        print(i, flush=True)
        i += 1

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_sigkill_mid_commit_loses_no_acknowledged_batch_and_splits_none(place):
    path = place("killed.db")
    for round_ in range(3):  # kill, reopen, continue writing into the same file, kill again
        acknowledged = kill_at(WRITER, str(path), str(round_), count=40)
        await wait_released(path)
        async with await Store.open(path) as store:
            records = await store.load("ns")
            journal = await store.journal("ns")
        values = sorted(records.values())
        # Every acknowledged batch of every round survived.
        assert [round_, acknowledged] in values
        # No batch is split: each record has exactly its two journal entries.
        assert len(journal) == 2 * len(records)
        assert sorted(e.value for e in journal if e.kind == "a") == values
        assert sorted(e.value for e in journal if e.kind == "b") == values
        for earlier in range(round_ + 1):
            assert [[earlier, i] for i in range(41)] == [v for v in values if v[0] == earlier][:41]

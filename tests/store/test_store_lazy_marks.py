"""Marking journal entries reported does not wait for the disk (docs/persistence.md): a mark
lost to a power cut only has its entry reported again, which every journal reader takes (at
least once), so the second synced transaction each told report cost is gone. Anything else in
the same transaction keeps the full sync, the full sync is back after every lazy commit (even
a failed one), and a killed process keeps its marks (the OS has the log's pages).

The statements are counted with SQLite's trace callback; the sync itself is SQLite's and
PostgreSQL's documented behaviour (``PRAGMA synchronous``, ``synchronous_commit``)."""

from __future__ import annotations

from tests.postgres_server import raw_sql, wait_released
from tests.store.helpers import UNDER_WAY, kill_at
from zse.store import Batch, Store, StoreError


def _first_words(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:2]) if s.startswith("PRAGMA") else s.split()[0] for s in statements]


async def _traced(store: Store) -> list[str]:
    statements: list[str] = []
    await store._engine._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    return statements


async def _synchronous(store: Store) -> int:
    [(level,)] = await store._rows("PRAGMA synchronous")
    return int(level)


@UNDER_WAY
async def test_a_commit_of_marks_alone_is_lazy_and_the_full_sync_comes_back(tmp_path):
    async with await Store.open(tmp_path / "s.db") as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        statements = await _traced(store)
        await store.mark_reported(seq)
        assert _first_words(statements) == [
            "PRAGMA synchronous=NORMAL",
            "BEGIN",
            "UPDATE",
            "COMMIT",
            "PRAGMA synchronous=FULL",
        ]
        assert await _synchronous(store) == 2  # FULL
        [entry] = await store.journal("ns")
        assert entry.reported


@UNDER_WAY
async def test_a_mark_with_any_other_write_waits_for_the_disk(tmp_path):
    async with await Store.open(tmp_path / "s.db") as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        statements = await _traced(store)
        await store.commit(Batch().mark_reported(seq).put("ns", "k", 1))
        await store.commit(Batch().append("ns", "told", {"d": 2}))
        assert not any(s.startswith("PRAGMA") for s in statements)
        assert await _synchronous(store) == 2


async def test_a_failed_lazy_commit_leaves_the_full_sync(place):
    """A mark whose transaction fails (the journal table gone behind the store's back) is
    refused as before, and the next commits are synced again."""
    path = place("s.db")
    async with await Store.open(path) as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        if place.engine != "sqlite":  # the tests' server runs with it off
            await store._rows("SET synchronous_commit TO on")
        await raw_sql(path, "ALTER TABLE journal RENAME TO gone")
        try:
            await store.mark_reported(seq)
        except StoreError:
            pass
        else:  # pragma: no cover - the test's premise
            raise AssertionError("the mark found a journal")
        await raw_sql(path, "ALTER TABLE gone RENAME TO journal")
        if place.engine == "sqlite":
            assert await _synchronous(store) == 2
        else:  # rolled back, with any SET in it (PostgreSQL's rule, whatever zse does)
            assert await store._rows("SHOW synchronous_commit") == [("on",)]
        await store.commit(Batch().append("ns", "told", {"d": 2}))
        assert len(await store.unreported("ns")) == 2


async def test_the_full_sync_is_back_after_a_lazy_commit_on_both_engines(place):
    """After a mark's lazy transaction commits, the next transaction waits for the disk
    again: SQLite's level back to FULL, PostgreSQL's ``synchronous_commit`` as it was (a
    session-wide ``SET`` in place of ``SET LOCAL`` left it off for every later commit)."""
    path = place("s.db")
    async with await Store.open(path) as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        if place.engine != "sqlite":  # the tests' server runs with it off
            await store._rows("SET synchronous_commit TO on")
        await store.mark_reported(seq)
        if place.engine == "sqlite":
            assert await _synchronous(store) == 2
        else:
            assert await store._rows("SHOW synchronous_commit") == [("on",)]


async def test_marks_on_both_engines_are_kept_and_read_back(place):
    path = place("s.db")
    async with await Store.open(path) as store:
        seqs = await store.commit(Batch().append("ns", "a", 1).append("ns", "b", 2))
        await store.mark_reported(*seqs)
        await store.commit(Batch().put("ns", "k", 1))
    async with await Store.open(path) as store:
        assert await store.unreported("ns") == []
        assert [e.reported for e in await store.journal("ns")] == [True, True]


MARKER = """
import asyncio, sys
from zse.store import Batch, Store, StoreError

async def main(path):
    store = await Store.open(path)
    i = 0
    while True:
        [seq] = await store.commit(Batch().append("ns", "told", i))
        await store.mark_reported(seq)
        print(i, flush=True)
        i += 1

asyncio.run(main(sys.argv[1]))
"""


async def test_sigkill_keeps_every_lazy_mark_it_was_told_of(place):
    path = place("killed.db")
    marked = kill_at(MARKER, str(path), count=40)
    await wait_released(path)
    async with await Store.open(path) as store:
        journal = await store.journal("ns")
    reported = {e.value for e in journal if e.reported}
    assert set(range(marked + 1)) <= reported
    # at most the one entry after the last acknowledged mark is still unreported
    assert len([e for e in journal if not e.reported]) <= 1

"""What a commit costs the loop (docs/performance.md, ``benchmarks/headend_records.py``): on
aiosqlite's thread a transaction is one trip there (BEGIN, its statements and the COMMIT run
together), and marking an entry this store appended checks it in its UPDATE instead of reading
it back first; the guarantees are the same (a damaged entry is not marked, and is quarantined).

Counted, not timed: aiosqlite logs each function it runs on its thread at DEBUG, and SQLite's
trace callback sees each statement."""

from __future__ import annotations

import logging

import pytest

from tests.postgres_server import raw_sql
from tests.store.helpers import UNDER_WAY
from zse.store import Batch, Store, _entry_sum


def trips(caplog: pytest.LogCaptureFixture) -> int:
    """The functions aiosqlite ran on its thread since the log was cleared."""
    return sum(
        1
        for r in caplog.records
        if r.name == "aiosqlite" and r.getMessage().startswith("executing")
    )


@UNDER_WAY
async def test_a_commit_and_a_mark_are_one_trip_each_to_aiosqlites_thread(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="aiosqlite")
    async with await Store.open(tmp_path / "s.db") as store:
        caplog.clear()
        [seq] = await store.commit(Batch().put("ns", "k", 1).append("ns", "told", {"d": 1}))
        assert trips(caplog) == 1  # was 5: BEGIN, INSERT, INSERT, UPDATE, COMMIT
        caplog.clear()
        await store.mark_reported(seq)
        assert trips(caplog) == 1  # was 4: BEGIN, SELECT, UPDATE, COMMIT
        assert await store.unreported("ns") == []


@UNDER_WAY
async def test_marking_an_entry_it_appended_reads_nothing_back(tmp_path):
    async with await Store.open(tmp_path / "s.db") as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        statements: list[str] = []
        await store._engine._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        await store.mark_reported(seq)
        # (the two PRAGMAs: a commit of marks alone does not wait for the disk,
        # tests/store/test_store_lazy_marks.py)
        assert [s.split()[0] for s in statements] == [
            "PRAGMA",
            "BEGIN",
            "UPDATE",
            "COMMIT",
            "PRAGMA",
        ]
        [entry] = await store.journal("ns")
        assert entry.reported


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE journal SET value = '{\"d\":2}'",  # its content
        "UPDATE journal SET checksum = 'x'",  # its checksum
        "UPDATE journal SET kind = 'other'",
    ],
)
async def test_an_entry_it_appended_then_damaged_is_not_marked(place, damage):
    """The one-statement mark of an entry the store remembers appending changes nothing if
    the row is no longer as written: left unmarked, and quarantined as before."""
    path = place("s.db")
    async with await Store.open(path) as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        await raw_sql(path, damage)
        await store.mark_reported(seq)
        assert await raw_sql(path, "SELECT reported FROM journal") == [(0,)]
    async with await Store.open(path) as store:
        assert await store.journal("ns") == []
        [bad] = await store.quarantined("ns")
        assert (bad.origin, bad.key) == ("journal", str(seq))


async def test_an_entry_marked_behind_its_back_is_left_as_it_is(place):
    """Marked behind the store's back (checksum and all) after it was appended: the mark
    finds it reported and changes nothing, as the read-back did."""
    path = place("s.db")
    async with await Store.open(path) as store:
        [seq] = await store.commit(Batch().append("ns", "told", {"d": 1}))
        marked = _entry_sum(seq, "ns", "told", '{"d":1}', 1)
        await raw_sql(path, ("UPDATE journal SET reported = 1, checksum = ?", (marked,)))
        await store.mark_reported(seq)
        assert await raw_sql(path, "SELECT reported, checksum FROM journal") == [(1, marked)]
    async with await Store.open(path) as store:
        assert await store.quarantined() == []
        assert [e.seq for e in await store.journal("ns")] == [seq]

"""zse.store: records, the write-ahead journal, atomic batches, the virtual clock held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.store.helpers import (
    UNDER_WAY,
    count_transactions,
    hold_next_transaction,
    one_transaction_busy,
)
from zse.errors import StoreError
from zse.store import APPLICATION_ID, SCHEMA_VERSION, Batch, Store, StoreView


async def test_records_round_trip_json_and_bytes(place):
    path = place("state.db")
    async with await Store.open(path) as store:
        await store.commit(
            Batch()
            .put("a", "m1", {"text": "héllo", "raw": b"\x00\xff", "n": [1, 2], "f": None})
            .put("a", "m2", 7)
            .put("b", "x", True)
        )
        assert await store.load("a") == {
            "m1": {"text": "héllo", "raw": b"\x00\xff", "n": [1, 2], "f": None},
            "m2": 7,
        }
        assert await store.get("b", "x") is True
        assert await store.get("b", "missing", "dflt") == "dflt"
    async with await Store.open(path) as store:
        assert await store.load("b") == {"x": True}
        await store.commit(Batch().delete("a", "m2").delete("a", "never"))
        assert await store.load("a") == {
            "m1": {"text": "héllo", "raw": b"\x00\xff", "n": [1, 2], "f": None}
        }
        await store.commit(Batch().replace("a", {"only": 1}))
        assert await store.load("a") == {"only": 1}
        assert await store.namespaces() == ["a", "b"]


async def test_header_identifies_a_zse_store(tmp_path):
    """SQLite only: the file header (a PostgreSQL store: test_store_postgres.py)."""
    path = tmp_path / "state.db"
    store = await Store.open(path)
    await store.close()
    await store.close()  # twice is fine
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


async def test_journal_write_ahead_then_mark_reported(place):
    path = place("state.db")
    async with await Store.open(path) as store:
        seqs = await store.commit(
            Batch().put("ns", "k", 1).append("ns", "send", {"a": 1}).append("ns", "send", {"a": 2})
        )
        assert len(seqs) == 2
        assert seqs[0] < seqs[1]
        other = await store.commit(Batch().append("other", "send", "x"))
        assert [e.value for e in await store.unreported("ns")] == [{"a": 1}, {"a": 2}]
        await store.mark_reported(seqs[0])
        await store.mark_reported(seqs[0])  # idempotent
    async with await Store.open(path) as store:
        pending = await store.unreported("ns")
        assert [(e.seq, e.kind, e.value, e.reported) for e in pending] == [
            (seqs[1], "send", {"a": 2}, False)
        ]
        assert [e.reported for e in await store.journal("ns")] == [True, False]
        # Marking together with a state change is one transaction.
        await store.commit(Batch().mark_reported(seqs[1]).put("ns", "k", 2))
        assert await store.unreported("ns") == []
        assert [e.value for e in await store.unreported("other")] == ["x"]
        assert other[0] > seqs[1]


async def test_prune_keeps_unreported_and_never_reuses_numbers(place):
    async with await Store.open(place("s.db")) as store:
        batch = Batch()
        for i in range(5):
            batch.append("ns", "k", i)
        seqs = await store.commit(batch)
        await store.mark_reported(*seqs[:4])
        assert await store.prune("ns", keep=1) == 3
        assert [e.value for e in await store.journal("ns")] == [3, 4]
        assert await store.prune("ns") == 1
        assert [e.value for e in await store.journal("ns")] == [4]
        (new,) = await store.commit(Batch().append("ns", "k", 5))
        assert new > seqs[-1]


async def test_batch_is_all_or_nothing(place):
    path = place("s.db")
    async with await Store.open(path) as store:
        await store.commit(Batch().put("ns", "a", 1))
        batch = Batch().put("ns", "a", 2).append("ns", "k", "lost")
        # Force an SQL error after two statements ran (NOT NULL constraint on the namespace).
        batch._ops.append(("append", None, "k", "1"))  # type: ignore[arg-type]
        refusal = {"sqlite": "NOT NULL constraint failed", "postgresql": "violates not-null"}
        with pytest.raises(StoreError, match=f"cannot commit: .*{refusal[place.engine]}"):
            await store.commit(batch)
        assert await store.load("ns") == {"a": 1}
        assert await store.unreported("ns") == []
        # The store is still usable after the rollback.
        await store.commit(Batch().put("ns", "a", 3))
        assert await store.load("ns") == {"a": 3}


async def test_unstorable_values_are_refused_before_anything_is_written():
    with pytest.raises(StoreError, match="cannot store a set"):
        Batch().put("ns", "k", {1, 2})
    with pytest.raises(StoreError, match="value cannot be stored"):
        Batch().append("ns", "k", float("nan"))


async def test_closed_store_raises_store_error(place):
    store = await Store.open(place("s.db"))
    await store.close()
    with pytest.raises(StoreError, match="store is closed"):
        await store.load("ns")
    with pytest.raises(StoreError, match="store is closed"):
        await store.commit(Batch().put("ns", "k", 1))


async def test_virtual_clock_stands_still_while_the_database_works(place):
    """Every await on the SQLite thread or the PostgreSQL socket is external work: a pending
    timer must not fire."""
    loop = asyncio.get_running_loop()
    assert hasattr(loop, "external_work")
    fired = asyncio.Event()
    loop.call_later(3600, fired.set)
    start = loop.time()
    async with await Store.open(place("s.db")) as store:
        for i in range(20):
            await store.commit(Batch().put("ns", str(i), i).append("ns", "k", i))
            await store.load("ns")
    assert loop.time() == start
    assert not fired.is_set()


def _aiosqlite_threads() -> int:
    return sum("_connection_worker_thread" in t.name for t in threading.enumerate())


@pytest.mark.asyncio(loop_factories=["inline"])
async def test_on_the_virtual_loop_sqlite_works_on_the_loops_own_thread(tmp_path):
    """The loop's default (``inline_io``): no thread, so a store's answers come at points of
    the loop's work fixed by the program, not by a thread's timing: each commit or read takes
    the same turns of the loop every time."""
    loop = asyncio.get_running_loop()
    assert loop.inline_io  # type: ignore[attr-defined]
    before = _aiosqlite_threads()

    async def turns_per_call(path: Path) -> list[int]:
        turns, stop = [0], asyncio.Event()

        async def count() -> None:
            while not stop.is_set():
                turns[0] += 1
                await asyncio.sleep(0)

        counter = asyncio.ensure_future(count())
        seen = []
        async with await Store.open(path) as store:
            assert _aiosqlite_threads() == before
            for i in range(10):
                at = turns[0]
                await store.commit(Batch().put("ns", str(i), i).append("ns", "k", i))
                await store.load("ns")
                seen.append(turns[0] - at)
        stop.set()
        await counter
        return seen

    first = await turns_per_call(tmp_path / "a.db")
    assert first == await turns_per_call(tmp_path / "b.db")
    assert max(first) <= 3


@pytest.mark.asyncio(loop_factories=["threads"])
async def test_with_inline_io_off_sqlite_works_on_aiosqlites_thread(tmp_path):
    """``VirtualClockLoop(inline_io=False)``: as on any loop, aiosqlite's thread (commits made
    while one is being written group into the next: the simulated utility's workers)."""
    before = _aiosqlite_threads()
    async with await Store.open(tmp_path / "s.db") as store:
        assert _aiosqlite_threads() == before + 1
        await store.commit(Batch().put("ns", "k", 1))
        assert await store.load("ns") == {"k": 1}


async def test_concurrent_commits_do_not_interleave(place):
    async with await Store.open(place("s.db")) as store:

        async def writer(n: int) -> list[int]:
            out = []
            for i in range(10):
                out += await store.commit(
                    Batch().put(f"w{n}", str(i), i).append(f"w{n}", "k", i).append(f"w{n}", "k", i)
                )
            return out

        results = await asyncio.gather(*(writer(n) for n in range(4)))
        for n, seqs in enumerate(results):
            assert len(seqs) == 20
            assert len(await store.load(f"w{n}")) == 10
            # Each batch's two appends are adjacent: no other batch ran inside it.
            assert all(seqs[i + 1] == seqs[i] + 1 for i in range(0, 20, 2))


@UNDER_WAY
async def test_commits_that_wait_together_share_one_transaction(place):
    """Group commit: batches waiting while a transaction runs go in the next one, in call
    order, each caller getting its own sequence numbers once it is committed."""
    async with await Store.open(place("s.db")) as store:
        transactions = count_transactions(store)
        first = await one_transaction_busy(store)
        batches = [Batch().put("g", str(i), i).append("g", "k", i) for i in range(5)]
        results = await asyncio.gather(*(store.commit(b) for b in batches))
        await first
        assert transactions == [2]  # the busy one, then all five together
        seqs = [seq for (seq,) in results]
        assert seqs == sorted(seqs)  # in call order
        assert len(set(seqs)) == 5
        assert [e.value for e in await store.unreported("g")] == list(range(5))
        assert await store.load("g") == {str(i): i for i in range(5)}


@UNDER_WAY
async def test_a_failing_batch_in_a_group_fails_alone(place):
    """The shared transaction fails: each batch is tried again alone, so only the caller
    whose batch is bad gets the error, and the others are committed."""
    async with await Store.open(place("s.db")) as store:
        bad = Batch().put("g", "bad", 1)
        bad._ops.append(("append", None, "k", "1"))  # type: ignore[arg-type] # NOT NULL
        first = await one_transaction_busy(store)
        calls = [store.commit(Batch().append("g", "k", 1)), store.commit(bad)]
        calls.append(store.commit(Batch().put("g", "after", 3)))
        results = await asyncio.gather(*calls, return_exceptions=True)
        await first
        assert isinstance(results[0], list)
        assert len(results[0]) == 1
        assert isinstance(results[1], StoreError)
        assert results[2] == []
        assert await store.load("g") == {"after": 3}  # the bad batch left nothing
        assert [e.value for e in await store.unreported("g")] == [1]


@UNDER_WAY
async def test_a_commit_cancelled_while_it_waits_is_not_carried_out(place):
    async with await Store.open(place("s.db")) as store:
        first = await one_transaction_busy(store)
        cancelled = asyncio.ensure_future(store.commit(Batch().put("g", "no", 1)))
        kept = asyncio.ensure_future(store.commit(Batch().put("g", "yes", 2)))
        await asyncio.sleep(0)  # both waiting for the lock
        cancelled.cancel()
        await first
        assert await kept == []
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert await store.load("g") == {"yes": 2}


@UNDER_WAY
async def test_a_commit_cancelled_during_its_transaction_is_carried_out_with_the_others(place):
    """Its batch shares a transaction with others' batches: cancelling one caller cuts
    nobody's transaction; the cancelled caller's batch lands too (as after its COMMIT)."""
    async with await Store.open(place("s.db")) as store:
        first = await one_transaction_busy(store)
        begun, go = hold_next_transaction(store)
        cancelled = asyncio.ensure_future(store.commit(Batch().append("g", "k", 1)))
        kept = asyncio.ensure_future(store.commit(Batch().append("g", "k", 2)))
        await first
        await begun.wait()  # their transaction, begun once the busy one ended
        assert store._waiting == []
        cancelled.cancel()
        try:
            await asyncio.sleep(1)  # virtual: the transaction goes on, the call waits for it
            assert not cancelled.done()
        finally:
            go.set()
        (seq,) = await kept
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert [(e.seq, e.value) for e in await store.unreported("g")] == [(seq - 1, 1), (seq, 2)]


async def in_its_transaction(
    store: Store, owner: Store | StoreView, batch: Batch
) -> tuple[asyncio.Future[list[int]], asyncio.Event]:
    """``owner.commit(batch)`` (``owner``: ``store`` or a view of it), its transaction begun
    once this returns and held until the event returned is set."""
    begun, go = hold_next_transaction(store)
    committing = asyncio.ensure_future(owner.commit(batch))
    await begun.wait()
    assert store._waiting == []  # taken: under way
    return committing, go


@UNDER_WAY
async def test_a_commit_cancelled_during_its_transaction_raises_once_it_landed(place):
    """The cancelled call waits for the transaction's end before its CancelledError, and its
    batch says it landed (what the caller keeps in memory follows it); one cancelled while
    it waited for the lock did not land. Through a view too."""
    async with await Store.open(place("s.db")) as store:
        for owner in (store, store.view("v/")):
            busy, go = await in_its_transaction(store, store, Batch().put("busy", "k", 0))
            skipped = Batch().put("g", "no", 1)
            late = asyncio.ensure_future(owner.commit(skipped))
            await asyncio.sleep(0)  # waiting for the lock
            late.cancel()
            try:
                with pytest.raises(asyncio.CancelledError):
                    await late
            finally:
                go.set()
            await busy
            assert skipped.landed is None
            under_way = Batch().append("g", "k", 1)
            cancelled, go = await in_its_transaction(store, owner, under_way)
            cancelled.cancel()
            try:
                await asyncio.sleep(1)  # virtual: the call waits for its transaction's end
                assert not cancelled.done()
                assert under_way.landed is None
            finally:
                go.set()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
            assert under_way.landed is not None
            assert len(under_way.landed) == 1
            assert await owner.load("g") == {}
            assert [e.seq for e in await owner.unreported("g")][-1:] == under_way.landed


@UNDER_WAY
async def test_a_commit_cancelled_again_during_its_transaction_still_waits_for_its_end(place):
    """Cancelled twice (a stop, then the loop's shutdown or a time-out) while its transaction
    runs: the call still waits for the transaction's end, and its batch says it landed. It
    raised at the second cancellation with ``landed`` None though the batch was then stored:
    the caller put its change back (or took it again), its events told twice."""
    async with await Store.open(place("s.db")) as store:
        under_way = Batch().append("g", "k", 1)
        cancelled, go = await in_its_transaction(store, store, under_way)
        cancelled.cancel()
        await asyncio.sleep(0)
        cancelled.cancel()
        try:
            await asyncio.sleep(1)  # virtual: cancelled twice, the call still waits
            assert not cancelled.done()
        finally:
            go.set()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert under_way.landed is not None
        assert [e.seq for e in await store.unreported("g")] == under_way.landed


class SlowAlone(Store):
    """A store whose transactions of one batch (a failed group's batches tried again each
    alone) wait for ever, once ``slow`` is set: ``alone`` says one began."""

    slow = False

    async def _commit_batches(self, batches: list[Batch]) -> list[list[int]]:
        if self.slow and len(batches) == 1:
            self.alone.set()
            await asyncio.get_running_loop().create_future()  # until cancelled
        return await super()._commit_batches(batches)


@UNDER_WAY
async def test_a_shutdown_during_a_failed_groups_retries_ends_every_commit(place):
    """The loop shutting down (every task cancelled, the committer too) while a failed
    group's batches are tried again one by one: each call ends, cancelled. The batches not
    yet tried were left unsettled, so a caller cancelled during its transaction (which waits
    for its end) waited for ever, and the shutdown with it."""
    async with await SlowAlone.open(place("s.db")) as store:
        store.alone = asyncio.Event()
        bad = Batch().put("g", "bad", 1)
        bad._ops.append(("append", None, "k", "1"))  # type: ignore[arg-type] # NOT NULL
        first = await one_transaction_busy(store)
        calls = [asyncio.ensure_future(store.commit(b)) for b in (Batch().put("g", "a", 1), bad)]
        await asyncio.sleep(0)  # both waiting for the lock
        store.slow = True
        await first  # their transaction fails: the first batch is tried alone, and waits
        await store.alone.wait()
        committer = store._committer
        assert committer is not None
        for task in (*calls, committer):  # as asyncio.run's end does
            task.cancel()
        async with asyncio.timeout(60):
            results = await asyncio.gather(*calls, return_exceptions=True)
        assert [type(r) for r in results] == [asyncio.CancelledError] * 2
        assert bad.landed is None


@UNDER_WAY
async def test_commits_called_before_a_close_land_before_it(place):
    path = place("s.db")
    store = await Store.open(path)
    first = await one_transaction_busy(store)
    waiting = asyncio.ensure_future(store.commit(Batch().append("g", "k", 1)))
    await asyncio.sleep(0)  # waiting for the committer's next turn
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)  # the close waits for the lock too
    await first
    assert len(await waiting) == 1
    await closing
    with pytest.raises(StoreError, match="store is closed"):
        await store.commit(Batch().put("g", "late", 1))
    async with await Store.open(path) as again:
        assert [e.value for e in await again.unreported("g")] == [1]

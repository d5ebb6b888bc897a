"""The work queue's writes on PostgreSQL by compare and set (``JobQueue._write``): the rows read,
then written in one statement only where they are still as read, no transaction of their own;
a job another worker changed in between is read and computed again, never overwritten; past
``SWAP_ROUNDS`` the rest is written in a locking transaction. The race is made deterministic:
the second worker's write runs, on its own connection, between the first's read and its
write."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from zse.headend import queue as queue_module
from zse.headend.core import Outcome, SendKind
from zse.headend.queue import Completion, JobQueue, ReportedOutcome, open_queue

DEVICES = [("000D6F0000000001", "m1"), ("000D6F0000000002", "m1")]
EVENT = {"issuer_event_id": 4}


def _report(device: str, outcome: Outcome) -> ReportedOutcome:
    return ReportedOutcome(send=4, device=device, kind=SendKind.LOAD_CONTROL, outcome=outcome)


def _between_read_and_write(
    queue: JobQueue, others: Callable[[], Awaitable[Any]], times: int = 1
) -> list[list[tuple[int, str]]]:
    """Run ``others()`` just before each of the first ``times`` swaps of ``queue``; the keys
    each swap was given."""
    swap = queue._db.swap
    calls: list[list[tuple[int, str]]] = []

    async def racing(updates: Any, expected: Any) -> set[tuple[int, str]]:
        calls.append(sorted(updates))
        if len(calls) <= times:
            await others()
        return await swap(updates, expected)

    queue._db.swap = racing  # type: ignore[method-assign]
    return calls


async def _delivered(queue: JobQueue) -> None:
    """Every job claimed and answered delivered (at 0.5)."""
    jobs = await queue.claim("a", now=0.0, lease=60.0)
    answers = [Completion(job=j, outcome=Outcome.DELIVERED) for j in jobs]
    assert all(await queue.complete_many("a", answers, now=0.5))


def _statements(queue: JobQueue) -> list[str]:
    """The statements ``queue``'s connection runs from now on (asyncpg's query logger)."""
    seen: list[str] = []
    queue._db._db.add_query_logger(lambda logged: seen.append(logged.query))  # type: ignore[attr-defined]
    return seen


async def test_recording_is_a_read_and_one_write_without_a_transaction(pg_place: Any) -> None:
    url = pg_place("queue")
    queue = await open_queue(url)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        first, second = await queue.claim("a", now=0.0, lease=60.0)
        # the first write also has asyncpg look up the statement's types, once a connection
        assert await queue.complete_many(
            "a", [Completion(job=first, outcome=Outcome.DELIVERED)], now=1.0
        ) == [True]
        seen = _statements(queue)
        assert await queue.complete_many(
            "a", [Completion(job=second, outcome=Outcome.DELIVERED)], now=1.0
        ) == [True]
        reports = [_report(d, o) for d, _ in DEVICES for o in (Outcome.RECEIVED, Outcome.STARTED)]
        assert await queue.report_many(reports, now=2.0) == [True] * 4
        await asyncio.sleep(0)  # asyncpg tells its query loggers from the loop's next turn
        assert len(seen) == 4, [q[:40] for q in seen]
        assert [q.split()[0] for q in seen] == ["SELECT", "WITH", "SELECT", "WITH"]
        assert not any(q.strip().upper() in ("BEGIN", "COMMIT") for q in seen)
        rows = await queue.rows(4)
        assert {(r.outcome, r.attempts, r.state) for r in rows} == {(Outcome.STARTED, 1, "sent")}
    finally:
        await queue.close()


async def test_a_report_written_in_between_is_seen_not_overwritten(pg_place: Any) -> None:
    """A's report (received) was computed from the row before B's (started) was written: A's
    write finds the row changed, reads it again, and its report moves nothing."""
    url = pg_place("queue")
    a, b = await open_queue(url), await open_queue(url)
    try:
        await a.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        await _delivered(a)  # handed out: reports move them (none moves a job never was)
        device = DEVICES[0][0]
        moved_by_b: list[list[bool]] = []

        async def b_reports() -> None:
            moved_by_b.append(await b.report_many([_report(device, Outcome.STARTED)], now=1.0))

        calls = _between_read_and_write(a, b_reports)
        other = DEVICES[1][0]
        reports = [_report(device, Outcome.RECEIVED), _report(other, Outcome.RECEIVED)]
        assert await a.report_many(reports, now=2.0) == [False, True]
        assert moved_by_b == [[True]]
        # the first write took both; only the device B changed was read again, and then
        # there was nothing left to write for it
        assert calls == [[(4, device), (4, other)]]
        rows = {r.device: (r.outcome, r.state, r.updated) for r in await a.rows(4)}
        assert rows == {
            device: (Outcome.STARTED, "sent", 1.0),
            other: (Outcome.RECEIVED, "sent", 2.0),
        }
    finally:
        await a.close()
        await b.close()


async def test_an_answer_whose_lease_was_taken_in_between_is_not_recorded(pg_place: Any) -> None:
    url = pg_place("queue")
    a, c = await open_queue(url), await open_queue(url)
    try:
        await a.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        jobs = await a.claim("a", now=0.0, lease=5.0)
        taken: list[int] = []

        async def c_claims() -> None:  # a's leases ran out: c takes them
            taken.append(len(await c.claim("c", now=5.0, lease=60.0)))

        calls = _between_read_and_write(a, c_claims)
        answers = [Completion(job=j, outcome=Outcome.DELIVERED) for j in jobs]
        assert await a.complete_many("a", answers, now=4.0) == [False, False]
        assert taken == [2]
        assert len(calls) == 1  # read again: no longer a's, nothing to write
        rows = await a.rows(4)
        assert {(r.outcome, r.attempts, r.state) for r in rows} == {(Outcome.PENDING, 0, "leased")}
        # c, which holds them now, records its answers
        again = await c.claim("c", now=70.0, lease=60.0)
        assert await c.complete_many(
            "c", [Completion(job=j, outcome=Outcome.DELIVERED) for j in again], now=71.0
        ) == [True, True]
    finally:
        await a.close()
        await c.close()


async def test_past_the_rounds_the_rest_is_written_in_a_locking_transaction(
    pg_place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "SWAP_ROUNDS", 2)
    url = pg_place("queue")
    a, b = await open_queue(url), await open_queue(url)
    try:
        await a.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        await _delivered(a)  # handed out: reports move them (none moves a job never was)
        device = DEVICES[0][0]
        steps = iter([Outcome.RECEIVED, Outcome.STARTED])

        async def b_reports() -> None:  # a change each round: the swap never wins
            await b.report_many([_report(device, next(steps))], now=1.0)

        calls = _between_read_and_write(a, b_reports, times=2)
        seen = _statements(a)
        assert await a.report_many([_report(device, Outcome.COMPLETED)], now=2.0) == [True]
        assert len(calls) == 2
        assert "BEGIN" in [q.strip().upper() for q in seen]  # the third time, locked
        (row,) = [r for r in await a.rows(4) if r.device == device]
        assert (row.outcome, row.state, row.updated) == (Outcome.COMPLETED, "sent", 2.0)
    finally:
        await a.close()
        await b.close()


async def test_three_workers_writing_the_same_jobs_at_once_record_each_thing_once(
    pg_place: Any,
) -> None:
    """Answers by the lease holder and the same reports from two other workers, all at once
    on their own connections, in shuffled batches: every job ends started, answered once,
    and each report's move forward is counted once across the workers."""
    url = pg_place("queue")
    devices = [(f"000D6F00000{n:05X}", f"m{n // 3}") for n in range(120)]
    a, b, c = await open_queue(url), await open_queue(url), await open_queue(url)
    try:
        await a.enqueue(4, SendKind.LOAD_CONTROL, EVENT, devices, now=0.0)
        jobs = await a.claim("a", now=0.0, lease=3600.0, limit=len(devices))
        assert len(jobs) == len(devices)
        shuffle = random.Random(19).shuffle
        answers = [Completion(job=j, outcome=Outcome.DELIVERED) for j in jobs]
        shuffle(answers)
        told = [_report(d, o) for d, _ in devices for o in (Outcome.RECEIVED, Outcome.STARTED)]
        mine, theirs = list(told), list(told)
        shuffle(mine)
        shuffle(theirs)

        async def in_batches(write: Any, items: list[Any], size: int) -> list[bool]:
            done: list[bool] = []
            for start in range(0, len(items), size):
                done += await write(items[start : start + size])
            return done

        recorded, by_b, by_c = await asyncio.gather(
            in_batches(lambda part: a.complete_many("a", part, now=1.0), answers, 17),
            in_batches(lambda part: b.report_many(part, now=2.0), mine, 9),
            in_batches(lambda part: c.report_many(part, now=2.0), theirs, 7),
        )
        assert all(recorded)  # the lease stayed a's: each answer recorded
        started = [
            r.device
            for r, moved in [*zip(mine, by_b, strict=True), *zip(theirs, by_c, strict=True)]
            if moved and r.outcome is Outcome.STARTED
        ]
        assert sorted(started) == sorted(d for d, _ in devices)  # each moved once, by one
        rows = await a.rows(4)
        # answered and reported in whichever order: started, answered once, nothing to send
        assert {(r.outcome, r.attempts, r.state) for r in rows} == {(Outcome.STARTED, 1, "sent")}
    finally:
        for queue in (a, b, c):
            await queue.close()

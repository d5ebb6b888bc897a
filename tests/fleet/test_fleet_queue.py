"""The work queue's rules on both engines (SQLite and a real PostgreSQL): a job is leased to
one worker at a time, a lease that ran out goes to the next worker, a worker that lost its
lease writes nothing, answers and reports move outcomes forward only, a definite "not
reached" moves to a new key while a meter that did not answer keeps it."""

from __future__ import annotations

import dataclasses
import stat
from typing import Any

import pytest

from zse.errors import StoreError
from zse.headend.core import Outcome, SendKind
from zse.headend.queue import NOT_SENT_DEPROVISIONED, Completion, ReportedOutcome, open_queue

DEVICES = [("000D6F0000000001", "m1"), ("000D6F0000000002", "m1"), ("000D6F0000000003", "m2")]
EVENT = {"issuer_event_id": 4}


async def test_claims_leases_and_lost_leases(place: Any) -> None:
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)  # again: no-op
        assert len(await queue.rows()) == 3
        a = await queue.claim("a", now=10.0, lease=5.0, limit=2)
        b = await queue.claim("b", now=10.0, lease=20.0, limit=2)
        assert [j.device for j in a] == [d for d, _ in DEVICES[:2]]
        assert [j.device for j in b] == [DEVICES[2][0]]  # never a job another one holds
        assert await queue.claim("b", now=14.0, lease=5.0) == []
        taken = await queue.claim("b", now=15.0, lease=5.0)  # a's leases ran out
        assert [j.key for j in taken] == [j.key for j in a]  # the same keys
        lost = await queue.complete(a[0], "a", Outcome.DELIVERED, "", now=16.0, answered=True)
        assert not lost  # a no longer holds it: nothing written
        assert await queue.complete(taken[0], "b", Outcome.DELIVERED, "", now=16.0, answered=True)
        row = (await queue.rows(4))[0]
        assert (row.outcome, row.attempts, row.state) == (Outcome.DELIVERED, 1, "sent")
        assert not await queue.complete(
            taken[0], "b", Outcome.DELIVERED, "", now=17.0, answered=True
        )
    finally:
        await queue.close()


async def test_retries_keep_the_key_until_the_meter_answers(place: Any) -> None:
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES[:1], now=0.0)
        (job,) = await queue.claim("a", now=0.0, lease=60.0)
        assert await queue.complete(job, "a", Outcome.OFFLINE, "gone", now=0.0, answered=False)
        assert await queue.claim("a", now=29.0, lease=60.0) == []  # the back-off: 30 s
        (again,) = await queue.claim("a", now=30.0, lease=60.0)
        assert again.key == job.key  # not answered: the same delivery
        await queue.complete(again, "a", Outcome.OFFLINE, "no ack", now=30.0, answered=True)
        assert await queue.claim("a", now=89.0, lease=60.0) == []  # then 60 s
        (third,) = await queue.claim("a", now=90.0, lease=60.0)
        assert third.key.endswith(":1")  # answered "not reached": the next try is new
        row = (await queue.rows())[0]
        assert (row.outcome, row.attempts, row.tries) == (Outcome.OFFLINE, 1, 1)
    finally:
        await queue.close()


async def test_reports_move_outcomes_forward_once_and_cancel_stops_the_rest(place: Any) -> None:
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        (job,) = await queue.claim("a", now=0.0, lease=60.0, limit=1)
        device = job.device
        assert await queue.report(4, device, SendKind.LOAD_CONTROL, Outcome.STARTED, now=1.0)
        assert not await queue.report(4, device, SendKind.LOAD_CONTROL, Outcome.STARTED, now=2.0)
        assert not await queue.report(4, device, SendKind.MESSAGE, Outcome.CONFIRMED, now=2.0)
        # the holder's late "delivered" does not take the outcome back
        assert await queue.complete(job, "a", Outcome.DELIVERED, "", now=3.0, answered=True)
        assert (await queue.rows(4))[0].outcome is Outcome.STARTED
        # a device that reports while its job waits for a retry needs no more delivery
        (waiting,) = await queue.claim("a", now=3.5, lease=60.0, limit=1)
        assert waiting.device == DEVICES[1][0]
        assert await queue.complete(waiting, "a", Outcome.OFFLINE, "", now=3.5, answered=False)
        assert await queue.report(
            4, DEVICES[1][0], SendKind.LOAD_CONTROL, Outcome.RECEIVED, now=4.0
        )
        await queue.cancel(4, now=5.0)
        assert await queue.claim("a", now=100.0, lease=60.0) == []
        rows = await queue.rows(4)
        assert {r.outcome for r in rows} == {Outcome.CANCELLED}
        assert len(await queue.rows(since=5.0)) == 3  # the cancel changed them all
        assert await queue.rows(since=5.5) == []
    finally:
        await queue.close()


async def test_a_cancel_leaves_an_event_that_is_over_as_it_is(place: Any) -> None:
    """Outcomes move forward only: a device's completed (opted out, rejected) event stays so
    through a cancel; every other device, or those named, become cancelled."""
    queue = await open_queue(place("queue"))
    try:
        for send in (4, 5):
            await queue.enqueue(send, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
            for job in await queue.claim("a", now=0.0, lease=60.0):
                await queue.complete(job, "a", Outcome.DELIVERED, "", now=1.0, answered=True)
        for send, device, outcome in (
            (4, DEVICES[0][0], Outcome.COMPLETED),
            (4, DEVICES[1][0], Outcome.OPTED_OUT),
            (5, DEVICES[0][0], Outcome.COMPLETED),
        ):
            assert await queue.report(send, device, SendKind.LOAD_CONTROL, outcome, now=2.0)
        await queue.cancel(4, now=3.0)
        await queue.cancel(5, now=3.0, devices=[DEVICES[0][0], DEVICES[2][0]])
        expected = {
            4: [Outcome.COMPLETED, Outcome.OPTED_OUT, Outcome.CANCELLED],
            5: [Outcome.COMPLETED, Outcome.DELIVERED, Outcome.CANCELLED],
        }
        for send, outcomes in expected.items():
            rows = {r.device: r.outcome for r in await queue.rows(send)}
            assert [rows[d] for d, _ in DEVICES] == outcomes
    finally:
        await queue.close()


async def test_a_device_forsaken_gets_nothing_more(place: Any) -> None:
    """De-provisioned (it may come back as another retailer's): its waiting jobs end unsent,
    a pending outcome ``skipped`` (final); the other devices' jobs go on."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        await queue.forsake(DEVICES[0][0], now=1.0)
        claimed = await queue.claim("a", now=2.0, lease=60.0)
        assert DEVICES[0][0] not in {job.device for job in claimed}
        assert {job.device for job in claimed} == {d for d, _ in DEVICES[1:]}
        (row,) = [r for r in await queue.rows(4) if r.device == DEVICES[0][0]]
        assert (row.outcome, row.detail) == (Outcome.SKIPPED, NOT_SENT_DEPROVISIONED)
    finally:
        await queue.close()


async def test_an_sqlite_queue_is_its_owner_s_alone(tmp_path: Any) -> None:
    """It holds install codes (the provision commands): created 0600, as the stores are."""
    path = tmp_path / "queue.sqlite"
    queue = await open_queue(path)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        for name in ("queue.sqlite", "queue.sqlite-wal", "queue.sqlite-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    finally:
        await queue.close()


async def test_a_damaged_sqlite_queue_is_refused_at_open(tmp_path: Any) -> None:
    """Pages swapped or zeroed by a damaged disk were found only at a claim, or never: a
    claim returned fewer jobs with no error. The file is checked whole at open; the queue
    file is stamped as one (a zse store's id is refused: it is not the queue)."""
    import sqlite3  # noqa: PLC0415

    from zse.headend.queue import QUEUE_APPLICATION_ID  # noqa: PLC0415

    path = tmp_path / "queue.sqlite"
    devices = [(f"000D6F00{n:08X}", f"meter-{n % 7}") for n in range(3000)]
    queue = await open_queue(path)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, devices, now=0.0)
    finally:
        await queue.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA application_id").fetchone() == (QUEUE_APPLICATION_ID,)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 10 * page
    data[5 * page : 6 * page], data[8 * page : 9 * page] = (
        data[8 * page : 9 * page],
        data[5 * page : 6 * page],
    )
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged work queue"):
        await open_queue(path)


async def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    from tests.mqtt.broker import free_port  # noqa: PLC0415

    url = f"postgresql://zse:pw-secret@127.0.0.1:{free_port()}/x?connect_timeout=2"
    with pytest.raises(StoreError, match="cannot open the work queue") as caught:
        await open_queue(url)
    assert "pw-secret" not in str(caught.value)


async def test_a_lost_database_connection_is_opened_again(postgres: Any) -> None:
    from tests.postgres_server import raw_sql  # noqa: PLC0415

    url = postgres.store_url("reconnect")
    queue = await open_queue(url)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        async with queue.transaction("its server process") as db:
            ((pid,),) = await db.fetch("SELECT pg_backend_pid()", ())
        # the queue's own server process (another test's, closing, may still be listed)
        ended = await raw_sql(url, ("SELECT pg_terminate_backend(?, 10000)", (pid,)))
        assert ended == [(True,)]  # the queue's server process is gone
        assert len(await queue.claim("a", now=0.0, lease=60.0)) == 3
    finally:
        await queue.close()


async def test_answers_and_reports_recorded_together_as_one_by_one(place: Any) -> None:
    """complete_many / report_many: in one transaction, each as complete / report would."""
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        a = await queue.claim("a", now=0.0, lease=5.0, limit=2)
        (b,) = await queue.claim("b", now=0.0, lease=60.0)
        stolen = await queue.claim("c", now=5.0, lease=60.0, limit=1)  # a's first lease ran out
        assert [j.key for j in stolen] == [a[0].key]
        answers = [
            Completion(job=a[0], outcome=Outcome.DELIVERED),  # no longer a's
            Completion(job=a[1], outcome=Outcome.OFFLINE, detail="gone", answered=False),
        ]
        assert await queue.complete_many("a", answers, now=6.0) == [False, True]
        # two answers of one job in one commit (an answer redelivered, a stale copy's late
        # one): recorded as one after the other, not refused with the whole commit's others
        stale = dataclasses.replace(b, tries=b.tries + 1)  # not the delivery under way
        twice = [Completion(job=stale, outcome=Outcome.OFFLINE, detail="old", answered=False)]
        twice += [Completion(job=b, outcome=Outcome.DELIVERED)] * 2
        assert await queue.complete_many("b", twice, now=6.0) == [False, True, False]
        (row,) = [r for r in await queue.rows(4) if r.device == b.device]
        assert (row.outcome, row.state, row.attempts) == (Outcome.DELIVERED, "sent", 1)
        assert await queue.complete_many("b", [], now=6.0) == []
        device = a[0].device
        reports = [
            ReportedOutcome(send=4, device=device, kind=SendKind.LOAD_CONTROL, outcome=o)
            for o in (Outcome.RECEIVED, Outcome.STARTED, Outcome.RECEIVED, Outcome.STARTED)
        ]
        reports += [
            ReportedOutcome(
                send=4, device=b.device, kind=SendKind.MESSAGE, outcome=Outcome.CONFIRMED
            ),
            ReportedOutcome(
                send=5, device=b.device, kind=SendKind.LOAD_CONTROL, outcome=Outcome.STARTED
            ),
            ReportedOutcome(
                send=4, device=a[1].device, kind=SendKind.LOAD_CONTROL, outcome=Outcome.RECEIVED
            ),
        ]
        assert await queue.report_many(reports, now=7.0) == [
            True,
            True,
            False,
            False,
            False,
            False,
            True,
        ]
        rows = {r.device: r for r in await queue.rows(4)}
        # held by c: the outcome moves, the lease stays c's to complete
        assert (rows[device].outcome, rows[device].state) == (Outcome.STARTED, "leased")
        assert await queue.complete(stolen[0], "c", Outcome.DELIVERED, "", now=8.0, answered=True)
        assert (rows[b.device].outcome, rows[b.device].attempts) == (Outcome.DELIVERED, 1)
        # waiting for a retry, and reported: nothing more to deliver
        assert (rows[a[1].device].outcome, rows[a[1].device].state) == (Outcome.RECEIVED, "sent")
        assert await queue.claim("a", now=1000.0, lease=5.0) == []
        final = {r.device: (r.outcome, r.attempts, r.state) for r in await queue.rows(4)}
        assert final == {
            device: (Outcome.STARTED, 1, "sent"),
            b.device: (Outcome.DELIVERED, 1, "sent"),
            a[1].device: (Outcome.RECEIVED, 0, "sent"),
        }
    finally:
        await queue.close()


async def test_many_jobs_recorded_in_one_call(place: Any) -> None:
    """More jobs than one statement reads at once: every answer and report is recorded."""
    devices = [(f"000D6F00{n:08X}", f"m{n % 7}") for n in range(1203)]
    queue = await open_queue(place("queue"))
    try:
        await queue.enqueue(9, SendKind.LOAD_CONTROL, EVENT, devices, now=0.0)
        jobs = await queue.claim("a", now=0.0, lease=60.0, limit=2000)
        assert len(jobs) == len(devices)
        answers = [Completion(job=j, outcome=Outcome.DELIVERED) for j in jobs]
        assert all(await queue.complete_many("a", answers, now=1.0))
        reports = [
            ReportedOutcome(send=9, device=d, kind=SendKind.LOAD_CONTROL, outcome=Outcome.STARTED)
            for d, _ in devices
        ]
        assert all(await queue.report_many(reports, now=2.0))
        rows = await queue.rows(9)
        assert {(r.outcome, r.attempts, r.state) for r in rows} == {(Outcome.STARTED, 1, "sent")}
        assert len(rows) == len(devices)
    finally:
        await queue.close()


async def test_a_claim_reads_the_open_jobs_not_those_done(postgres: Any) -> None:
    """A claim reads the jobs not yet sent (an index of them), not the primary key's walk past
    every job a send has done, which made a fan-out's claims quadratic in its devices."""
    from tests.postgres_server import raw_sql  # noqa: PLC0415
    from zse.headend.queue import _CLAIM  # noqa: PLC0415

    url = postgres.store_url("claim_plan")
    devices = [(f"000D6F00{n:08X}", "m") for n in range(3000)]
    queue = await open_queue(url)
    try:
        await queue.enqueue(9, SendKind.LOAD_CONTROL, EVENT, devices, now=0.0)
        done = devices[2900][0]
        await raw_sql(url, ("UPDATE headend_jobs SET state = 'sent' WHERE device < ?", (done,)))
        await raw_sql(url, "ANALYZE headend_jobs")
        plan = await raw_sql(
            url,
            (
                "EXPLAIN (ANALYZE, COSTS OFF) " + _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED"),
                ("w", 60.0, 0.0, 0.0, 8),
            ),
        )
        text = "\n".join(line for (line,) in plan)
        assert "using headend_jobs_pkey on headend_jobs headend_jobs_1" not in text, text
        assert "Rows Removed by Filter" not in text, text  # no sent job read
        jobs = await queue.claim("a", now=0.0, lease=60.0, limit=8)  # ANALYZE claimed 8 for w
        assert [j.device for j in jobs] == [d for d, _ in devices[2908:2916]]
    finally:
        await queue.close()


async def test_a_claim_takes_a_meter_s_devices_together(place: Any) -> None:
    """The claim's order is (send, meter, device): a meter's devices, however their EUI-64s
    sort among other meters', are claimed side by side (their commands then travel as one
    batch, ADR 0022); a queue opened from before (the index of (send, device)) is moved on."""
    from tests.postgres_server import raw_sql  # noqa: PLC0415

    url = place("queue")
    interleaved = [(f"000D6F00000000{n:02X}", f"meter-{n % 3}") for n in range(9)]
    queue = await open_queue(url)
    try:
        await queue.enqueue(5, SendKind.LOAD_CONTROL, EVENT, interleaved, now=0.0)
        claims = [await queue.claim(w, now=0.0, lease=60.0, limit=3) for w in "abc"]
        assert [{j.meter for j in claim} for claim in claims] == [
            {"meter-0"},
            {"meter-1"},
            {"meter-2"},
        ]
        assert [j.device for j in claims[0]] == [d for d, m in interleaved if m == "meter-0"]
    finally:
        await queue.close()
    # a queue of the earlier order (its index of (send, device)) opened again: moved on
    await raw_sql(url, "CREATE INDEX headend_jobs_open ON headend_jobs (send, device)")
    await (await open_queue(url)).close()
    if isinstance(url, str):  # PostgreSQL
        listed = "SELECT indexname FROM pg_indexes WHERE tablename = 'headend_jobs'"
    else:
        listed = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    names = {name for (name,) in await raw_sql(url, listed)} - {"headend_jobs_pkey"}
    assert names == {"headend_jobs_due", "headend_jobs_claim"}

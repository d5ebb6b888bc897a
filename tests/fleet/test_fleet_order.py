"""Control jobs and cancels in order, on both engines (issue #19): a command its gateway was
cut short carrying out (answered ``started``) is tried again under a new correlation id and
given up after a few; a cancel ends the send's waiting deliveries unsent and waits for a
delivery leased to a worker, even one that died; a table of the first shape gets the new
columns; on PostgreSQL workers whose clocks disagree by minutes share the database's, and
one whose clock is stepped is back on it within a resync."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from zse.headend.control import CUT_SHORT_TRIES, Control, ControlKind, control_key
from zse.headend.core import Outcome, SendKind
from zse.headend.gateway import GatewayLink
from zse.headend.queue import NOT_SENT, NOT_SENT_AGAIN, Completion, open_queue
from zse.headend.worker import Worker
from zse.mqtt.core import parse_settings

DEVICES = [("000D6F0000000001", "m1"), ("000D6F0000000002", "m1"), ("000D6F0000000003", "m2")]
EVENT = {"issuer_event_id": 4}
CODE = {"mac": "00:0d:6f:00:00:00:00:01", "install_code": "secret"}


def cancels(send: int) -> list[tuple[str, ControlKind, str, str, dict[str, Any]]]:
    """The cancel jobs the API queues for ``send`` (as ``GatewayMeters.cancel``)."""
    kind = ControlKind.CANCEL_LOAD_CONTROL
    return [
        (control_key(kind, send, d), kind, m, d, {"device": d, "issuer_event_id": send})
        for d, m in DEVICES
    ]


async def test_a_command_cut_short_is_tried_again_under_a_new_id(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        device = DEVICES[0][0]
        await control.register(device, "m1", CODE, time=1, now=0.0)
        (job,) = await control.claim("w1", now=0.0, lease=60.0)
        assert job.command()["correlation_id"] == job.key  # the first try: the job's key
        assert await control.complete(job, "w1", answered=True, cut_short=True, now=1.0)
        assert await control.claim("w1", now=30.0, lease=60.0) == []  # the back-off
        (again,) = await control.claim("w1", now=31.0, lease=60.0)
        assert (again.key, again.tries) == (job.key, 1)
        assert again.command() == {"correlation_id": f"{job.key}:1", **CODE}
        (row,) = await control.jobs()
        assert row == (job.key, "leased", "the gateway stopped while carrying it out")
        assert await control.complete(again, "w1", answered=True, now=32.0)  # carried out
        assert await control.jobs() == [(job.key, "done", "")]
        # a command that stops its gateway every time is given up, and says so
        await control.register(device, "m1", CODE, time=2, now=100.0)
        now = 100.0
        for tries in range(CUT_SHORT_TRIES):
            now += 1_000.0
            (job,) = await control.claim("w1", now=now, lease=60.0)
            assert job.tries == tries
            assert await control.complete(job, "w1", answered=True, cut_short=True, now=now)
        _, (_, state, detail) = await control.jobs()
        assert (state, detail) == ("failed", "the gateway stopped while carrying it out (5 times)")
        (record,) = await control.devices()
        assert record.detail.startswith("provision refused: the gateway stopped")
    finally:
        await queue.close()


async def test_a_deprovision_waits_for_the_provision_of_its_registration(place: Any) -> None:
    """A ``deprovision`` queued before its registration's ``provision`` was answered is not
    claimed, even by another worker, until that answer is recorded (a retry's back-off or an
    expired lease included); the other devices' jobs are not held up."""
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        (device, meter), (other, _) = DEVICES[:2]
        await control.register(device, meter, CODE, time=1, now=0.0)
        await control.register(
            other, meter, {**CODE, "mac": "00:0d:6f:00:00:00:00:02"}, time=1, now=0.0
        )
        (first, second) = (control_key(ControlKind.DEPROVISION, d, 1) for d in (device, other))
        payloads = [{"mac": "00:0d:6f:00:00:00:00:01"}, {"mac": "00:0d:6f:00:00:00:00:02"}]
        await control.enqueue(
            [
                (first, ControlKind.DEPROVISION, meter, device, payloads[0]),
                (second, ControlKind.DEPROVISION, meter, other, payloads[1]),
            ],
            now=0.0,
        )
        claimed = await control.claim("w1", now=1.0, lease=60.0)
        provision, other_provision = sorted(claimed, key=lambda j: j.device)
        assert provision.key == control_key(ControlKind.PROVISION, device, 1)
        assert other_provision.key == control_key(ControlKind.PROVISION, other, 1)
        assert await control.claim("w2", now=1.0, lease=60.0) == []  # both provisions leased
        assert await control.complete(other_provision, "w1", answered=True, now=2.0)
        (job,) = await control.claim("w2", now=3.0, lease=60.0)  # the other's, not this one's
        assert (job.key, job.kind) == (second, ControlKind.DEPROVISION)
        assert await control.complete(job, "w2", answered=True, now=3.0)
        # the gateway did not answer: the provision waits for its back-off, and so does its
        # deprovision; then w1 dies holding it: its lease ends, and still the deprovision waits
        assert await control.complete(provision, "w1", answered=False, now=4.0)
        assert await control.claim("w2", now=20.0, lease=60.0) == []
        (again,) = await control.claim("w1", now=40.0, lease=60.0)
        assert again.key == provision.key
        (taken,) = await control.claim("w2", now=101.0, lease=60.0)  # w1's lease ended
        assert taken.key == provision.key
        assert await control.claim("w3", now=102.0, lease=60.0) == []  # the deprovision waits
        assert await control.complete(taken, "w2", answered=True, now=103.0)
        (last,) = await control.claim("w3", now=104.0, lease=60.0)
        assert (last.key, last.kind) == (first, ControlKind.DEPROVISION)
    finally:
        await queue.close()


async def test_a_cancel_ends_waiting_deliveries_and_waits_for_a_leased_one(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES, now=0.0)
        leased, retried = await queue.claim("a", now=0.0, lease=60.0, limit=2)
        await queue.complete(retried, "a", Outcome.OFFLINE, "no ack", now=1.0, answered=True)
        # worker "a" dies holding ``leased``; the API cancels the send meanwhile
        await queue.cancel(4, now=2.0)
        await control.enqueue(cancels(4), now=2.0)
        rows = {r.device: r for r in await queue.rows(4)}
        assert {r.outcome for r in rows.values()} == {Outcome.CANCELLED}
        assert rows[leased.device].state == "leased"
        for device in (retried.device, DEVICES[2][0]):  # the retry's and the one never sent
            assert (rows[device].state, rows[device].detail) == ("sent", NOT_SENT)
        assert await queue.claim("b", now=3.0, lease=60.0) == []  # nothing more to deliver
        free = await control.claim("b", now=3.0, lease=60.0)
        assert sorted(j.device for j in free) == [retried.device, DEVICES[2][0]]
        assert await control.claim("b", now=59.0, lease=60.0) == []  # waits for the delivery
        # a's lease ends: the delivery is taken over, and ended unsent (as a Worker does)
        (taken,) = await queue.claim("b", now=60.0, lease=60.0)
        assert (taken.device, taken.outcome) == (leased.device, Outcome.CANCELLED)
        assert await control.claim("b", now=60.0, lease=60.0) == []  # still leased, to b
        ended = Completion(
            job=taken, outcome=Outcome.CANCELLED, detail=NOT_SENT_AGAIN, answered=False
        )
        assert await queue.complete_many("b", [ended], now=61.0) == [True]
        (last,) = await control.claim("b", now=61.0, lease=60.0)
        assert last.device == leased.device
        row = next(r for r in await queue.rows(4) if r.device == leased.device)
        assert (row.state, row.outcome, row.detail) == ("sent", Outcome.CANCELLED, NOT_SENT_AGAIN)
    finally:
        await queue.close()


async def test_a_cancel_waits_for_a_delivery_its_worker_still_answers(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        await queue.enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES[:1], now=0.0)
        (job,) = await queue.claim("a", now=0.0, lease=60.0)
        await queue.cancel(4, now=1.0)
        await control.enqueue(cancels(4)[:1], now=1.0)
        assert await control.claim("b", now=2.0, lease=60.0) == []
        # the holder's answer comes: the device has the event, the cancel may follow it
        assert await queue.complete(job, "a", Outcome.DELIVERED, "", now=3.0, answered=True)
        (row,) = await queue.rows(4)
        assert (row.state, row.outcome, row.attempts) == ("sent", Outcome.CANCELLED, 1)
        (cancel,) = await control.claim("b", now=3.0, lease=60.0)
        assert cancel.command()["issuer_event_id"] == 4
    finally:
        await queue.close()


async def test_a_control_table_of_the_first_shape_gets_the_new_columns(place: Any) -> None:
    queue = await open_queue(place("queue"))
    try:
        async with queue.transaction("make the old table") as db:
            await db.execute(
                "CREATE TABLE headend_control (key TEXT PRIMARY KEY, kind TEXT NOT NULL,"
                " meter TEXT NOT NULL, device TEXT NOT NULL, payload TEXT NOT NULL,"
                " state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',"
                " failures INTEGER NOT NULL DEFAULT 0, not_before DOUBLE PRECISION NOT NULL,"
                " lease_owner TEXT, lease_until DOUBLE PRECISION,"
                " updated DOUBLE PRECISION NOT NULL)"
            )
            await db.execute(
                "INSERT INTO headend_control (key, kind, meter, device, payload, state,"
                " not_before, updated) VALUES ('old', 'deprovision', 'm1', 'd', '{}',"
                " 'ready', 0, 0)"
            )
        control = await Control.open(queue)
        await Control.open(queue)  # again: nothing to add
        (job,) = await control.claim("w", now=1.0, lease=60.0)
        assert (job.key, job.tries) == ("old", 0)
    finally:
        await queue.close()


def skewed(clock: list[float], seconds: float) -> Any:
    return lambda: clock[0] + seconds


async def test_workers_with_skewed_clocks_share_the_databases(pg_place: Any) -> None:
    where = pg_place("queue")
    queues = [await open_queue(where) for _ in range(3)]
    clock = [1_000.0]
    # no broker: a delivery is "not answered" after 0.05 s, and rescheduled
    link = GatewayLink(parse_settings({"url": "mqtt://127.0.0.1:9"}), timeout=0.05)
    names, skews = ("on-time", "ahead", "behind"), (0.0, 600.0, -600.0)
    on_time, ahead, behind = (
        Worker(q, link, owner=name, clock=skewed(clock, skew), lease=120.0)
        for q, name, skew in zip(queues, names, skews, strict=True)
    )
    try:
        for w in (on_time, ahead, behind):
            await w.sync_clock()
        await queues[0].enqueue(4, SendKind.LOAD_CONTROL, EVENT, DEVICES[:1], now=0.0)
        (job,) = await queues[0].claim("on-time", now=on_time.now(), lease=120.0)
        clock[0] += 10.0
        assert await ahead.round() == 0  # ten minutes ahead: the lease is still on-time's
        assert await behind.round() == 0
        clock[0] += 111.0  # the lease has ended
        assert await behind.round() == 1  # ten minutes behind: it sees it ended all the same
        (row,) = await queues[0].rows(4)
        assert (row.state, row.outcome) == ("ready", Outcome.OFFLINE)
        assert row.detail == "meter m1 did not answer"
        assert not await queues[0].complete(
            job, "on-time", Outcome.DELIVERED, "", now=on_time.now(), answered=True
        )
    finally:
        for q in queues:
            await q.close()


async def test_a_worker_whose_clock_is_stepped_is_back_on_the_databases_within_a_resync(
    pg_place: Any,
) -> None:
    """The offset is read again every ``resync`` seconds (of the loop's monotonic clock): a
    machine's clock stepped an hour after the worker started moves its queue time for at most
    that long."""
    queue = await open_queue(pg_place("queue"))
    step = [0.0]
    link = GatewayLink(parse_settings({"url": "mqtt://127.0.0.1:9"}), timeout=0.05)
    worker = Worker(queue, link, owner="w", clock=lambda: time.time() + step[0], resync=60.0)

    async def off() -> float:
        found = await queue.database_time()
        assert found is not None
        return worker.now() - found

    try:
        assert await worker.round() == 0
        assert abs(await off()) < 5.0
        step[0] = 3600.0  # the machine's clock stepped an hour ahead
        assert await worker.round() == 0
        assert await off() > 3500.0  # not read again yet: an hour ahead
        await asyncio.sleep(60.0)  # virtual
        assert await worker.round() == 0
        assert abs(await off()) < 5.0
    finally:
        await queue.close()

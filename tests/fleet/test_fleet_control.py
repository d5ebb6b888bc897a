"""The headend's control jobs and device records (ADR 0020) on both engines: a registration is
the record and its provision job at once; a gateway's lifecycle events apply in order, a
repeat or a stale copy (several workers see each) changes nothing; a job not answered keeps
its key for later, an answer ends it and erases its payload; a refusal shows on the device."""

from __future__ import annotations

from typing import Any

from zse.headend.control import Control, ControlKind
from zse.headend.link import Lifecycle
from zse.headend.queue import open_queue
from zse.provisioning import LifecycleState as S

DEVICE = "000D6F0000000001"
CODE = {"mac": "00:0d:6f:00:00:00:00:01", "install_code": "secret"}


def change(before: S | None, after: S, time: int, meter: str = "m1", event: str = "x") -> Lifecycle:
    return Lifecycle(
        meter=meter,
        device="00:0d:6f:00:00:00:00:01",
        event=event,
        from_state=before,
        to_state=after,
        detail="",
        time=time,
    )


async def test_lifecycle_events_apply_in_order_once(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        assert not await control.record(change(None, S.NEW, 1), now=1.0)  # not ours: no record
        first = await control.register(DEVICE, "m1", CODE, time=100, now=1.0)
        assert (first.state, first.generation, first.version) == (S.NEW, 1, 1)
        provision = change(S.NEW, S.PENDING_PROVISIONING, 100, event="provision")
        assert await control.record(provision, now=2.0)
        assert not await control.record(provision, now=3.0)  # a second worker's copy
        ready = change(S.PENDING_PROVISIONING, S.METER_READY, 101, event="key_established")
        assert not await control.record(change(S.NEW, S.NEW, 100, meter="m2"), now=3.0)
        assert await control.record(ready, now=4.0)
        stale = change(S.NEW, S.PENDING_PROVISIONING, 100, event="provision again")
        assert not await control.record(stale, now=5.0)  # starts elsewhere, not later
        (record,) = await control.devices()
        assert (record.state, record.joined, record.version) == (S.METER_READY, False, 3)
        assert [h["to_state"] for h in record.history] == [
            "new",
            "pending provisioning",
            "meter ready",
        ]
        assert await control.devices(since=4.0) == [record]
        assert await control.devices(since=4.5) == []
        again = await control.register(DEVICE, "m1", CODE, time=200, now=6.0)
        assert (again.state, again.generation, again.version) == (S.NEW, 2, 4)
        keys = [k for k, _, _ in await control.jobs()]
        assert keys == [
            "zse-headend:provision:000D6F0000000001:1",
            "zse-headend:provision:000D6F0000000001:2",
        ]
    finally:
        await queue.close()


async def test_a_job_keeps_its_key_until_answered_and_a_refusal_shows(place: Any) -> None:
    queue = await open_queue(place("queue"))
    control = await Control.open(queue)
    try:
        await control.register(DEVICE, "m1", CODE, time=100, now=0.0)
        (job,) = await control.claim("w1", now=0.0, lease=60.0)
        assert job.kind is ControlKind.PROVISION
        assert job.command() == {"correlation_id": job.key, **CODE}
        assert "secret" not in repr(job)
        assert await control.claim("w2", now=10.0, lease=60.0) == []  # leased to w1
        assert not await control.complete(job, "w2", answered=True, now=11.0)  # not w2's
        assert await control.complete(job, "w1", answered=False, refused="away", now=12.0)
        assert await control.claim("w2", now=41.0, lease=60.0) == []  # back-off: 30 s
        (later,) = await control.claim("w2", now=42.0, lease=60.0)
        assert later.key == job.key  # the same command, the same key
        assert later.payload == CODE
        await control.complete(later, "w2", answered=True, refused="mac: no such", now=43.0)
        assert await control.jobs() == [(job.key, "failed", "mac: no such")]
        async with queue.transaction("read") as db:
            assert await db.fetch("SELECT payload FROM headend_control") == [("{}",)]
        (record,) = await control.devices()
        assert record.detail == "provision refused: mac: no such"
        assert record.state is S.NEW
    finally:
        await queue.close()

"""The headend's device records over gateways (ADR 0020), found by the docs walk with real
servers: a ``joined`` recorded after ``key_established`` of the same second (one device's
events reach the workers, or are written, in any order) was dropped, leaving a device
``meter ready`` never joined and its history without the event; ``joined`` never went back
to false, so a device de-provisioned and gone still showed ``joined: true`` where the
in-process headend shows false. Now a worker writes one device's events in the order they
came, and the record takes the ``joined`` part of each event as the in-process headend does
(:func:`zse.provisioning.lifecycle.next_record`), also from an event whose state is stale.
Both engines, the virtual clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from tests.fleet.test_fleet_control import change as a_change
from zse.headend.control import Control, DeviceLifecycle
from zse.headend.link import Answer, Delivery, Lifecycle, MeterLink
from zse.headend.queue import JobQueue, open_queue
from zse.headend.worker import Worker
from zse.provisioning import DeviceRecord, LifecycleEvent, next_record
from zse.provisioning import LifecycleState as S

DEVICE = "000D6F0000000001"
CODE = "83FED3407A939723A5C639B26916D505C3B5"
EVENTS = {
    "provision": (S.NEW, S.PENDING_PROVISIONING),
    "joined": (S.PENDING_PROVISIONING, S.PENDING_PROVISIONING),
    "key_established": (S.PENDING_PROVISIONING, S.METER_READY),
    "deprovision": (S.METER_READY, S.PENDING_DEPROVISIONING),
    "left": (S.PENDING_DEPROVISIONING, S.DEPROVISION_COMPLETE),
}


def change(event: str, time: int, states: tuple[S, S] | None = None) -> Lifecycle:
    """The device's ``event`` at ``time`` on meter m1, from and to ``states`` (or the
    usual ones, :data:`EVENTS`)."""
    before, after = states or EVENTS[event]
    return a_change(before, after, time, event=event)


async def registered(queue: JobQueue) -> Control:
    """The device registered (time 100) and provisioned (its provision job answered)."""
    control = await Control.open(queue)
    await control.register(DEVICE, "m1", {"install_code": CODE}, time=100, now=0.0)
    (job,) = await control.claim("w", now=0.0, lease=60.0)
    await control.complete(job, "w", answered=True, now=1.0)
    assert await control.record(change("provision", 100), now=2.0)
    return control


async def record(control: Control) -> DeviceLifecycle:
    (found,) = await control.devices()
    return found


async def test_a_joined_recorded_after_key_established_counts(place: Any) -> None:
    """The walk's device: ``key_established`` written first, its ``joined`` of the same
    second after: joined, and in the history before it."""
    queue = await open_queue(place("queue"))
    try:
        control = await registered(queue)
        assert await control.record(change("key_established", 105), now=3.0)
        assert await control.record(change("joined", 105), now=4.0)  # stale state, joined
        found = await record(control)
        assert (found.state, found.joined) == (S.METER_READY, True)
        assert [e["event"] for e in found.history] == [
            "register",
            "provision",
            "joined",
            "key_established",
        ]
        assert not await control.record(change("joined", 105), now=5.0)  # a repeat
    finally:
        await queue.close()


async def test_joined_follows_each_event_as_in_process(place: Any) -> None:
    """Provisioned, joined, keyed, de-provisioned and gone: at each step the record's
    ``joined`` is the in-process headend's (the registry's :func:`next_record`), false once
    de-provision is complete."""
    queue = await open_queue(place("queue"))
    try:
        control = await registered(queue)
        in_process = next_record(
            DeviceRecord(eui64=DEVICE, install_code=CODE), LifecycleEvent.PROVISION
        )
        steps = [("joined", 103), ("key_established", 105), ("deprovision", 200), ("left", 201)]
        for event, time in steps:
            assert await control.record(change(event, time), now=float(time))
            in_process = next_record(in_process, LifecycleEvent(event))
            found = await record(control)
            assert (found.state, found.joined) == (in_process.state, in_process.joined), event
        assert (found.state, found.joined) == (S.DEPROVISION_COMPLETE, False)
    finally:
        await queue.close()


async def test_a_stale_event_older_than_the_last_join_or_leave_changes_nothing(
    place: Any,
) -> None:
    """A stale rejoin older than the ``left`` recorded since does not make the device
    joined again; nor does one older than its registration, which clears the flag."""
    queue = await open_queue(place("queue"))
    try:
        control = await registered(queue)
        for event, time in (("joined", 103), ("key_established", 105)):
            assert await control.record(change(event, time), now=float(time))
        left = change("left", 300, (S.METER_READY, S.PENDING_PROVISIONING))
        assert await control.record(left, now=6.0)
        rejoin = change("joined", 299, (S.METER_READY, S.METER_READY))
        assert not await control.record(rejoin, now=7.0)
        found = await record(control)
        assert (found.state, found.joined, found.history[-1]["event"]) == (
            S.PENDING_PROVISIONING,
            False,
            "left",
        )
        await control.register(DEVICE, "m1", {"install_code": CODE}, time=400, now=8.0)
        old = change("joined", 350, (S.PENDING_PROVISIONING, S.PENDING_PROVISIONING))
        assert not await control.record(old, now=9.0)
        assert not (await record(control)).joined
    finally:
        await queue.close()


class Told(MeterLink):
    """A link whose meters tell it their devices' lifecycle changes (no job is due here)."""

    async def deliver(self, delivery: Delivery) -> Answer:
        raise AssertionError(f"nothing is delivered here: {delivery.key}")

    def tell(self, change: Lifecycle) -> list[Any]:
        return self._changed(change)


async def test_a_worker_writes_one_devices_events_in_the_order_they_came(place: Any) -> None:
    """The device leaves and joins again within one second; the first event's write fails
    (its record unreadable a moment: the database refuses it), the second comes meanwhile.
    Written in their order: joined at the end. Written as they could (the second at once, the
    first on the worker's back-off), the same second leaves the record not joined."""
    queue = await open_queue(place("queue"))
    loop = asyncio.get_running_loop()
    control = await registered(queue)
    for event, time in (("joined", 103), ("key_established", 105)):
        assert await control.record(change(event, time), now=float(time))
    link = Told()
    worker = Worker(queue, link, owner="w", clock=loop.time, control=control, poll=3600.0)
    await worker.start()
    try:
        async with queue.transaction("read") as db:
            ((history,),) = await db.fetch("SELECT history FROM headend_lifecycle")
            await db.execute("UPDATE headend_lifecycle SET history = 'damaged'")
        left = change("left", 300, (S.METER_READY, S.PENDING_PROVISIONING))
        waits = link.tell(left)
        await asyncio.sleep(0.1)  # its write refused: again in a second
        async with queue.transaction("repair") as db:
            await db.execute("UPDATE headend_lifecycle SET history = ?", (history,))
        rejoined = change("joined", 300, (S.PENDING_PROVISIONING, S.PENDING_PROVISIONING))
        waits += link.tell(rejoined)
        assert await asyncio.wait_for(asyncio.gather(*waits), 60.0) == [True, True]
        found = await record(control)
        assert (found.state, found.joined) == (S.PENDING_PROVISIONING, True)
        assert [e["event"] for e in found.history[-2:]] == ["left", "joined"]
        assert worker._lifecycles == {}  # nothing kept once written
    finally:
        await worker.stop()
        await queue.close()


async def test_another_devices_event_is_not_held_up(place: Any) -> None:
    """One device's write waiting on the back-off does not hold up another's."""
    queue = await open_queue(place("queue"))
    loop = asyncio.get_running_loop()
    control = await registered(queue)
    other = "000D6F0000000002"
    await control.register(other, "m1", {"install_code": CODE}, time=100, now=0.0)
    link = Told()
    worker = Worker(queue, link, owner="w", clock=loop.time, control=control, poll=3600.0)
    await worker.start()
    try:
        async with queue.transaction("damage") as db:
            await db.execute(
                "UPDATE headend_lifecycle SET history = 'damaged' WHERE device = ?", (DEVICE,)
            )
        stuck = link.tell(change("joined", 103))
        theirs = replace(change("provision", 101), device=other)
        assert await asyncio.wait_for(asyncio.gather(*link.tell(theirs)), 0.5) == [True]
        assert not any(task.done() for task in stuck)
    finally:
        await worker.stop()
        await queue.close()

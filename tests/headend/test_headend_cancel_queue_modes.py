"""Cancels over the work queue, as in process (found by the lead), on both engines:

- a cancelled send read ``finished`` over a queue as soon as it was cancelled, its cancel jobs
  still being tried; now, as in process, only once no Cancel is left to send (each job done,
  given up or failed), after a restart too;
- in-process meters served through the queue (:class:`~zse.headend.link.EsiLink` workers) had
  their Cancel sent once by the API, never again: a device offline then kept the message. Now
  they have cancel jobs, sent again, given up and read back as a gateway's;
- a copy never sent (its delivery job still waiting) was sent a Cancel all the same, which a
  gateway refuses ("the cancel was refused ..."); now its delivery is withdrawn instead, in the
  transaction a worker's claim also locks, and it reads "cancelled before it was sent", as in
  process. A delivery claimed first is left to its worker, and its Cancel follows it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.fleet.helpers import until
from tests.fleet.test_fleet_owed import REGISTRATION, A
from tests.headend.helpers import queued_headend, registration
from tests.headend.test_headend_cancel_detail_gateways import (
    OFFLINE,
    _cancel_job,
    _cancelled,
    gateway_api,
)
from tests.postgres_server import place, postgres
from zse.headend.core import CANCEL_AGAIN, CANCEL_TOLD, CANCEL_UNSENT, Outcome
from zse.headend.queue import NOT_SENT
from zse.headend.service import Headend
from zse.installcode import canonical_eui64, parse_eui64
from zse.roles.esi import MessageCancelSent

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

RETAILER = "retailer-a"


async def _sent(headend: Headend, **request: Any) -> int:
    """A message to the one device of gateway ``m1``, registered: the send's id."""
    await headend.put_group(A, {"name": "g", "meters": ["m1"]})
    await headend.register(A, REGISTRATION)
    sent = await headend.send_message(A, {"group": "g", "text": "x", **request})
    return int(sent["id"])


async def _within(check: Callable[[], Awaitable[bool]], seconds: int) -> None:
    """Wait until ``check()`` is true, looking every virtual second, at most ``seconds``."""
    for _ in range(seconds):
        if await check():
            return
        await asyncio.sleep(1.0)
    raise AssertionError(f"not within {seconds} s")


async def _finished(headend: Headend, send_id: int) -> bool:
    return bool(headend.send(A, send_id)["finished"])


async def test_a_cancelled_send_is_finished_only_once_its_cancel_jobs_are_over(
    place: Any,
) -> None:
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        assert headend.send(A, send_id)["finished"] is False  # was True: its job not tried
        now = asyncio.get_running_loop().time()
        job = await _cancel_job(control, now)
        assert await control.complete(job, "w1", answered=True, untold=OFFLINE, now=now)
        await until(lambda: _shows(headend, send_id, CANCEL_AGAIN.format(why=OFFLINE)))
        assert headend.send(A, send_id)["finished"] is False  # to be sent again
        views: list[dict[str, Any]] = []

        async def follow() -> None:
            views.extend([view async for view in headend.watch(A, send_id)])

        watching = asyncio.get_running_loop().create_task(follow())
        job = await _cancel_job(control, now + 30)
        assert await control.complete(job, "w1", answered=True, now=now + 30)
        await until(lambda: _finished(headend, send_id))
        assert headend.send(A, send_id)["outcomes"][0]["detail"] == CANCEL_TOLD
        await asyncio.wait_for(watching, 5.0)  # the watch ends with it
        assert views[-1]["detail"] == CANCEL_TOLD


async def test_a_cancel_job_under_way_keeps_the_send_unfinished_across_a_restart(
    place: Any,
) -> None:
    database = place("headend.sqlite")
    async with gateway_api(database) as (headend, control):
        send_id = await _sent(headend, duration_minutes=60)
        assert headend.queue is not None
        (delivery,) = await headend.queue.claim("w1", now=0.0, lease=60.0)
        assert await headend.queue.complete(
            delivery, "w1", Outcome.DELIVERED, "", now=0.0, answered=True
        )
        await headend.cancel(A, send_id)
    async with gateway_api(database) as (headend, control):
        assert headend.send(A, send_id)["finished"] is False  # its cancel job waits
        now = asyncio.get_running_loop().time()
        job = await _cancel_job(control, now)
        assert await control.complete(job, "w1", answered=True, now=now)
        await until(lambda: _finished(headend, send_id))


async def _shows(headend: Headend, send_id: int, detail: str) -> bool:
    (copy,) = headend.send(A, send_id)["outcomes"]
    return bool(copy["outcome"] == "cancelled" and copy["detail"] == detail)


async def test_a_copy_never_sent_is_withdrawn_not_sent_a_cancel(place: Any) -> None:
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        send_id = await _sent(headend)
        view = await headend.cancel(A, send_id)  # no worker has taken its delivery
        (copy,) = view["outcomes"]
        assert (copy["outcome"], copy["detail"]) == ("cancelled", CANCEL_UNSENT)
        assert view["finished"] is True
        kinds = [key.split(":")[1] for key, _, _ in await control.jobs()]
        assert kinds == ["provision"]  # was: a cancel_message too, which the gateway refuses
        queue = headend.queue
        assert queue is not None
        (row,) = await queue.rows(send_id)
        assert (row.state, row.outcome, row.detail) == ("sent", Outcome.CANCELLED, NOT_SENT)
        assert await queue.claim("w1", now=1e9, lease=60.0) == []  # never sent
        # the cancel carried out again (after a crash): the same answer, nothing queued
        assert await queue.cancel(send_id, now=0.0, devices=[row.device]) == {row.device}
        assert [key.split(":")[1] for key, _, _ in await control.jobs()] == ["provision"]


async def test_a_copy_claimed_before_the_cancel_is_sent_then_cancelled(place: Any) -> None:
    """The claim first: its worker sends it, and its Cancel waits for that, then goes."""
    async with gateway_api(place("headend.sqlite")) as (headend, control):
        send_id = await _sent(headend)
        queue = headend.queue
        assert queue is not None
        (delivery,) = await queue.claim("w1", now=0.0, lease=60.0)  # being sent now
        view = await headend.cancel(A, send_id)
        assert view["finished"] is False
        assert view["outcomes"][0]["detail"] != CANCEL_UNSENT
        provision = await control.claim("w2", now=1.0, lease=60.0)
        assert [j.kind.value for j in provision] == ["provision"]  # the cancel waits
        assert await queue.complete(delivery, "w1", Outcome.DELIVERED, "", now=2.0, answered=True)
        job = await _cancel_job(control, 3.0)
        assert job.kind.value == "cancel_message"
        assert await control.complete(job, "w1", answered=True, now=4.0)
        await until(lambda: _finished(headend, send_id))
        assert headend.send(A, send_id)["outcomes"][0]["detail"] == CANCEL_TOLD


async def test_an_esi_worker_sends_a_cancel_again_until_its_device_takes_it(
    tmp_path: Any, place: Any
) -> None:
    async with queued_headend(tmp_path, place) as served:
        headend = served.headend
        ihd = next(d for d in served.sims.devices if d.device_type == "in-home display")
        await headend.register(RETAILER, registration(ihd))
        await headend.put_group(RETAILER, {"name": "g", "meters": [ihd.meter]})
        await asyncio.sleep(60)  # the IHD joins and runs CBKE
        await served.start_worker()
        sent = await headend.send_message(RETAILER, {"group": "g", "text": "Hi"})
        send_id = int(sent["id"])

        def copy() -> dict[str, Any]:
            (found,) = headend.send(RETAILER, send_id)["outcomes"]
            return dict(found)

        async def delivered() -> bool:
            return copy()["outcome"] == "delivered"

        await _within(delivered, 60)
        cancels: list[str] = []

        def spy(event: Any) -> None:
            if isinstance(event, MessageCancelSent) and event.message_id == send_id:
                cancels.extend(o.outcome.value for o in event.result.outcomes)

        served.sims.meters[0].esi.on_event(spy)
        air = served.sims.air_of(ihd)
        air.silence(parse_eui64(ihd.mac))  # gone when the cancel comes
        await headend.cancel(RETAILER, send_id)

        async def again() -> bool:
            return copy()["detail"].startswith("cancel not acknowledged by the device (")

        await _within(again, 120)  # was: sent once, its detail left as it was
        assert cancels[:1] == ["offline"]
        assert headend.send(RETAILER, send_id)["finished"] is False  # was: True at once
        air.restore(parse_eui64(ihd.mac))

        async def told() -> bool:
            return copy()["detail"] == CANCEL_TOLD

        await _within(told, 600)  # sent again on the back-off, and taken
        assert cancels[-1] == "delivered"
        assert headend.send(RETAILER, send_id)["finished"] is True
        assert copy()["mac"] == canonical_eui64(ihd.mac)


async def test_a_cancel_carried_out_again_after_its_jobs_ended_finishes(place: Any) -> None:
    """The API stopped after queuing the Cancels, before recording the copies cancelled; the
    workers carried the jobs out meanwhile: carried out again at the next start (the jobs
    kept as they are), the send is finished, each copy saying how its Cancel went."""
    database = place("headend.sqlite")
    async with gateway_api(database) as (headend, control):
        send_id = await _sent(headend, duration_minutes=60)
        queue = headend.queue
        assert queue is not None
        (delivery,) = await queue.claim("w1", now=0.0, lease=60.0)
        assert await queue.complete(delivery, "w1", Outcome.DELIVERED, "", now=0.0, answered=True)
        send = await headend.records.cancel_send(headend.records.sends[send_id], at=100)
        copies = list(headend.records.outcomes[send_id].values())
        assert await queue.cancel(send_id, now=0.0, devices=[c.device for c in copies]) == set()
        await headend.directory.cancel(send, copies)  # then the API stops
        job = await _cancel_job(control, 1.0)
        assert await control.complete(job, "w1", answered=True, now=1.0)
    async with gateway_api(database) as (headend, control):
        (copy,) = headend.send(A, send_id)["outcomes"]
        assert (copy["outcome"], copy["detail"]) == ("cancelled", CANCEL_TOLD)
        assert headend.send(A, send_id)["finished"] is True  # was: never

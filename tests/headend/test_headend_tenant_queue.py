"""Tenant boundary over the work queue (in-process meters served by an
:class:`~zse.headend.link.EsiLink` worker): a device de-provisioned by one retailer and
registered by another gets nothing more of the first's, as in process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.fleet.test_fleet_owed import MAC
from tests.headend.helpers import QueuedHeadend, queued_headend, registration
from tests.headend.test_headend_cancel_detail_gateways import (
    OFFLINE,
    _cancel_job,
    _cancelled,
    _shows,
)
from tests.postgres_server import place, postgres
from zse.headend.core import CANCEL_GONE, Outcome
from zse.headend.link import Lifecycle
from zse.headend.queue import NOT_SENT_DEPROVISIONED
from zse.headend.service import Headend
from zse.headend.sim import SimDevice
from zse.installcode import parse_eui64
from zse.provisioning import LifecycleState
from zse.roles.esi import MessageCancelSent

__all__ = ["place", "postgres"]  # fixtures: each test taking ``place`` runs on both engines

A, B = "retailer-a", "retailer-b"


async def _within(check: Callable[[], Awaitable[bool]] | Callable[[], bool], seconds: int) -> None:
    for _ in range(seconds):
        done = check()
        if done if isinstance(done, bool) else await done:
            return
        await asyncio.sleep(1.0)
    raise AssertionError(f"not within {seconds} s")


def _state(headend: Headend, who: str, mac: str) -> str:
    return str(headend.device(who, mac)["state"])


async def _a_s_display(served: QueuedHeadend) -> SimDevice:
    """The in-home display, registered by A in its group ``g``, METER READY; the worker
    started."""
    headend = served.headend
    ihd = next(d for d in served.sims.devices if d.device_type == "in-home display")
    await headend.put_group(A, {"name": "g", "meters": [ihd.meter]})
    await headend.register(A, registration(ihd))
    await _within(lambda: _state(headend, A, ihd.mac) == "meter ready", 120)
    await served.start_worker()
    return ihd


async def _delivered(served: QueuedHeadend) -> tuple[SimDevice, int]:
    """:func:`_a_s_display` and A's message delivered to it: the display and the send's id."""
    ihd = await _a_s_display(served)
    send_id = int((await served.headend.send_message(A, {"group": "g", "text": "A's"}))["id"])
    await _within(lambda: _copy(served.headend, send_id)["outcome"] == "delivered", 60)
    return ihd, send_id


def _copy(headend: Headend, send_id: int) -> dict[str, Any]:
    """The one device's copy of A's send."""
    (found,) = headend.send(A, send_id)["outcomes"]
    return dict(found)


def _cancels_sent(served: QueuedHeadend, send_id: int) -> list[str]:
    """The outcomes of each Cancel Message of ``send_id`` the meter sends from now on."""
    tries: list[str] = []

    def spy(event: Any) -> None:
        if isinstance(event, MessageCancelSent) and event.message_id == send_id:
            tries.extend(o.outcome.value for o in event.result.outcomes)

    served.sims.meters[0].esi.on_event(spy)
    return tries


async def _handed_over(served: QueuedHeadend, ihd: SimDevice) -> None:
    """``ihd``, de-provisioned by A, registered by B and switched on again once its meter
    admits it: B's, METER READY. The admission (the registry's PROVISION, then the Trust
    Center given the device's link key and joining opened) runs in a task the registration
    spawns, at the virtual instant the device was switched on: which went first depended
    on the other work ready then (the worker's and the API's looks at the queue, which
    PostgreSQL's notifications start, in real time: the virtual clock does not wait for
    them). With the notifications 0.3 s late, the device's scan went first every time and
    found no network permitting joins (JoinRefused). A real device scans again; here the
    device is switched on once its meter has opened joining for it."""
    headend = served.headend
    await _within(lambda: _state(headend, A, ihd.mac) == "de-provision complete", 120)
    await headend.register(B, registration(ihd))
    (meter,) = (m for m in served.sims.meters if m.id == ihd.meter)
    radio = meter.esi.app.radio

    def admitted() -> bool:
        record = meter.registry.get(ihd.mac)
        return (
            record.state is LifecycleState.PENDING_PROVISIONING
            and parse_eui64(ihd.mac) in radio.pending_keys
            and radio.permitting
        )

    await _within(admitted, 120)
    await ihd.role.start()  # it joins (now B's) and runs CBKE
    await _within(lambda: _state(headend, B, ihd.mac) == "meter ready", 120)


async def test_a_cancel_of_a_send_never_reaches_the_device_now_another_retailer_s(
    tmp_path: Path, place: Any
) -> None:
    """A cancels a send whose device it has de-provisioned and B has registered since: in
    process the device is not told (it is no longer A's); over the queue a cancel job was
    queued for it, and A's Cancel Message reached B's display."""
    async with queued_headend(tmp_path, place) as served:
        ihd, send_id = await _delivered(served)
        await served.headend.deprovision(A, ihd.mac)
        await _handed_over(served, ihd)
        cancels = _cancels_sent(served, send_id)
        await served.headend.cancel(A, send_id)
        await asyncio.sleep(120)  # the worker's looks, and any Cancel it would send again
        assert cancels == []  # was ["delivered"]: A's Cancel Message went to B's display
        assert (_copy(served.headend, send_id)["detail"]) == CANCEL_GONE
        assert served.headend.send(A, send_id)["finished"] is True


async def test_a_cancel_sent_again_stops_when_its_device_is_de_provisioned(
    tmp_path: Path, place: Any
) -> None:
    """A Cancel its device did not take is sent again on the back-off (a cancel job): its
    device de-provisioned meanwhile and registered by another retailer, the next try went
    to the other retailer's device. A de-provisioning now ends the device's cancel jobs."""
    async with queued_headend(tmp_path, place) as served:
        ihd, send_id = await _delivered(served)
        tries = _cancels_sent(served, send_id)
        air = served.sims.air_of(ihd)
        air.silence(parse_eui64(ihd.mac))  # away when the cancel comes
        await served.headend.cancel(A, send_id)
        await _within(lambda: len(tries) >= 4, 600)  # the back-off is 300 s now
        assert set(tries) == {"offline"}
        air.restore(parse_eui64(ihd.mac))
        await served.headend.deprovision(A, ihd.mac)
        await _handed_over(served, ihd)
        await asyncio.sleep(900)  # past the next try of the cancel
        assert set(tries) == {"offline"}  # was also "delivered": to B's display
        assert _copy(served.headend, send_id)["detail"] == CANCEL_GONE
        assert served.headend.send(A, send_id)["finished"] is True


async def _never_delivered(served: QueuedHeadend, ihd: SimDevice, send_id: int) -> None:
    """A's message ``send_id`` never reached ``ihd`` (now B's) after its handover."""
    await asyncio.sleep(900)  # every retry the job would have made
    for row in await served.queue.rows(send_id):  # a job ended unsent, or none queued
        assert row.outcome is Outcome.SKIPPED, row  # was delivered: to B's display
        assert row.detail == NOT_SENT_DEPROVISIONED
    current = ihd.role.messaging.current()
    assert current is None or current.message_id != send_id
    copy = _copy(served.headend, send_id)
    assert (copy["outcome"], copy["detail"]) == ("skipped", NOT_SENT_DEPROVISIONED)


async def test_a_send_to_a_device_being_de_provisioned_is_never_queued(
    tmp_path: Path, place: Any
) -> None:
    """A by-group send made while a device of the group is PENDING DE-PROVISIONING (away,
    it has not left yet): in process it is "de-provisioned before it was sent", never
    given to the ESI; over the queue its job was queued all the same and carried out by a
    worker (the ESI skipped it: "pending de-provisioning"). Nothing checks such a job
    again before it is carried out: it is not queued now."""
    async with queued_headend(tmp_path, place) as served:
        ihd = await _a_s_display(served)
        air = served.sims.air_of(ihd)
        air.silence(parse_eui64(ihd.mac))  # away: it does not leave yet
        await served.headend.deprovision(A, ihd.mac)
        assert _state(served.headend, A, ihd.mac) == "pending de-provisioning"
        sent = await served.headend.send_message(A, {"group": "g", "text": "A's"})
        air.restore(parse_eui64(ihd.mac))
        await _handed_over(served, ihd)
        await _never_delivered(served, ihd, int(sent["id"]))


async def test_a_send_made_as_its_device_is_de_provisioned_is_never_delivered(
    tmp_path: Path, place: Any
) -> None:
    """A send and a de-provisioning of one of its devices at once: the send's job was
    queued after the de-provisioning had ended the device's jobs (PostgreSQL), and was
    delivered once the device was another retailer's."""
    async with queued_headend(tmp_path, place) as served:
        ihd = await _a_s_display(served)
        sent: dict[str, Any]
        sent, _ = await asyncio.gather(
            served.headend.send_message(A, {"group": "g", "text": "A's"}),
            served.headend.deprovision(A, ihd.mac),
        )
        await _handed_over(served, ihd)
        await _never_delivered(served, ihd, int(sent["id"]))


async def test_a_gateway_device_s_cancel_jobs_end_at_its_de_provisioning(place: Any) -> None:
    """Meters as gateways: a Cancel its device did not take waits to be sent again (a cancel
    job on the back-off); the device de-provisioned meanwhile, the job was kept and sent
    again, maybe once the device was another retailer's. It ends at the de-provisioning now,
    the device never told."""
    async with _cancelled(place("headend.sqlite")) as (headend, control, send_id):
        now = asyncio.get_running_loop().time()
        job = await _cancel_job(control, now)
        assert await control.complete(job, "w1", answered=True, untold=OFFLINE, now=now)
        (key, state, _) = next(j for j in await control.jobs() if ":cancel_message:" in j[0])
        assert state == "ready"  # to be sent again
        admitted = Lifecycle(
            meter="m1",
            device=MAC,
            event="provision",
            from_state=LifecycleState.NEW,
            to_state=LifecycleState.PENDING_PROVISIONING,
            detail="install code admitted",
            time=101,
        )
        assert await control.record(admitted, now=now)
        await headend.directory.refresh()
        await headend.deprovision(A, MAC)
        assert (key, "done", CANCEL_GONE) in await control.jobs()  # was ready: sent again
        later = await control.claim("w2", now=now + 86_400, lease=60.0)
        assert [j.key for j in later if j.key == key] == []  # never sent again
        await _shows(headend, send_id, CANCEL_GONE)

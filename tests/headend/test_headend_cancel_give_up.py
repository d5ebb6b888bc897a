"""A cancel that never ends (found by the last session): cancelling an "until changed" message
(SE D.5.2.3.1.1.4) whose device never comes back sent the Cancel (D.5.2.3.2) again every
900 s for ever, and the send never showed finished. Now the Cancel is given up the headend's
give-up time after the cancel itself (not after the send): the copy stays ``cancelled``, its
detail says it was given up, and nothing more is sent. A send cancelled before the cancel's
time was recorded has its give-up counted from the headend's next start."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_restart import _restart
from zse.headend.sim import SimDevice
from zse.headend.store import HeadendStore
from zse.installcode import canonical_eui64, parse_eui64
from zse.roles.esi import MessageCancelSent

HOUR = 3600.0
SPAN = 2 * HOUR


def _cancels_to(service: Service, device: SimDevice) -> list[int]:
    """The Cancel Messages its meter's ESI sends ``device`` (their message ids), from now."""
    sent: list[int] = []
    mac = canonical_eui64(device.mac)

    def spy(event: Any) -> None:
        if isinstance(event, MessageCancelSent):
            for outcome in event.result.outcomes:
                if canonical_eui64(str(outcome.device)) == mac:
                    sent.append(event.message_id)

    service.headend.meters[device.meter].esi.on_event(spy)
    return sent


async def _offline_and_cancelled(service: Service) -> tuple[SimDevice, int, list[int]]:
    """An IHD, METER READY, then gone for good; an "until changed" message to it, cancelled
    an hour later: the device, the send and the Cancels its ESI sends it. The other devices,
    never registered here, are switched off: each would try to join every few seconds for
    the hours the tests sleep, most of what they would cost."""
    ihd = next(d for d in service.sims.devices if d.device_type == "in-home display")
    for other in service.sims.devices:
        if other is not ihd:
            service.sims.air_of(other).silence(parse_eui64(other.mac))
    service.headend.give_up = SPAN
    await _register(service, [ihd])
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": [ihd.meter]})
    assert reply.status == 201, reply.body
    service.sims.air_of(ihd).silence(parse_eui64(ihd.mac))
    sent = await service.call(A, "POST", "/api/v1/sends/message", {"group": "g", "text": "Hi"})
    assert sent.status == 202, sent.body
    send_id = int(sent.body["id"])
    await asyncio.sleep(HOUR)
    assert _copy(service, send_id)["outcome"] == "offline"
    cancels = _cancels_to(service, ihd)
    cancel = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancel.status == 202, cancel.body
    return ihd, send_id, cancels


def _copy(service: Service, send_id: int) -> dict[str, Any]:
    (copy,) = service.headend.send(A, send_id)["outcomes"]
    return dict(copy)


async def test_a_cancel_its_device_never_takes_is_given_up_after_the_span(
    service: Service,
) -> None:
    _, send_id, cancels = await _offline_and_cancelled(service)
    copy = _copy(service, send_id)
    assert copy["outcome"] == "cancelled"
    assert copy["detail"].startswith("cancel not acknowledged by the device (")
    # past the send's give-up time (its copy was never expired): still sent again, the
    # Cancel's give-up counts from the cancel
    await asyncio.sleep(SPAN - 10 * 60)
    assert service.headend.send(A, send_id)["finished"] is False
    assert _copy(service, send_id)["detail"].startswith("cancel not acknowledged")
    assert len(cancels) >= 8  # at the cancel, then on its own back-off (30 s, 60 s ... 900 s)
    await asyncio.sleep(10 * 60 + 60)
    view = service.headend.send(A, send_id)
    assert view["finished"] is True
    (copy,) = view["outcomes"]
    assert copy["outcome"] == "cancelled"
    assert copy["detail"].startswith(
        "given up: the device was not told of the cancel within 2 hours of it (last try: "
    )
    assert service.headend.retries.pending() == []
    # the last try just after the give-up time: at most 5 steps and 2 h / 900 s of them
    assert len(cancels) <= 5 + SPAN / 900 + 2
    sent = len(cancels)
    await asyncio.sleep(3 * HOUR)
    assert len(cancels) == sent  # sent no more
    assert _copy(service, send_id) == copy
    assert set(cancels) == {send_id}


async def test_a_cancel_recorded_without_its_time_ends_counted_from_the_next_start(
    service: Service, tmp_path: Path
) -> None:
    """A send cancelled by the version before (its record has no cancel time): at the next
    start the time is the start's, and the Cancel is given up the span after it."""
    ihd, send_id, _ = await _offline_and_cancelled(service)
    records = service.headend.records
    old = dataclasses.replace(records.sends[send_id], cancelled_at=None)
    await records.put_send(old)  # as the version before wrote it: no "cancelled_at"
    assert (await HeadendStore.open(service.store)).sends[send_id] == old
    await asyncio.sleep(3 * HOUR)  # past the span after the cancel
    await _restart(service, tmp_path / "headend.sqlite")
    service.headend.give_up = SPAN
    restarted = service.headend.clock()
    assert service.headend.records.sends[send_id].cancelled_at == restarted
    cancels = _cancels_to(service, ihd)
    await asyncio.sleep(SPAN - 10 * 60)
    assert _copy(service, send_id)["detail"].startswith("cancel not acknowledged")
    assert cancels  # sent again since the start
    await asyncio.sleep(10 * 60 + 60)
    copy = _copy(service, send_id)
    assert copy["detail"].startswith("given up: the device was not told of the cancel")
    assert service.headend.send(A, send_id)["finished"] is True


async def test_a_finished_cancel_is_left_as_the_version_before_wrote_it(
    service: Service, tmp_path: Path
) -> None:
    """A send whose cancel is over (its Cancel given up: nothing left to do), recorded by the
    version before (no cancel time), is not rewritten at the next start: that version still
    reads it (its record shape has no ``cancelled_at``), should it be run again."""
    _, send_id, _ = await _offline_and_cancelled(service)
    await asyncio.sleep(SPAN + HOUR)
    assert service.headend.send(A, send_id)["finished"] is True
    records = service.headend.records
    old = dataclasses.replace(records.sends[send_id], cancelled_at=None)
    await records.put_send(old)  # as the version before wrote it: no "cancelled_at"
    await _restart(service, tmp_path / "headend.sqlite")
    assert service.headend.records.sends[send_id] == old
    assert (await HeadendStore.open(service.store)).sends[send_id] == old
    assert service.headend.send(A, send_id)["finished"] is True

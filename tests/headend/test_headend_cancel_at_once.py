"""An in-process cancel tells its devices at once (found by the lead): the headend awaited each
device's Cancel in turn, inside the HTTP request, and a device that is off costs the radio's
whole APS retry time (4 attempts x apsAckWaitDuration, 6.4 s on the simulator, ZB 2.2.8.4.1).
A cancel to k switched-off devices answered after k of those (50 of them: over 5 minutes),
and a display at the end of the list lost its message that late. Now the Cancels go out
together, :data:`~zse.headend.service.UNICASTS_PER_METER` per meter at a time, the meters at
once: the answer comes after about one retry time. Each device's outcome is as before, and a
cancel cut short is still carried out at the next start, each device told once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.headend.helpers import Service, start_service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_restart import _restart
from tests.postgres_server import place, postgres
from zse.errors import StoreError
from zse.headend import service as headend_service
from zse.headend.core import CANCEL_TOLD
from zse.headend.sim import SimDevice
from zse.installcode import canonical_eui64, parse_eui64
from zse.roles.esi import MessageCancelSent
from zse.store import Batch

__all__ = ["place", "postgres"]  # fixtures: the restart test runs on both engines

#: How long the ESI's unicast to a switched-off device takes to fail: four attempts, each
#: waiting apsAckWaitDuration, 1.6 s (ZB 2.2.8.4.1, Table 2.24).
NO_APS_ACK = 4 * 1.6
#: What a Cancel that reaches its device costs on the simulator, at most (virtual seconds).
SLACK = 1.0


def _cancels(service: Service) -> dict[str, int]:
    """How many Cancel Messages the meters' ESIs send each device (by EUI-64), from now."""
    sent: dict[str, int] = {}

    def count(event: Any) -> None:
        if isinstance(event, MessageCancelSent):
            for outcome in event.result.outcomes:
                mac = canonical_eui64(str(outcome.device))
                sent[mac] = sent.get(mac, 0) + 1

    for meter in service.headend.meters.values():
        meter.esi.on_event(count)
    return sent


async def _delivered(service: Service, devices: list[SimDevice]) -> int:
    """``devices`` registered, a group of their meters, a message delivered to each: its id."""
    await _register(service, devices)
    meters = sorted({d.meter for d in devices})
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": meters})
    assert reply.status == 201, reply.body
    sent = await service.call(A, "POST", "/api/v1/sends/message", {"group": "g", "text": "Hi"})
    assert sent.status == 202, sent.body
    send_id = int(sent.body["id"])
    for _ in range(60):
        await asyncio.sleep(1)
        outcomes = {o["outcome"] for o in service.headend.send(A, send_id)["outcomes"]}
        if outcomes == {"delivered"}:
            return send_id
    raise AssertionError(f"not delivered: {outcomes}")


def _off(service: Service, devices: list[SimDevice]) -> None:
    for device in devices:
        service.sims.air_of(device).silence(parse_eui64(device.mac))


def _details(service: Service, send_id: int) -> dict[str, tuple[str, str]]:
    view = service.headend.send(A, send_id)
    return {o["mac"]: (o["outcome"], o["detail"]) for o in view["outcomes"]}


def _not_told(detail: str) -> bool:
    return detail.startswith("cancel not acknowledged by the device (") and detail.endswith(
        "): sent again"
    )


async def test_a_cancel_to_devices_that_are_off_answers_after_one_retry_time(
    service: Service,
) -> None:
    """Six devices on two meters, four of them off: the cancel's answer came after four
    retry times (25.6 s); now after one. Those on are told, the others sent it again."""
    devices = list(service.sims.devices)
    send_id = await _delivered(service, devices)
    off = [d for d in devices if d.device_type != "load control device"]
    _off(service, off)
    cancels = _cancels(service)
    loop = asyncio.get_running_loop()
    began = loop.time()
    reply = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    took = loop.time() - began
    assert reply.status == 202, reply.body
    assert took < NO_APS_ACK + SLACK, f"the cancel took {took:.1f} virtual seconds"
    details = _details(service, send_id)
    for device in devices:
        outcome, detail = details[canonical_eui64(device.mac)]
        assert outcome == "cancelled"
        if device in off:
            assert _not_told(detail), detail
        else:
            assert detail == CANCEL_TOLD
    assert cancels == {canonical_eui64(d.mac): 1 for d in devices}
    for device in off:  # on the back-off, each once
        record = service.headend.records.outcomes[send_id][canonical_eui64(device.mac)]
        assert record.next_try > loop.time()


async def test_a_cancel_sent_again_reaches_a_device_back_without_waiting_for_the_others(
    service: Service,
) -> None:
    """The back-off's next try of the Cancels the devices off missed goes out together too:
    the last device in the list, back meanwhile, is told as the try begins, not after the
    others' three retry times."""
    devices = list(service.sims.devices)
    send_id = await _delivered(service, devices)
    off = [d for d in devices if d.device_type != "load control device"]
    _off(service, off)
    reply = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert reply.status == 202, reply.body
    back = max(off, key=lambda d: (d.meter, canonical_eui64(d.mac)))  # the last one tried
    mac = canonical_eui64(back.mac)
    due = service.headend.records.outcomes[send_id][mac].next_try
    service.sims.air_of(back).restore(parse_eui64(back.mac))
    loop = asyncio.get_running_loop()
    while _details(service, send_id)[mac] != ("cancelled", CANCEL_TOLD):
        assert loop.time() < due + 4 * NO_APS_ACK, "never told"
        await asyncio.sleep(0.1)
    assert loop.time() - due < SLACK, f"told {loop.time() - due:.1f} s after its try was due"
    for device in off:
        if device is not back:
            assert _not_told(_details(service, send_id)[canonical_eui64(device.mac)][1])


async def test_a_meter_s_cancels_go_a_bounded_few_at_a_time(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two at a time per meter, the meters at once: three devices off on each of two meters
    take two retry times (not one: the bound holds; not six: one meter does not wait for
    the other, nor one device for the next)."""
    monkeypatch.setattr(headend_service, "UNICASTS_PER_METER", 2)
    devices = list(service.sims.devices)
    send_id = await _delivered(service, devices)
    _off(service, devices)
    loop = asyncio.get_running_loop()
    began = loop.time()
    reply = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    took = loop.time() - began
    assert reply.status == 202, reply.body
    assert 2 * NO_APS_ACK <= took < 2 * NO_APS_ACK + SLACK, f"took {took:.1f} virtual seconds"
    assert all(_not_told(d) for _, d in _details(service, send_id).values())


async def test_a_cancel_cut_short_midway_is_carried_out_at_start_each_device_told_once(
    tmp_path: Path, place: Any
) -> None:
    """The API stops while a Cancel to a device that is off is under way, those to the
    devices on already answered: at the next start the cancel is carried out for the devices
    not done (their Cancel sent again), and those told are left as they were, not told
    twice. Each device's outcome is written once, as it stands."""
    service = await start_service(tmp_path, store_at=place("headend.sqlite"))
    try:
        devices = list(service.sims.devices)
        send_id = await _delivered(service, devices)
        # first in each meter's order: the one-after-another cancel waited on them
        off = [d for d in devices if d.device_type == "in-home display"]
        on = [d for d in devices if d not in off]
        _off(service, off)
        cancels = _cancels(service)
        loop = asyncio.get_running_loop()
        cancel = loop.create_task(service.headend.cancel(A, send_id))
        began = loop.time()
        while not all(
            _details(service, send_id)[canonical_eui64(d.mac)] == ("cancelled", CANCEL_TOLD)
            for d in on
        ):
            assert loop.time() - began < NO_APS_ACK / 2, "the devices on were not told at once"
            await asyncio.sleep(0.1)
        told = {
            canonical_eui64(d.mac): service.headend.records.outcomes[send_id][
                canonical_eui64(d.mac)
            ]
            for d in on
        }
        assert not cancel.done()  # the Cancels to the devices off are under way
        cancel.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancel
        for device in off:
            copy = service.headend.records.outcomes[send_id][canonical_eui64(device.mac)]
            assert copy.outcome.value == "delivered"  # not written: cut short

        await _restart(service, place("headend.sqlite"))  # the cancel carried out at start

        for mac, record in told.items():  # as they were written, once
            assert service.headend.records.outcomes[send_id][mac] == record
        details = _details(service, send_id)
        for device in off:
            outcome, detail = details[canonical_eui64(device.mac)]
            assert outcome == "cancelled"
            assert _not_told(detail), detail
        # each device's Cancel sent once (those cut short were never sent: not counted)
        assert cancels == {canonical_eui64(d.mac): 1 for d in devices}
    finally:
        await service.close()


def _failing_once(
    service: Service, monkeypatch: pytest.MonkeyPatch, fails: Callable[[Batch], bool]
) -> list[Batch]:
    """The store's next commit of a batch ``fails(batch)`` picks raises :class:`StoreError`
    (a disk full, say); every other commit goes through. The list: the batch refused."""
    store = service.store
    commit = store.commit
    refused: list[Batch] = []

    async def failing(batch: Batch) -> list[int]:
        if not refused and fails(batch):
            refused.append(batch)
            raise StoreError("the disk is full (on purpose)")
        return await commit(batch)

    monkeypatch.setattr(store, "commit", failing)
    return refused


def _writes(batch: Batch, send_id: int, outcome: str, mac: str | None = None) -> bool:
    """Whether ``batch`` writes a copy of ``send_id`` (``mac``'s) as ``outcome``."""
    return any(
        op == "put"
        and namespace == "headend.outcomes"
        and key.startswith(f"{send_id}/")
        and (mac is None or key.endswith(mac))
        and json.loads(value)["outcome"] == outcome
        for op, namespace, key, value in batch._ops
    )


async def test_a_write_failing_midway_leaves_the_cancels_under_way_recorded(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first device's cancelled copy cannot be written (the store fails once): the
    cancel fails with the store's error, but the other devices' Cancels under way (told
    already, their write waiting for the failed one) are let finish and recorded, not cut
    short; the cancel asked again then tells only the device whose write failed. Was: the
    failure cancelled the other lanes mid-Cancel, and each device told but not recorded was
    told again (here five of six)."""
    devices = list(service.sims.devices)
    send_id = await _delivered(service, devices)
    cancels = _cancels(service)
    refused = _failing_once(service, monkeypatch, lambda b: _writes(b, send_id, "cancelled"))
    with pytest.raises(StoreError, match="on purpose"):
        await service.headend.cancel(A, send_id)
    assert refused
    details = _details(service, send_id)
    unwritten = [mac for mac, (outcome, _) in details.items() if outcome != "cancelled"]
    assert len(unwritten) == 1, details
    assert all(d == CANCEL_TOLD for o, d in details.values() if o == "cancelled")
    await service.headend.cancel(A, send_id)  # carried out again
    assert {d for _, d in _details(service, send_id).values()} == {CANCEL_TOLD}
    assert cancels == {mac: 2 if mac in unwritten else 1 for mac in details}


async def test_a_retry_round_sends_its_cancels_though_a_delivery_in_it_fails(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One back-off round has a copy to send again (a display on meter-1 was off) and a
    Cancel to send again (one on meter-2 was off when its send was cancelled, back now): the
    copy's answer cannot be written (the store fails once), and the round fails with the
    store's error, but the Cancel is sent and recorded all the same. Was: the failure
    dropped the Cancels collected in that round."""
    one = next(d for d in service.sims.devices if d.meter == "meter-1")
    two = next(d for d in service.sims.devices if d.meter == "meter-2")
    mac_one, mac_two = canonical_eui64(one.mac), canonical_eui64(two.mac)
    await _register(service, [one, two])
    for name, meter in (("g1", "meter-1"), ("g2", "meter-2")):
        body = {"name": name, "meters": [meter]}
        reply = await service.call(A, "POST", "/api/v1/groups", body)
        assert reply.status == 201, reply.body
    _off(service, [one])
    first = (await service.headend.send_message(A, {"group": "g1", "text": "one"}))["id"]
    second = (await service.headend.send_message(A, {"group": "g2", "text": "two"}))["id"]
    await asyncio.sleep(NO_APS_ACK + SLACK)
    assert _details(service, first)[mac_one][0] == "offline"
    assert _details(service, second)[mac_two][0] == "delivered"
    _off(service, [two])
    await service.headend.cancel(A, second)
    assert _not_told(_details(service, second)[mac_two][1])
    service.sims.air_of(two).restore(parse_eui64(two.mac))
    cancels = _cancels(service)
    refused = _failing_once(service, monkeypatch, lambda b: _writes(b, first, "offline"))
    with pytest.raises(StoreError, match="on purpose"):
        await service.headend._retry([(first, mac_one), (second, mac_two)])
    assert refused
    assert _details(service, second)[mac_two] == ("cancelled", CANCEL_TOLD)
    assert cancels == {mac_two: 1}

"""By-group sends in process (found by an audit): a cancel while the send is still going out
to the meters, a Cancel a device missed, devices joining or leaving the group while the send
goes out, devices not METER READY retried for ever, an event superseded without a word."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.headend.helpers import Service
from tests.headend.test_headend_cancel import A, _register
from tests.headend.test_headend_cancel_at_once import NO_APS_ACK, SLACK, _off
from tests.headend.test_headend_story import _until
from zse.headend import service as headend_service
from zse.headend.core import CANCEL_TOLD, CANCEL_UNSENT
from zse.installcode import canonical_eui64, parse_eui64

EVENT = {"duty_cycle": 40, "duration_minutes": 30, "criticality_level": 3}


def _outcomes(service: Service, send_id: int) -> dict[str, tuple[str, str]]:
    view = service.headend.send(A, send_id)
    return {o["mac"]: (o["outcome"], o["detail"]) for o in view["outcomes"]}


async def _group(service: Service, meters: list[str]) -> None:
    reply = await service.call(A, "POST", "/api/v1/groups", {"name": "g", "meters": meters})
    assert reply.status == 201, reply.body


async def _register_one(service: Service, device: Any) -> None:
    body = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": device.meter,
        "device_type": device.device_type,
    }
    reply = await service.call(A, "POST", "/api/v1/devices", body)
    assert reply.status == 201, reply.body


def _held(esi: Any, name: str) -> asyncio.Event:
    """Hold ``esi``'s ``name`` send until the returned event is set (a slow meter: on a radio
    each unicast not acknowledged takes seconds of retries)."""
    gate = asyncio.Event()
    real = getattr(esi, name)

    async def held(*args: Any, **kw: Any) -> Any:
        await gate.wait()
        return await real(*args, **kw)

    setattr(esi, name, held)
    return gate


async def test_a_cancel_while_the_send_goes_out_reaches_every_meter(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel while the send had not reached meter-2 yet answered a plain-text 500 ("no
    message with id 1"), and meter-2's display then showed the message of a send reading
    cancelled and finished. Now: 202, and meter-2's copy not sent yet is withdrawn, never
    shown. The meters' copies go out together, a bounded few at a time on each meter: here
    one (``UNICASTS_PER_METER``), so meter-2's second device waits behind its first, held,
    as meter-1's slow one is, when the cancel comes."""
    monkeypatch.setattr(headend_service, "UNICASTS_PER_METER", 1)
    one = next(d for d in service.sims.devices if d.meter == "meter-1")
    ahead, two = sorted(
        (d for d in service.sims.devices if d.meter == "meter-2"),
        key=lambda d: canonical_eui64(d.mac),
    )[:2]
    await _register(service, [one, ahead, two])
    await _group(service, ["meter-1", "meter-2"])
    service.sims.air_of(one).silence(parse_eui64(one.mac))  # meter-1's unicast is slow
    gate = _held(service.headend.meters["meter-1"].esi, "send_message")
    gate_2 = _held(service.headend.meters["meter-2"].esi, "send_message")
    sent = await service.call(A, "POST", "/api/v1/sends/message", {"group": "g", "text": "oops"})
    assert sent.status == 202, sent.body
    send_id = sent.body["id"]
    await asyncio.sleep(1)  # both meters' first copies under way, held
    cancelled = await service.call(A, "POST", f"/api/v1/sends/{send_id}/cancel")
    assert cancelled.status == 202, cancelled.body
    assert cancelled.body["cancelled"]
    assert not cancelled.body["finished"]  # meter-1's copy is still being sent
    gate.set()
    gate_2.set()
    await asyncio.sleep(60)
    outcomes = _outcomes(service, send_id)
    assert outcomes[canonical_eui64(two.mac)] == ("cancelled", CANCEL_UNSENT)
    assert two.role.messaging.current() is None  # withdrawn: never delivered
    # meter-2's first device was being sent it: the cancel followed it, and it took it
    assert outcomes[canonical_eui64(ahead.mac)] == ("cancelled", CANCEL_TOLD)
    assert ahead.role.messaging.current() is None
    # meter-1's device was being sent it: the cancel follows it, until it is acknowledged
    assert outcomes[canonical_eui64(one.mac)][0] == "cancelled"
    service.sims.air_of(one).restore(parse_eui64(one.mac))
    await asyncio.sleep(400)
    assert _outcomes(service, send_id)[canonical_eui64(one.mac)] == ("cancelled", CANCEL_TOLD)
    assert one.role.messaging.current() is None
    assert service.headend.send(A, send_id)["finished"]


async def test_a_cancel_the_device_missed_is_sent_again(service: Service) -> None:
    """A Cancel the display did not acknowledge (offline for a moment) was recorded
    ``cancelled`` and never sent again: the display showed the message for good. Now it is
    sent again on the back-off; the send finishes once the display took it."""
    ihd = next(d for d in service.sims.devices if d.device_type == "in-home display")
    await _register(service, [ihd])
    await _group(service, [ihd.meter])
    sent = await service.headend.send_message(A, {"group": "g", "text": "wrong price"})
    await asyncio.sleep(10)
    assert ihd.role.messaging.current() is not None
    service.sims.air_of(ihd).silence(parse_eui64(ihd.mac))
    view = await service.headend.cancel(A, sent["id"])
    ((outcome, detail),) = _outcomes(service, sent["id"]).values()
    assert outcome == "cancelled"
    assert detail.startswith("cancel not acknowledged by the device")
    assert not view["finished"]
    await asyncio.sleep(60)
    service.sims.air_of(ihd).restore(parse_eui64(ihd.mac))
    await asyncio.sleep(1000)  # the back-off's next try
    assert ihd.role.messaging.current() is None
    assert list(_outcomes(service, sent["id"]).values()) == [("cancelled", CANCEL_TOLD)]
    assert service.headend.send(A, sent["id"])["finished"]
    assert service.headend.retries.pending() == []


async def test_a_device_joining_the_group_after_the_send_is_not_sent_it(service: Service) -> None:
    """A device registered in the group after the send was accepted ran the event, with no
    outcome, and the send's cancel never reached it. The recipients are now the send's
    outcome list (the group when it was accepted), as over the work queue."""
    on_1 = [d for d in service.sims.devices if d.meter == "meter-1"]
    first = next(d for d in on_1 if d.device_type == "in-home display")
    late = next(d for d in on_1 if d.device_type == "load control device")
    await _register(service, [first])
    await _group(service, ["meter-1"])
    gate = _held(service.headend.meters["meter-1"].esi, "send_load_control")
    sent = await service.headend.send_load_control(A, {"group": "g", **EVENT})
    await _register_one(service, late)

    async def late_ready() -> bool:
        return bool(service.headend.device(A, late.mac)["state"] == "meter ready")

    await _until(service, late_ready, step=1.0)
    assert service.headend.device(A, late.mac)["groups"] == ["g"]
    gate.set()
    await asyncio.sleep(60)
    assert list(_outcomes(service, sent["id"])) == [canonical_eui64(first.mac)]
    assert _outcomes(service, sent["id"])[canonical_eui64(first.mac)][0] == "started"
    assert late.role.active_event is None  # not one of the send's recipients


async def test_a_meter_leaving_the_group_before_delivery_still_ends(service: Service) -> None:
    """A meter taken out of the group while the send had not reached it left its device
    ``pending`` for ever (the ESI refused a send to a registry group now empty): the send
    never finished. The device is sent its copy (the send's recipients were fixed when it
    was accepted) and the send finishes."""
    one = next(d for d in service.sims.devices if d.meter == "meter-1")
    two = next(d for d in service.sims.devices if d.meter == "meter-2")
    await _register(service, [one, two])
    await _group(service, ["meter-1", "meter-2"])
    gate = _held(service.headend.meters["meter-1"].esi, "send_message")
    sent = await service.headend.send_message(A, {"group": "g", "text": "hello"})
    await _group(service, ["meter-2"])
    gate.set()
    await asyncio.sleep(60)
    assert {o for o, _ in _outcomes(service, sent["id"]).values()} == {"delivered"}
    assert service.headend.send(A, sent["id"])["finished"]


async def test_a_device_not_meter_ready_backs_off_and_is_given_up(service: Service) -> None:
    """A device skipped (not METER READY) was tried every 30 s for ever (its attempts stayed
    0), against the documented 30 s, 60 s, 120 s, 300 s, then 900 s; now it backs off, and
    its copy ends when the send's window is over, so the send finishes."""
    away, ready = [d for d in service.sims.devices if d.meter == "meter-1"][:2]
    service.sims.air_of(away).silence(parse_eui64(away.mac))  # never joins
    await _register(service, [ready])
    await _register_one(service, away)
    await _group(service, ["meter-1"])
    esi = service.headend.meters["meter-1"].esi
    tries: list[float] = []
    real = esi.resend_message
    loop = asyncio.get_running_loop()

    async def counted(*args: Any, **kw: Any) -> Any:
        tries.append(loop.time())
        return await real(*args, **kw)

    esi.resend_message = counted  # type: ignore[method-assign]
    body = {"group": "g", "text": "Critical peak", "duration_minutes": 20}
    sent = await service.headend.send_message(A, body)
    start = loop.time()
    await asyncio.sleep(1800)
    gaps = [round(b - a) for a, b in zip([start, *tries], tries, strict=False)]
    assert gaps[:4] == [30, 60, 120, 300]
    outcome, detail = _outcomes(service, sent["id"])[canonical_eui64(away.mac)]
    assert (outcome, detail) == (
        "cancelled",
        f"message {sent['id']} is over (its duration ran out): not sent again",
    )
    assert service.headend.send(A, sent["id"])["finished"]
    assert service.headend.retries.pending() == []


async def test_a_superseded_event_says_by_which_send(service: Service) -> None:
    """A load control event replaced on a device by a newer one read ``cancelled`` with no
    detail, as if the retailer had cancelled it; now ``superseded by send N``."""
    lcd = next(d for d in service.sims.devices if d.device_type == "load control device")
    await _register(service, [lcd])
    await _group(service, [lcd.meter])
    older = await service.headend.send_load_control(A, {"group": "g", **EVENT})
    await asyncio.sleep(60)
    newer = await service.headend.send_load_control(A, {"group": "g", **EVENT, "duty_cycle": 20})

    async def superseded() -> bool:
        return _outcomes(service, older["id"])[canonical_eui64(lcd.mac)][0] == "cancelled"

    await _until(service, superseded, step=1.0)
    assert _outcomes(service, older["id"])[canonical_eui64(lcd.mac)] == (
        "cancelled",
        f"superseded by send {newer['id']}",
    )


async def test_a_send_to_devices_that_are_off_ends_after_one_retry_time(
    service: Service,
) -> None:
    """Six devices on two meters, four of them off: the send went one device at a time, so
    its copies ended after four retry times (25.6 s), and the back-off's tries of the four
    again took four; now the copies go out together, as a cancel's Cancels: each round ends
    after about one."""
    devices = list(service.sims.devices)
    await _register(service, devices)
    await _group(service, ["meter-1", "meter-2"])
    off = [d for d in devices if d.device_type != "load control device"]
    _off(service, off)
    loop = asyncio.get_running_loop()
    sent = await service.call(A, "POST", "/api/v1/sends/message", {"group": "g", "text": "Hi"})
    assert sent.status == 202, sent.body
    send_id = sent.body["id"]
    began = loop.time()
    while any(o == "pending" for o, _ in _outcomes(service, send_id).values()):
        assert loop.time() - began < 10 * NO_APS_ACK, "never sent"
        await asyncio.sleep(0.1)
    took = loop.time() - began
    assert took < NO_APS_ACK + SLACK, f"the send took {took:.1f} virtual seconds"
    outcomes = _outcomes(service, send_id)
    for device in devices:
        expected = "offline" if device in off else "delivered"
        assert outcomes[canonical_eui64(device.mac)][0] == expected
    records = service.headend.records.outcomes[send_id]
    due = min(records[canonical_eui64(d.mac)].next_try for d in off)
    await asyncio.sleep(due - loop.time() + NO_APS_ACK + SLACK)
    for device in off:  # each tried again, in the round's one retry time
        assert records[canonical_eui64(device.mac)].attempts == 2, device.mac

"""Tenant boundary at the meter: a device that changes hands gets nothing its former retailer
sent it from what the ESI holds.

Retailer A sends its device a load control event (duty cycle 0 %, criticality 15, a day) or a
message, de-provisions the device, and retailer B registers it. Joining for B the device
asks its ESI Get Scheduled Events (SE D.2.2.4.1) and Get Last Message (D.5.2.4.1), as every
HAN device does at start and rejoin: the ESI answered A's event and A's message, held for
the device by its EUI-64. De-provisioning (SE 5.4.8.1) drops the device from them now, in
process and over the work queue (:class:`~zse.headend.link.EsiLink`: the same ESI).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.headend.helpers import Service, queued_headend, registration
from tests.headend.test_headend_tenant_queue import _delivered, _handed_over
from tests.postgres_server import place, postgres
from zse.headend.sim import SimDevice
from zse.installcode import parse_eui64
from zse.zcl.delivery import device_name

__all__ = ["place", "postgres"]  # fixtures: the queue test runs on both engines

A, B = "retailer-a", "retailer-b"
STREET = {"name": "street", "meters": ["meter-1"]}


async def _ready(service: Service, who: str, key: str) -> None:
    for _ in range(120):  # virtual seconds: the device joins and runs CBKE
        await asyncio.sleep(1)
        state = (await service.call(who, "GET", f"/api/v1/devices/{key}")).body["state"]
        if state == "meter ready":
            return
    raise AssertionError(state)


async def _handed_to_b(service: Service, device: SimDevice, send: str, body: object) -> int:
    """A's send ``send`` (``sends/<send>``) to ``street``, the device (not METER READY yet:
    the copy is skipped, held at the ESI all the same) de-provisioned by A, registered by B
    and joined for B; the send's id."""
    key = device.mac.replace(":", "").upper()
    assert (await service.call(A, "POST", "/api/v1/groups", STREET)).status == 201
    assert (await service.call(A, "POST", "/api/v1/devices", registration(device))).status == 201
    sent = await service.call(A, "POST", f"/api/v1/sends/{send}", body)
    assert sent.status == 202, sent.body
    assert (await service.call(A, "POST", f"/api/v1/devices/{key}/deprovision")).status == 202
    assert (await service.call(B, "POST", "/api/v1/devices", registration(device))).status == 201
    await _ready(service, B, key)
    await asyncio.sleep(60)  # it asked Get Scheduled Events and Get Last Message
    return int(sent.body["id"])


def _device(service: Service, device_type: str) -> SimDevice:
    return next(
        d for d in service.sims.devices if d.meter == "meter-1" and d.device_type == device_type
    )


async def test_a_held_event_of_the_former_retailer_is_not_handed_to_the_new_one(
    service: Service,
) -> None:
    device = _device(service, "load control device")
    lce = {"group": "street", "duty_cycle": 0, "duration_minutes": 1440, "criticality_level": 15}
    event_id = await _handed_to_b(service, device, "load-control", lce)
    held = [e.issuer_event_id for e in device.role.drlc.core.events()]
    assert event_id not in held  # was: A's event held the device off for a day


async def test_a_held_message_of_the_former_retailer_is_not_shown_to_the_new_one(
    service: Service,
) -> None:
    device = _device(service, "in-home display")
    body = {"group": "street", "text": "A's secret"}
    message_id = await _handed_to_b(service, device, "message", body)
    current = device.role.messaging.current()
    assert current is None or current.message_id != message_id, current  # was A's text


async def test_a_message_delivered_before_the_handover_is_not_held_for_the_new_retailer(
    tmp_path: Path, place: Any
) -> None:
    """Over the work queue: A's message delivered to its display, which A de-provisions and
    B registers; the meter's ESI held A's message for the display's EUI-64 all the same."""
    async with queued_headend(tmp_path, place) as served:
        ihd, send_id = await _delivered(served)
        esi = served.sims.meters[0].esi
        name = device_name(parse_eui64(ihd.mac))
        assert esi.messaging.stored(send_id) is not None
        await served.headend.deprovision(A, ihd.mac)
        await _handed_over(served, ihd)
        now = esi.clock()
        assert esi.messaging.messages.last_message(name, now) is None  # was A's message
        assert esi.messaging.stored(send_id) is None

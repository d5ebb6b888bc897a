"""Tenant boundary on a shared meter: two retailers' devices on one meter; one retailer's
by-group sends reach its own devices only, also those of the other that join later and ask
their ESI for what it holds (Get Last Message, Get Scheduled Events at start)."""

from __future__ import annotations

import asyncio

from tests.headend.helpers import Service, registration


async def _ready(service: Service, who: str, mac: str) -> None:
    for _ in range(120):  # virtual seconds: the device joins and runs CBKE
        await asyncio.sleep(1)
        reply = await service.call(who, "GET", f"/api/v1/devices/{mac}")
        if reply.body["state"] == "meter ready":
            return
    raise AssertionError(reply.body)


async def test_a_send_by_group_on_a_shared_meter_reaches_its_retailer_s_devices_only(
    service: Service,
) -> None:
    a, b = "retailer-a", "retailer-b"
    kinds = {d.device_type: d for d in service.sims.devices if d.meter == "meter-1"}
    ihd_a, lcd_a = kinds["in-home display"], kinds["load control device"]
    theirs = kinds["programmable thermostat"]  # B's
    street = {"name": "street", "meters": ["meter-1"]}
    for who in (a, b):
        assert (await service.call(who, "POST", "/api/v1/groups", street)).status == 201
    for device in (ihd_a, lcd_a):
        assert (
            await service.call(a, "POST", "/api/v1/devices", registration(device))
        ).status == 201
        await _ready(service, a, device.mac)
    message = await service.call(
        a, "POST", "/api/v1/sends/message", {"group": "street", "text": "A only"}
    )
    lce = await service.call(
        a,
        "POST",
        "/api/v1/sends/load-control",
        {"group": "street", "duty_cycle": 0, "duration_minutes": 60, "criticality_level": 15},
    )
    assert message.status == lce.status == 202
    mine = {ihd_a.mac.replace(":", "").upper(), lcd_a.mac.replace(":", "").upper()}
    for sent in (message, lce):
        assert {o["mac"] for o in sent.body["outcomes"]} == mine
    # B's device on the same meter, registered and joined after A's sends
    assert (await service.call(b, "POST", "/api/v1/devices", registration(theirs))).status == 201
    await _ready(service, b, theirs.mac)
    await asyncio.sleep(60)
    assert theirs.role.messaging.current() is None
    assert [e.issuer_event_id for e in theirs.role.drlc.core.events()] == []
    assert ihd_a.role.messaging.current() is not None  # A's own got it
    for sent in (message, lce):
        view = (await service.call(a, "GET", f"/api/v1/sends/{sent.body['id']}")).body
        assert {o["mac"] for o in view["outcomes"]} == mine
        assert (await service.call(b, "GET", f"/api/v1/sends/{sent.body['id']}")).status == 404

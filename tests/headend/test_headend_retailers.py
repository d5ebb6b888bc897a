"""Retailers kept apart over a device's change of hands: a device de-provisioned by one
retailer and registered by another is the other's alone (found by an independent audit: the
first retailer's waiting load control reached it, and its history showed the first's)."""

from __future__ import annotations

import asyncio

from tests.headend.helpers import Service


async def test_a_send_waiting_for_a_device_stops_when_the_device_changes_hands(
    service: Service,
) -> None:
    a, b = "retailer-a", "retailer-b"
    device = next(
        d
        for d in service.sims.devices
        if d.meter == "meter-1" and d.device_type == "load control device"
    )
    key = device.mac.replace(":", "").upper()
    body = {
        "mac": device.mac,
        "install_code": device.install_code,
        "meter": "meter-1",
        "device_type": device.device_type,
    }
    street = {"name": "street", "meters": ["meter-1"]}
    assert (await service.call(a, "POST", "/api/v1/groups", street)).status == 201
    assert (await service.call(a, "POST", "/api/v1/devices", body)).status == 201
    lce = await service.call(
        a,
        "POST",
        "/api/v1/sends/load-control",
        {"group": "street", "duty_cycle": 0, "duration_minutes": 1440, "criticality_level": 15},
    )
    assert lce.status == 202, lce.body
    send = f"/api/v1/sends/{lce.body['id']}"
    (outcome,) = (await service.call(a, "GET", send)).body["outcomes"]
    assert outcome["outcome"] == "skipped"  # not METER_READY yet: tried again once it is
    assert (await service.call(a, "POST", f"/api/v1/devices/{key}/deprovision")).status == 202
    assert (await service.call(b, "POST", "/api/v1/devices", body)).status == 201
    for _ in range(120):  # virtual seconds: the device joins and runs CBKE for b
        await asyncio.sleep(1)
        state = (await service.call(b, "GET", f"/api/v1/devices/{key}")).body["state"]
        if state == "meter ready":
            break
    assert state == "meter ready"
    await asyncio.sleep(60)  # past every retry a's send would have made
    (outcome,) = (await service.call(a, "GET", send)).body["outcomes"]
    assert outcome["outcome"] == "skipped"
    assert outcome["attempts"] <= 1
    history = (await service.call(b, "GET", f"/api/v1/devices/{key}/history")).body["history"]
    assert [entry["event"] for entry in history] == [
        "reregister",  # b's registration: a's register, provision and deprovision are not b's
        "provision",
        "joined",
        "key_established",
    ]

"""The headend's records survive a restart of the headend (the meters keep running): devices,
groups, sends and outcomes are read back; a device offline at a send is still retried and gets
it; a registration whose meter registry entry was never written (a crash between the two
writes) is dropped, so nothing is half-registered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.headend.helpers import Service, registration, start_service
from zse.errors import StoreError
from zse.headend.core import RateLimiter
from zse.headend.pki import server_context, signed_context
from zse.headend.service import Headend
from zse.headend.store import DeviceOwner, HeadendStore
from zse.headend.web import HeadendApp, serve
from zse.installcode import parse_eui64
from zse.store import Store


async def _restart(service: Service, path: Path) -> None:
    """Stop the headend (server, operations, its store) and start it again on the same file."""
    await service.runner.cleanup()
    await service.headend.close()
    await service.store.close()
    service.store = await Store.open(path)
    records = await HeadendStore.open(service.store)
    service.headend = Headend(service.sims.meters, records, clock=service.headend.clock)
    await service.headend.start()
    service.app = HeadendApp(
        service.headend, service.config.retailers, limiter=RateLimiter(1000, 1000)
    )
    service.runner, ports = await serve(
        service.app,
        server_context(service.config),
        host="127.0.0.1",
        port=0,
        signed=(signed_context(service.config), 0),
    )
    service.port, service.signed_port = ports


async def test_records_and_retries_survive_a_restart(tmp_path: Path) -> None:
    service = await start_service(tmp_path)
    try:
        a = "retailer-a"
        await service.call(a, "POST", "/api/v1/groups", {"name": "g", "meters": ["meter-1"]})
        devices = [d for d in service.sims.devices if d.meter == "meter-1"][:2]
        for device in devices:
            body = {
                "mac": device.mac,
                "install_code": device.install_code,
                "meter": device.meter,
                "device_type": device.device_type,
            }
            assert (await service.call(a, "POST", "/api/v1/devices", body)).status == 201
        for _ in range(120):
            await asyncio.sleep(5)
            if len(service.headend.devices(a, state="meter ready")) == 2:
                break
        away = parse_eui64(devices[1].mac)
        service.sims.air_of(devices[1]).silence(away)
        sent = await service.call(a, "POST", "/api/v1/sends/message", {"group": "g", "text": "hi"})
        for _ in range(30):
            await asyncio.sleep(1)
            view = service.headend.send(a, sent.body["id"])
            if all(o["outcome"] != "pending" for o in view["outcomes"]):
                break
        assert sorted(o["outcome"] for o in view["outcomes"]) == ["delivered", "offline"]
        # a registration cut short: the owner written, the meter's registry never told
        stray = DeviceOwner(
            eui64="000D6F000B0100FF", retailer=a, meter="meter-1", device_type="smart appliance"
        )
        await service.headend.records.put_device(stray)

        await _restart(service, tmp_path / "headend.sqlite")

        listed = await service.call(a, "GET", "/api/v1/devices")
        assert [d["mac"] for d in listed.body["devices"]] == [
            d.mac.replace(":", "").upper() for d in devices
        ]
        assert (await service.call(a, "GET", "/api/v1/groups/g")).status == 200
        service.sims.air_of(devices[1]).restore(away)
        for _ in range(120):
            await asyncio.sleep(5)
            reply = await service.call(a, "GET", f"/api/v1/sends/{sent.body['id']}")
            if reply.body["finished"]:
                break
        assert {o["outcome"] for o in reply.body["outcomes"]} == {"delivered"}
        again = await service.call(a, "POST", "/api/v1/sends/message", {"group": "g", "text": "2"})
        assert again.body["id"] == sent.body["id"] + 1  # ids are never reused
    finally:
        await service.close()


async def test_a_restart_serving_fewer_meters_refuses_and_keeps_their_devices(
    tmp_path: Path,
) -> None:
    """``zse headend serve --sim 1`` after ``--sim 2``: the devices on meter-2 were taken for
    registrations cut short (their registry entry missing, only not served) and dropped for
    good (registering one again: 409). Now the start refuses, naming the meter, and changes
    nothing: served again, the device is still there."""
    service = await start_service(tmp_path)
    try:
        a = "retailer-a"
        device = next(d for d in service.sims.devices if d.meter == "meter-2")
        assert (
            await service.call(a, "POST", "/api/v1/devices", registration(device))
        ).status == 201
        await service.runner.cleanup()
        await service.headend.close()
        fewer = [m for m in service.sims.meters if m.id == "meter-1"]
        headend = Headend(fewer, service.headend.records, clock=service.headend.clock)
        with pytest.raises(StoreError, match=r"meter-2.*serve those meters again"):
            await headend.start()
        await headend.close()
        await _restart(service, tmp_path / "headend.sqlite")
        listed = await service.call(a, "GET", "/api/v1/devices")
        assert [d["mac"] for d in listed.body["devices"]] == [device.mac.replace(":", "").upper()]
    finally:
        await service.close()

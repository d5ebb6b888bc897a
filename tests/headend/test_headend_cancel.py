"""Cancelling a send moves outcomes forward only: a send whose every device's copy is over
(a load control event completed) is refused (409) and nothing is sent; a send partly over
cancels only the devices still under way, and sends the Cancel to those alone (none once the
event is over)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

from tests.headend.helpers import Service
from tests.headend.test_headend_story import _until
from zse.installcode import canonical_eui64, parse_eui64

A = "retailer-a"


async def _register(service: Service, chosen: list[Any]) -> None:
    for device in chosen:
        reply = await service.call(
            A,
            "POST",
            "/api/v1/devices",
            {
                "mac": device.mac,
                "install_code": device.install_code,
                "meter": device.meter,
                "device_type": device.device_type,
            },
        )
        assert reply.status == 201, reply.body

    async def ready() -> bool:
        reply = await service.call(A, "GET", "/api/v1/devices?state=meter-ready")
        return len(reply.body["devices"]) == len(chosen)

    await _until(service, ready)


def _spy_cancels(service: Service) -> list[tuple[str, str | None, str | None]]:
    """Every Cancel Load Control Event the meters' ESIs are asked for: (meter, device, group)."""
    calls: list[tuple[str, str | None, str | None]] = []
    for meter_id, meter in service.headend.meters.items():
        esi = meter.esi
        real = esi.cancel_load_control

        async def spy(event_id: int, *, _real: Any = real, _id: str = meter_id, **kw: Any) -> Any:
            device = kw.get("device")
            calls.append(
                (_id, None if device is None else canonical_eui64(device), kw.get("group"))
            )
            return await _real(event_id, **kw)

        esi.cancel_load_control = spy  # type: ignore[method-assign]
    return calls


async def test_a_cancel_changes_only_what_is_not_over(service: Service) -> None:
    lcds = [d for d in service.sims.devices if d.device_type == "load control device"]
    ihd = next(
        d
        for d in service.sims.devices
        if d.device_type == "in-home display" and d.meter == "meter-2"
    )
    await _register(service, [*lcds, ihd])
    for name, meters in (("one", ["meter-1"]), ("both", ["meter-1", "meter-2"])):
        reply = await service.call(A, "POST", "/api/v1/groups", {"name": name, "meters": meters})
        assert reply.status == 201, reply.body
    cancels = _spy_cancels(service)
    event = {"duty_cycle": 40, "duration_minutes": 1, "criticality_level": 3}

    # every device's event is completed: the send is finished, a cancel is refused
    done = await service.call(A, "POST", "/api/v1/sends/load-control", {"group": "one", **event})
    assert done.status == 202, done.body

    async def finished() -> bool:
        reply = await service.call(A, "GET", f"/api/v1/sends/{done.body['id']}")
        return bool(reply.body["finished"])

    await _until(service, finished)
    before = await service.call(A, "GET", f"/api/v1/sends/{done.body['id']}")
    assert {o["outcome"] for o in before.body["outcomes"]} == {"completed"}
    refused = await service.call(A, "POST", f"/api/v1/sends/{done.body['id']}/cancel")
    assert refused.status == 409, refused.body
    assert refused.body["error"]["field"] == "id"
    assert "finished" in refused.body["error"]["message"]
    after = await service.call(A, "GET", f"/api/v1/sends/{done.body['id']}")
    assert after.body == before.body  # not cancelled, outcomes as they were
    assert cancels == []

    # the load control devices complete it; the display, offline, has not had it yet
    service.sims.air_of(ihd).silence(parse_eui64(ihd.mac))
    part = await service.call(A, "POST", "/api/v1/sends/load-control", {"group": "both", **event})
    assert part.status == 202, part.body

    # the cancel comes as the last load control device's completion is written, at the
    # event's end: the display's last try is 1 s after it (after_miss), which ends its copy
    # too (a poll every 5 s met that second only when its phase fell on the event's end)
    lcd_macs = {canonical_eui64(d.mac) for d in lcds}
    completed: set[str] = set()
    watch = cast(AsyncGenerator[dict[str, Any]], service.headend.watch(A, part.body["id"]))
    async with contextlib.aclosing(watch) as changes:
        async for copy in changes:
            if copy["outcome"] == "completed" and copy["mac"] in lcd_macs:
                completed.add(copy["mac"])
            if completed == lcd_macs:
                break
    cancelled = await service.call(A, "POST", f"/api/v1/sends/{part.body['id']}/cancel")
    assert cancelled.status == 202, cancelled.body
    assert cancelled.body["cancelled"]
    by_mac = {o["mac"]: o["outcome"] for o in cancelled.body["outcomes"]}
    ihd_mac = canonical_eui64(ihd.mac)
    assert by_mac.pop(ihd_mac) == "cancelled"
    assert set(by_mac.values()) == {"completed"}
    # the event's minute is over: the display, which never had it, is sent no Cancel either
    detail = next(o["detail"] for o in cancelled.body["outcomes"] if o["mac"] == ihd_mac)
    assert detail.startswith("the device was not told of the cancel before the send was over")
    assert cancels == []
    await asyncio.sleep(5)  # the Cancel crosses the simulated air; nothing moves back
    again = await service.call(A, "GET", f"/api/v1/sends/{part.body['id']}")
    assert again.body["outcomes"] == cancelled.body["outcomes"]


async def test_a_meter_whose_group_emptied_meanwhile_is_passed_over(
    service: Service, caplog: Any
) -> None:
    """An ESI refuses a send to a registry group no device is in (TargetError): a meter
    whose devices left the group while the send went to the meters before it ended the
    send's work with an error ("headend work failed") instead of passing it over."""
    lcds = [d for d in service.sims.devices if d.device_type == "load control device"]
    on_1 = next(d for d in lcds if d.meter == "meter-1")
    on_2 = next(d for d in lcds if d.meter == "meter-2")
    await _register(service, [on_1, on_2])
    reply = await service.call(
        A, "POST", "/api/v1/groups", {"name": "both", "meters": ["meter-1", "meter-2"]}
    )
    assert reply.status == 201, reply.body
    event = {"duty_cycle": 40, "duration_minutes": 1, "criticality_level": 3}
    sent = await service.headend.send_load_control(A, {"group": "both", **event})
    # while the send goes to meter-1, meter-2's device leaves the group on its ESI
    await service.headend.meters["meter-2"].esi.registry.set_groups(on_2.mac, [])

    async def meter_1_done() -> bool:
        reply = await service.call(A, "GET", f"/api/v1/sends/{sent['id']}")
        outcomes = {o["mac"]: o["outcome"] for o in reply.body["outcomes"]}
        return outcomes[canonical_eui64(on_1.mac)] == "completed"

    await _until(service, meter_1_done)
    await asyncio.sleep(5)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []

"""End to end on the simulator, over real mutual TLS: register three devices on two meters by
API, watch them reach METER READY as they join and run CBKE, send a display message and a load
control event by group, fetch every per-device outcome (one device offline, delivered after it
comes back), stream them (server-sent events), de-provision one (issue #18, Proof)."""

from __future__ import annotations

import asyncio

from tests.headend.helpers import Service
from zse.installcode import parse_eui64


async def _until(
    service: Service, check: object, *, limit: float = 600.0, step: float = 5.0
) -> None:
    waited = 0.0
    while not await check():  # type: ignore[operator]
        assert waited < limit, "not reached in virtual time"
        await asyncio.sleep(step)  # virtual seconds: the simulated HAN runs meanwhile
        waited += step


def settled_send(service: Service, send_id: int) -> object:
    async def check() -> bool:
        reply = await service.call("retailer-a", "GET", f"/api/v1/sends/{send_id}")
        return all(o["outcome"] != "pending" for o in reply.body["outcomes"])

    return check


async def test_register_send_and_deprovision_on_the_simulator(service: Service) -> None:
    a = "retailer-a"
    group = await service.call(
        a, "POST", "/api/v1/groups", {"name": "street", "meters": ["meter-1", "meter-2"]}
    )
    assert group.status == 201, group.body
    chosen = [
        d for d in service.sims.devices if d.mac.endswith(("01:00:01", "01:00:03", "02:00:01"))
    ]
    assert len(chosen) == 3
    for device in chosen:
        reply = await service.call(
            a,
            "POST",
            "/api/v1/devices",
            {
                "mac": device.mac.replace(":", "-"),  # any printed form
                "install_code": device.install_code.replace(" ", "").lower(),
                "meter": device.meter,
                "device_type": device.device_type,
                "label": device.device_type,
            },
        )
        assert reply.status == 201, reply.body
        assert reply.body["state"] in ("new", "pending provisioning")
        assert reply.body["groups"] == ["street"]

    async def all_ready() -> bool:
        reply = await service.call(a, "GET", "/api/v1/devices?state=meter-ready")
        return len(reply.body["devices"]) == 3

    await _until(service, all_ready)
    history = await service.call(a, "GET", f"/api/v1/devices/{chosen[0].mac}/history")
    states = [h["to_state"] for h in history.body["history"]]
    assert states[0] == "new"
    assert "pending provisioning" in states
    assert states[-1] == "meter ready"

    # one device goes offline; a message by group reaches the other two at once
    offline = chosen[2]
    air = service.sims.air_of(offline)
    air.silence(parse_eui64(offline.mac))
    sent = await service.call(
        a, "POST", "/api/v1/sends/message", {"group": "street", "text": "Peak tonight 5-8pm"}
    )
    assert sent.status == 202, sent.body
    send_id = sent.body["id"]

    async def settled() -> bool:
        reply = await service.call(a, "GET", f"/api/v1/sends/{send_id}")
        return all(o["outcome"] != "pending" for o in reply.body["outcomes"])

    await _until(service, settled, step=1.0)
    reply = await service.call(a, "GET", f"/api/v1/sends/{send_id}")
    outcomes = {o["mac"]: o["outcome"] for o in reply.body["outcomes"]}
    key = parse_eui64(offline.mac)
    offline_key = str(key).replace(":", "").upper()
    assert outcomes.pop(offline_key) == "offline"
    assert set(outcomes.values()) == {"delivered"}
    assert not reply.body["finished"]

    air.restore(key)

    async def delivered() -> bool:
        reply = await service.call(a, "GET", f"/api/v1/sends/{send_id}")
        return reply.body["finished"]

    await _until(service, delivered)
    reply = await service.call(a, "GET", f"/api/v1/sends/{send_id}")
    late = next(o for o in reply.body["outcomes"] if o["mac"] == offline_key)
    assert late["outcome"] == "delivered"
    assert late["attempts"] >= 2

    events = await service.call(a, "GET", f"/api/v1/sends/{send_id}/events")
    assert events.status == 200
    assert events.headers["Content-Type"] == "text/event-stream"
    assert events.body.count("event: outcome") == 3
    assert "event: finished" in events.body

    # a message asking for confirmation: delivered, then confirmed by the display's user
    ask = await service.call(
        a,
        "POST",
        "/api/v1/sends/message",
        {"group": "street", "text": "Confirm please", "confirmation_required": True},
    )
    await _until(service, settled_send(service, ask.body["id"]), step=1.0)
    display = service.sims.device(chosen[0].mac).role
    assert await display.confirm(ask.body["id"])
    await asyncio.sleep(1)
    reply = await service.call(a, "GET", f"/api/v1/sends/{ask.body['id']}")
    by_mac = {o["mac"]: o["outcome"] for o in reply.body["outcomes"]}
    assert by_mac.pop(chosen[0].mac.replace(":", "").upper()) == "confirmed"
    assert set(by_mac.values()) == {"delivered"}
    assert not reply.body["finished"]  # the others have not confirmed

    # a message cancelled by group: the display stops showing it, and it stays cancelled
    shown = await service.call(
        a, "POST", "/api/v1/sends/message", {"group": "street", "text": "Outage at 9pm"}
    )
    assert shown.status == 202, shown.body
    await _until(service, settled_send(service, shown.body["id"]), step=1.0)
    showing = display.showing()
    assert showing is not None
    assert showing.message_id == shown.body["id"]
    withdrawn = await service.call(a, "POST", f"/api/v1/sends/{shown.body['id']}/cancel")
    assert withdrawn.status == 202, withdrawn.body
    assert {o["outcome"] for o in withdrawn.body["outcomes"]} == {"cancelled"}
    await asyncio.sleep(5)  # the Cancel Message crosses the simulated air
    showing = display.showing()
    assert showing is None or showing.message_id != shown.body["id"]
    again = await service.call(a, "POST", f"/api/v1/sends/{shown.body['id']}/cancel")
    assert (again.status, again.body["error"]["field"]) == (409, "id")

    # load control by group: the load control device reports received / started / completed
    lce = await service.call(
        a,
        "POST",
        "/api/v1/sends/load-control",
        {"group": "street", "duty_cycle": 40, "duration_minutes": 1, "criticality_level": 3},
    )
    assert lce.status == 202, lce.body

    async def reported() -> bool:
        reply = await service.call(a, "GET", f"/api/v1/sends/{lce.body['id']}")
        return any(o["outcome"] == "completed" for o in reply.body["outcomes"])

    await _until(service, reported)
    reply = await service.call(a, "GET", f"/api/v1/sends/{lce.body['id']}")
    by_mac = {o["mac"]: o["outcome"] for o in reply.body["outcomes"]}
    lcd_key = chosen[1].mac.replace(":", "").upper()
    assert by_mac[lcd_key] == "completed"
    assert all(v in ("delivered", "received", "started", "completed") for v in by_mac.values())

    # a later event, cancelled before it starts: every device's copy is cancelled
    later = await service.call(
        a,
        "POST",
        "/api/v1/sends/load-control",
        {"group": "street", "duty_cycle": 10, "start_delay_minutes": 30},
    )
    await _until(service, settled_send(service, later.body["id"]), step=1.0)
    cancelled = await service.call(a, "POST", f"/api/v1/sends/{later.body['id']}/cancel")
    assert cancelled.status == 202
    assert cancelled.body["cancelled"]
    assert {o["outcome"] for o in cancelled.body["outcomes"]} == {"cancelled"}
    again = await service.call(a, "POST", f"/api/v1/sends/{later.body['id']}/cancel")
    assert (again.status, again.body["error"]["field"]) == (409, "id")
    await asyncio.sleep(5)  # the devices answer the cancel: Report Event Status "cancelled"
    views = service.headend.meters["meter-1"].esi.drlc.view(later.body["id"])
    assert {v.status for v in views.values()} == {0x06}

    # de-provision one: it is asked to leave, and is complete when it has
    gone = chosen[0].mac
    reply = await service.call(a, "POST", f"/api/v1/devices/{gone}/deprovision")
    assert reply.status == 202
    assert reply.body["state"] in (
        "pending de-provisioning",
        "de-provision complete",
    )

    async def complete() -> bool:
        reply = await service.call(a, "GET", f"/api/v1/devices/{gone}")
        return reply.body["state"] == "de-provision complete"

    await _until(service, complete)

"""DRLC between a zigpy ESI (SeEndpoint + DrlcServer) and simulated HAN devices."""

from __future__ import annotations

import asyncio
import random

import zigpy.types as t

from zse.cbke import SUITE1
from zse.cbke.ca import TestCA
from zse.cbke.service import eui64_bytes
from zse.drlc import ApplyLoadControl, LoadControlEvent, Status, StatusReport, StopLoadControl
from zse.drlc.service import DRLC, DrlcClient, DrlcServer, ReportReceived, signature_for
from zse.installcode import InstallCode
from zse.sim import Air
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000
GROUP = 0x0E01
ALL_CLASSES = 0x0FFF
HVAC = 0x0001
SIMPLE_MISC_LOADS = 0x0080
CA = TestCA.generate()


async def han(seed: int, devices: dict[str, tuple[str, int, int]]):
    """An ESI and joined devices: name -> (eui64, device type, device class)."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[DRLC])
    await se.start()
    nodes = {}
    for name, (eui, device_type, _) in devices.items():
        code = InstallCode.generate(rng=air.rng)
        node = air.device(eui, install_code=code, channel=15)
        node.add_endpoint(1, device_type=device_type, out_clusters=[DRLC])
        node.endpoints[1].add_group(GROUP)
        await app.permit_with_link_key(node.ieee, t.KeyData(code.link_key), 60)
        await node.join()
        nodes[name] = node
    await asyncio.sleep(30)
    return air, app, se, nodes, clock


def lce(issuer_event_id: int, start: int, minutes: int, **fields: int) -> LoadControlEvent:
    values = {"device_class": ALL_CLASSES, "criticality_level": 0x04}
    values.update(fields)
    return LoadControlEvent(
        issuer_event_id=issuer_event_id, start_time=start, duration_in_minutes=minutes, **values
    )


async def test_group_event_to_three_devices_one_offline_and_the_esi_view_matches():
    devices = {
        "thermostat": ("00:0d:6f:00:0d:00:00:11", 0x0503, HVAC),
        "lcd": ("00:0d:6f:00:0d:00:00:12", 0x0502 + 2, SIMPLE_MISC_LOADS),
        "ihd": ("00:0d:6f:00:0d:00:00:13", 0x0502, ALL_CLASSES),
    }
    air, _, se, nodes, clock = await han(60, devices)
    thermostat_credentials = CA.issue(eui64_bytes(nodes["thermostat"].ieee), SUITE1)
    keys = {nodes["thermostat"].ieee: thermostat_credentials.public_key}
    server = DrlcServer(se, clock=clock, public_key=keys.get)
    await server.start()
    received: list[ReportReceived] = []
    server.on_event(received.append)
    applies = {
        "thermostat": {"cooling_temperature_set_point", "heating_temperature_set_point"},
        "lcd": {"average_load_adjustment_percentage", "duty_cycle"},
        "ihd": set(),
    }
    clients: dict[str, DrlcClient] = {}
    actions: dict[str, list[ApplyLoadControl | StopLoadControl]] = {}
    for name, (_, _, device_class) in devices.items():
        client = DrlcClient(
            nodes[name].endpoints[1],
            server_ep=SE_ENDPOINT_ID,
            device_class=device_class,
            start_randomization_minutes=0,
            applies=applies[name],
            clock=clock,
            rng=random.Random(name),
            credentials=thermostat_credentials if name == "thermostat" else None,
        )
        actions[name] = []
        client.on_event(actions[name].append)
        await client.start()  # asks for scheduled events: none yet (NOT_FOUND)
        clients[name] = client
    await asyncio.sleep(5)
    assert received == []

    air.silence(nodes["thermostat"])
    begin = clock() + 60
    event = lce(100, begin, 30, cooling_temperature_set_point=2700, duty_cycle=50)
    names = {name: str(node.ieee) for name, node in nodes.items()}
    await server.publish(event, dst=GROUP, dst_mode=t.AddrMode.Group, expected=names.values())
    await asyncio.sleep(90)  # started at the LCD and the IHD
    assert sorted(server.started(100)) == sorted([names["lcd"], names["ihd"]])
    assert server.never_answered(100) == [names["thermostat"]]

    await asyncio.sleep(10 * 60)
    await clients["lcd"].opt_out(100)
    await asyncio.sleep(5 * 60)
    air.restore(nodes["thermostat"])
    await clients["thermostat"].get_scheduled_events()  # as after a rejoin
    await asyncio.sleep(20 * 60)

    view = server.core.view(100)
    assert {n: [s for s, _ in view[names[n]].statuses] for n in names} == {
        "thermostat": [Status.RECEIVED, Status.STARTED, Status.COMPLETED],
        "lcd": [Status.RECEIVED, Status.STARTED, Status.OPTED_OUT, 0x08],
        "ihd": [Status.RECEIVED, Status.STARTED, Status.COMPLETED],
    }
    assert server.opted_out(100) == [names["lcd"]]
    assert server.never_answered(100) == []
    assert view[names["thermostat"]].signed
    assert not view[names["ihd"]].signed
    assert all(r.new for r in received)
    # The thermostat started late, when it heard the event, and ended on time.
    start_t, end_t = (view[names["thermostat"]].statuses[i][1] for i in (1, 2))
    assert start_t > begin + 15 * 60
    assert end_t == begin + 30 * 60
    # What each device applied is what it reported.
    last = {n: view[names[n]].last for n in names}
    assert last["thermostat"].cooling_temperature_set_point_applied == 2700
    assert last["thermostat"].duty_cycle_applied == 0xFF
    assert last["ihd"].cooling_temperature_set_point_applied == -0x8000
    started_lcd = [r.report for r in received if r.device == names["lcd"]][1]
    assert started_lcd.event_status == Status.STARTED
    assert started_lcd.duty_cycle_applied == 50
    assert [type(a).__name__ for a in actions["lcd"]] == ["ApplyLoadControl", "StopLoadControl"]
    assert [type(a).__name__ for a in actions["thermostat"]] == [
        "ApplyLoadControl",
        "StopLoadControl",
    ]


async def test_get_scheduled_events_at_start_up_and_republish_with_remaining_duration():
    _, _, se, nodes, clock = await han(61, {"ihd": ("00:0d:6f:00:0d:00:00:21", 0x0502, 0xFFF)})
    server = DrlcServer(se, clock=clock)
    await server.start()
    await server.publish(lce(7, clock() + 600, 60))
    await server.publish(lce(5, clock() + 600, 60, device_class=HVAC))
    await server.publish(lce(9, clock() + 60, 5))
    client = DrlcClient(
        nodes["ihd"].endpoints[1],
        server_ep=SE_ENDPOINT_ID,
        device_class=0x0FFF,
        start_randomization_minutes=0,
        clock=clock,
        rng=random.Random(1),
    )
    await client.start()
    await asyncio.sleep(2)
    # Answered in start time then issuer id order; 5 supersedes nothing (7 is newer).
    assert [e.issuer_event_id for e in client.core.events()] == [9, 7]
    assert server.core.view(5)[str(nodes["ihd"].ieee)].status == Status.SUPERSEDED
    await asyncio.sleep(60 + 60)
    again = await server.republish(9, dst=nodes["ihd"].nwk, dst_ep=1)
    assert (again.start_time, again.duration_in_minutes) == (0, 4)
    await asyncio.sleep(1)
    # A duplicate from the same ESI: no second answer.
    assert [s for s, _ in server.core.view(9)[str(nodes["ihd"].ieee)].statuses] == [
        Status.RECEIVED,
        Status.STARTED,
    ]


async def test_cancel_to_a_device_and_cancel_all_by_group():
    _, _, se, nodes, clock = await han(62, {"lcd": ("00:0d:6f:00:0d:00:00:31", 0x0504, 0x80)})
    server = DrlcServer(se, clock=clock)
    await server.start()
    client = DrlcClient(
        nodes["lcd"].endpoints[1],
        server_ep=SE_ENDPOINT_ID,
        device_class=0x80,
        start_randomization_minutes=0,
        clock=clock,
        rng=random.Random(2),
    )
    await client.start(get_scheduled_events=False)
    nwk = nodes["lcd"].nwk
    await server.publish(lce(1, 0, 60), dst=nwk, dst_ep=1)
    await server.publish(lce(2, clock() + 7200, 60), dst=nwk, dst_ep=1)
    await asyncio.sleep(60)
    await server.cancel(1, dst=nwk, dst_ep=1)
    # no longer in the table: answered 0xFD, not news after Cancelled (not recorded)
    await server.cancel(1, dst=nwk, dst_ep=1)
    await asyncio.sleep(2)
    device = str(nodes["lcd"].ieee)
    assert [s for s, _ in server.core.view(1)[device].statuses] == [
        Status.RECEIVED,
        Status.STARTED,
        Status.CANCELLED,
    ]
    await server.cancel_all(dst=GROUP, dst_mode=t.AddrMode.Group)
    await asyncio.sleep(2)
    assert server.core.view(2)[device].status == Status.CANCELLED
    assert len(client.core) == 0


async def test_forged_signature_is_not_recorded():
    _, _, se, nodes, clock = await han(63, {"t": ("00:0d:6f:00:0d:00:00:41", 0x0503, HVAC)})
    real = CA.issue(eui64_bytes(nodes["t"].ieee), SUITE1)
    other = CA.issue(bytes(8), SUITE1)
    keys = {nodes["t"].ieee: real.public_key}
    server = DrlcServer(se, clock=clock, public_key=keys.get)
    await server.start()
    await server.publish(lce(3, clock() + 600, 10))
    client = DrlcClient(
        nodes["t"].endpoints[1],
        server_ep=SE_ENDPOINT_ID,
        device_class=HVAC,
        clock=clock,
        credentials=other,  # signs with a key that is not the device's
    )
    await client.start()
    await asyncio.sleep(2)
    assert server.core.view(3) == {}
    # The device's key changes (a new key establishment): its prepared key is the new one's.
    keys[nodes["t"].ieee] = other.public_key
    await server.publish(lce(4, clock() + 600, 10))
    await client.get_scheduled_events()
    await asyncio.sleep(2)
    assert server.core.view(4)[str(nodes["t"].ieee)].signed
    keys[nodes["t"].ieee] = real.public_key  # and back: the other key's signatures fail again
    await server.publish(lce(5, clock() + 600, 10))
    await client.get_scheduled_events()
    await asyncio.sleep(2)
    assert server.core.view(5) == {}
    report = StatusReport(
        issuer_event_id=1, event_status=1, event_status_time=5, criticality_level_applied=1
    )
    signature_type, signature = signature_for(report, real)
    assert signature_type == 1
    assert len(signature) == 42
    assert signature_for(report, None) == (0, b"\xff" * 42)


async def test_enrollment_group_broadcast_and_a_persisted_server(tmp_path):
    from zse.store import Store  # noqa: PLC0415

    devices = {
        "a": ("00:0d:6f:00:0d:00:00:61", 0x0504, 0x80),
        "b": ("00:0d:6f:00:0d:00:00:62", 0x0504, 0x80),
    }
    _, _, se, nodes, clock = await han(64, devices)
    store = await Store.open(tmp_path / "esi.db")
    try:
        server = DrlcServer(se, clock=clock, store=store)
        await server.start()
        for name, group in (("a", 5), ("b", 6)):
            client = DrlcClient(
                nodes[name].endpoints[1],
                server_ep=SE_ENDPOINT_ID,
                device_class=0x80,
                utility_enrollment_group=group,
                clock=clock,
            )
            await client.start(get_scheduled_events=False)
        event = lce(11, clock() + 600, 30, utility_enrollment_group=5)
        await server.publish(event, dst=0xFFFF, dst_mode=t.AddrMode.Broadcast)
        await asyncio.sleep(5)
        assert list(server.core.view(11)) == [str(nodes["a"].ieee)]
        again = DrlcServer(se, clock=clock, store=store, namespace=server.namespace)
        await again.start()
        assert again.core.snapshot() == server.core.snapshot()
        assert again.core.event(11) == event
    finally:
        await store.close()

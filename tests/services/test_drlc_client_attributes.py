"""The ESI writes a HAN device's DRLC client attributes (SE D.2.3.2) with the general Write
Attributes commands (ZCL 2.5.3-2.5.5), on the simulator: statuses, refusals, the effect on the
events received afterwards, and persistence across a restart."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from zigpy.zcl import foundation

from tests.services.test_drlc_services import han, lce
from zse.drlc import Status
from zse.drlc.service import DRLC, DrlcClient, DrlcServer, ReportReceived
from zse.sim import SimDevice
from zse.store import Store
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

GC = foundation.GeneralCommand
S = foundation.Status
UINT8, UINT16, MAP16 = 0x20, 0x21, 0x19
LCD_CLASS = 0x0080


def record(attr: int, type_id: int, value: int) -> bytes:
    """One write attribute record (ZCL 2.5.3.1)."""
    size = {UINT8: 1, UINT16: 2, MAP16: 2}[type_id]
    return attr.to_bytes(2, "little") + bytes((type_id,)) + value.to_bytes(size, "little")


def statuses(payload: bytes) -> list[tuple[S, int | None]]:
    """A Write Attributes Response's records (ZCL 2.5.5) as (status, attribute id)."""
    records, rest = foundation.WriteAttributesResponse.deserialize(payload)
    assert rest == b""
    return [(r.status, None if r.status == S.SUCCESS else r.attrid) for r in records]


async def setup(seed: int, store: Store | None = None, **kwargs: int):
    _, _, se, nodes, clock = await han(seed, {"lcd": ("00:0d:6f:00:0d:00:00:61", 0x0504, 0x80)})
    server = DrlcServer(se, clock=clock)
    await server.start()
    lcd = nodes["lcd"]
    options = {"start_randomization_minutes": 30, "duration_randomization_minutes": 0}
    options.update(kwargs)

    async def boot(reopened: Store | None = None) -> DrlcClient:
        """A client started on ``store`` (or ``reopened``: a restart's store)."""
        client = DrlcClient(
            lcd.endpoints[1],
            server_ep=SE_ENDPOINT_ID,
            device_class=LCD_CLASS,
            clock=clock,
            rng=random.Random(seed),
            store=store if reopened is None else reopened,
            **options,
        )
        await client.start(get_scheduled_events=False)
        return client

    async def write(payload: bytes, command: int = GC.Write_Attributes):
        assert lcd.nwk is not None
        return await se.request(
            lcd.nwk, 1, DRLC, command, payload, cluster_specific=False, encrypt=True
        )

    async def read(*attrs: int) -> dict[int, int]:
        assert lcd.nwk is not None
        reply = await se.request(
            lcd.nwk,
            1,
            DRLC,
            GC.Read_Attributes,
            b"".join(a.to_bytes(2, "little") for a in attrs),
            cluster_specific=False,
            encrypt=True,
        )
        schema = foundation.GENERAL_COMMANDS[GC.Read_Attributes_rsp].schema
        rsp, _ = schema.deserialize(reply.payload)
        return {r.attrid: int(r.value.value) for r in rsp.status_records}

    return se, server, lcd, clock, boot, write, read


async def test_esi_writes_each_client_attribute_and_the_core_uses_it():
    _, _, _, _, boot, write, read = await setup(70)
    client = await boot()
    assert await read(0, 1, 2, 3) == {0: 0, 1: 30, 2: 0, 3: LCD_CLASS}
    for attr, type_id, value in ((0, UINT8, 0x42), (1, UINT8, 60), (2, UINT8, 0), (3, MAP16, 0x81)):
        reply = await write(record(attr, type_id, value))
        assert reply.command_id == GC.Write_Attributes_rsp
        assert statuses(reply.payload) == [(S.SUCCESS, None)]
    assert await read(0, 1, 2, 3) == {0: 0x42, 1: 60, 2: 0, 3: 0x81}
    core = client.core
    assert (
        core.utility_enrollment_group,
        core.start_randomization_minutes,
        core.duration_randomization_minutes,
        core.device_class,
    ) == (0x42, 60, 0, 0x81)
    # Several records in one frame, each written.
    reply = await write(record(1, UINT8, 5) + record(2, UINT8, 7))
    assert statuses(reply.payload) == [(S.SUCCESS, None)]
    assert (core.start_randomization_minutes, core.duration_randomization_minutes) == (5, 7)


async def test_bad_types_values_and_unknown_attributes_are_refused_record_by_record():
    _, _, lcd, _, boot, write, read = await setup(71)
    client = await boot()
    lcd.endpoints[1].set_attribute(DRLC, 0x0100, 9, UINT8)  # published, not writable
    refused = [
        (record(0, UINT16, 3), S.INVALID_DATA_TYPE),
        (record(3, UINT8, 1), S.INVALID_DATA_TYPE),
        (record(1, UINT8, 61), S.INVALID_VALUE),
        (record(2, UINT8, 0xFF), S.INVALID_VALUE),
        (record(0x0004, UINT8, 1), S.UNSUPPORTED_ATTRIBUTE),
        (record(0x0100, UINT8, 1), S.READ_ONLY),
    ]
    for payload, status in refused:
        reply = await write(payload)
        assert statuses(reply.payload) == [(status, int.from_bytes(payload[:2], "little"))]
    assert await read(0, 1, 2, 3, 0x0100) == {0: 0, 1: 30, 2: 0, 3: LCD_CLASS, 0x0100: 9}
    # Write Attributes: the good record is written, only the bad one is answered.
    reply = await write(record(1, UINT8, 61) + record(2, UINT8, 60) + record(9, UINT8, 0))
    assert statuses(reply.payload) == [(S.INVALID_VALUE, 1), (S.UNSUPPORTED_ATTRIBUTE, 9)]
    assert client.core.duration_randomization_minutes == 60
    # Write Attributes Undivided: one bad record and nothing is written.
    reply = await write(record(0, UINT8, 7) + record(1, UINT8, 61), GC.Write_Attributes_Undivided)
    assert statuses(reply.payload) == [(S.INVALID_VALUE, 1)]
    assert await read(0, 1) == {0: 0, 1: 30}
    reply = await write(record(0, UINT8, 7) + record(1, UINT8, 0), GC.Write_Attributes_Undivided)
    assert statuses(reply.payload) == [(S.SUCCESS, None)]
    assert await read(0, 1) == {0: 7, 1: 0}
    # A malformed frame (a record cut short) is answered MALFORMED_COMMAND, nothing written.
    reply = await write(record(0, UINT8, 8) + b"\x01\x00\x20")
    assert reply.command_id == GC.Default_Response
    assert reply.payload == bytes((GC.Write_Attributes, S.MALFORMED_COMMAND))
    assert client.core.utility_enrollment_group == 7


async def test_write_attributes_no_response_writes_silently():
    se, _, lcd, _, boot, _, read = await setup(72)
    client = await boot()
    seen: list[int] = []

    async def listen() -> None:
        async for msg in se.messages():
            if msg.cluster_id == DRLC and not msg.is_cluster_command:
                seen.append(msg.command_id)

    listener = asyncio.get_running_loop().create_task(listen())
    await asyncio.sleep(0)
    assert lcd.nwk is not None
    await se.send(
        lcd.nwk,
        1,
        DRLC,
        GC.Write_Attributes_No_Response,
        record(1, UINT8, 12) + record(2, UINT8, 61),
        cluster_specific=False,
        encrypt=True,
    )
    await asyncio.sleep(5)
    assert seen == []  # neither a Write Attributes Response nor a Default Response
    listener.cancel()
    assert client.core.start_randomization_minutes == 12
    assert await read(1, 2) == {1: 12, 2: 0}


def publisher(
    server: DrlcServer, lcd: SimDevice, clock: Callable[[], int]
) -> Callable[[int, int], Awaitable[list[int]]]:
    """``publish(event_id, group)``: the ESI publishes an event of that enrollment group to
    the device (20 minutes apart by id); the statuses the device reported back."""
    received: list[ReportReceived] = []
    server.on_event(received.append)

    async def publish(event_id: int, group: int) -> list[int]:
        received.clear()
        event = lce(
            event_id, clock() + 1200 * event_id, 10, utility_enrollment_group=group, event_control=0
        )
        await server.publish(event, dst=lcd.nwk, dst_ep=1)
        await asyncio.sleep(5)
        return [r.report.event_status for r in received]

    return publish


async def test_written_enrollment_group_changes_which_events_the_device_acts_on():
    _, server, lcd, clock, boot, write, _ = await setup(73)
    client = await boot()
    publish = publisher(server, lcd, clock)
    # enrolled in group 0 (the default): a member of every group (SE D.2.3.2.1)
    assert await publish(1, 5) == [Status.RECEIVED]
    reply = await write(record(0, UINT8, 5))
    assert statuses(reply.payload) == [(S.SUCCESS, None)]
    assert await publish(2, 5) == [Status.RECEIVED]
    assert await publish(3, 6) == []
    assert await publish(4, 0) == [Status.RECEIVED]
    assert sorted(e.issuer_event_id for e in client.core.events()) == [1, 2, 4]


async def test_written_start_randomization_applies_to_events_received_afterwards():
    _, server, lcd, clock, boot, write, _ = await setup(74, start_randomization_minutes=60)
    await boot()
    received: list[ReportReceived] = []
    server.on_event(received.append)
    reply = await write(record(1, UINT8, 0))
    assert statuses(reply.payload) == [(S.SUCCESS, None)]
    start = clock() + 120
    await server.publish(lce(1, start, 5, event_control=0x01), dst=lcd.nwk, dst_ep=1)
    await asyncio.sleep(200)
    started = [r.report for r in received if r.report.event_status == Status.STARTED]
    assert [r.event_status_time for r in started] == [start]  # no start randomization


async def test_written_attributes_survive_a_restart(tmp_path):
    store = await Store.open(tmp_path / "lcd.db")
    try:
        _, _, _, _, boot, write, read = await setup(75, store=store)
        client = await boot()
        payload = record(0, UINT8, 9) + record(1, UINT8, 2) + record(3, MAP16, 0x0180)
        assert statuses((await write(payload)).payload) == [(S.SUCCESS, None)]
        await client.stop()
        client = await boot()  # constructed with group 0, 30 minutes, class 0x80 again
        assert await read(0, 1, 2, 3) == {0: 9, 1: 2, 2: 0, 3: 0x0180}
        core = client.core
        assert (
            core.utility_enrollment_group,
            core.start_randomization_minutes,
            core.device_class,
        ) == (9, 2, 0x0180)
        await client.stop()
    finally:
        await store.close()


@pytest.mark.parametrize("delay", [-1.0, 5.5])
def test_report_delay_outside_zero_to_five_seconds_is_refused(delay: float):
    with pytest.raises(ValueError, match="report_delay"):
        DrlcClient(
            _NoEndpoint(),  # type: ignore[arg-type]
            server_ep=SE_ENDPOINT_ID,
            device_class=LCD_CLASS,
            report_delay=delay,
        )


class _NoEndpoint:
    endpoint_id = 1

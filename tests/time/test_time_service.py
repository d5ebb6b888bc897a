"""The Time server and its client over the simulated air: one clock reading per Read
Attributes Response (D5), Write Attributes (D6), a server with only the mandatory attributes
(F8)."""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Callable

from zigpy.zcl import foundation

from tests.joined import joined_device
from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air, SimDevice
from zse.time.core import ATTRIBUTE_TYPES, INVALID_TIME
from zse.time.service import TimeServer, TimeStatus, read_time, time_reading_from_response
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

A = TimeAttribute
START = 800_000_000


async def esi_and_display(seed: int) -> tuple[SeEndpoint, SimDevice, Callable[[], int]]:
    """An ESI endpoint serving Time (no server started yet) and a joined display."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    se = SeEndpoint(app, in_clusters=[TIME])
    await se.start()
    ihd = await joined_device(
        air, app, "00:0d:6f:00:0d:00:00:01", device_type=0x0502, out_clusters=[TIME]
    )
    return se, ihd, lambda: START + int(loop.time())


async def write(ihd: SimDevice, attribute: int, type_id: int, value: bytes) -> bytes:
    """Write one Time attribute of the ESI; the Write Attributes Response's payload."""
    reply = await ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Write_Attributes,
        struct.pack("<HB", attribute, type_id) + value,
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.command_id == foundation.GeneralCommand.Write_Attributes_rsp
    return reply.payload


async def test_one_response_is_computed_from_one_clock_reading():
    """D5: a clock that ticks at every call still gives one instant per response, so
    StandardTime - Time == TimeZone and LocalTime - StandardTime is the DST shift."""
    se, ihd, _ = await esi_and_display(50)
    ticks = itertools.count(START)
    server = TimeServer(se, clock=lambda: next(ticks), zone="Europe/London")
    server.start()
    times = []
    for _ in range(2):
        reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
        values = reading.values
        assert values[A.STANDARD_TIME] - values[A.TIME] == values[A.TIME_ZONE] == 0
        assert values[A.LOCAL_TIME] - values[A.STANDARD_TIME] == values[A.DST_SHIFT] == 3600
        times.append(values[A.TIME])
    assert times[0] < times[1]  # the next response reads the clock again


async def test_valid_until_time_is_writable_and_the_rest_read_only():
    """D6: ValidUntilTime is read/write (ZCL 3.12.2.2.10) and later than LastSetTime; an ESI
    is a Master (and MasterZoneDst with a zone), so Time, TimeStatus, TimeZone and DST are not
    writable by a client (ZCL 3.12.2.2.1-3.12.2.2.2)."""
    se, ihd, clock = await esi_and_display(51)
    server = TimeServer(se, clock=clock, zone="Europe/London")
    server.start()
    utc_time = ATTRIBUTE_TYPES[A.VALID_UNTIL_TIME]
    later = clock() + 86_400
    assert await write(ihd, A.VALID_UNTIL_TIME, utc_time, struct.pack("<I", later)) == b"\x00"
    assert server.core.valid_until_time == later
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert reading.values[A.VALID_UNTIL_TIME] == later

    server.core.set_time(clock(), valid_for=3600)  # the ESI's own setting is served too
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert reading.values[A.VALID_UNTIL_TIME] == server.core.last_set_time + 3600
    not_later = struct.pack("<I", server.core.last_set_time)
    refused = await write(ihd, A.VALID_UNTIL_TIME, utc_time, not_later)
    assert refused == struct.pack("<BH", foundation.Status.INVALID_VALUE, A.VALID_UNTIL_TIME)

    for attribute in (A.TIME, A.TIME_STATUS, A.TIME_ZONE, A.DST_START, A.DST_END, A.DST_SHIFT):
        type_id = ATTRIBUTE_TYPES[attribute]
        size = 1 if attribute == A.TIME_STATUS else 4
        payload = await write(ihd, attribute, type_id, bytes(size))
        assert payload == struct.pack("<BH", foundation.Status.READ_ONLY, attribute)


async def test_a_server_with_only_the_mandatory_attributes_is_read_as_utc():
    """F8: Time and TimeStatus only, the rest UNSUPPORTED_ATTRIBUTE: TimeZone counts as 0."""
    se, ihd, clock = await esi_and_display(52)
    se.set_attribute_source(TIME, A.TIME, ATTRIBUTE_TYPES[A.TIME], clock)
    se.set_attribute_source(TIME, A.TIME_STATUS, ATTRIBUTE_TYPES[A.TIME_STATUS], lambda: 0b0001)
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert reading.values == {A.TIME: clock(), A.TIME_STATUS: 0b0001}
    assert reading.local_time == reading.values[A.TIME]
    assert reading.untrusted is None  # a Master: a display may set its clock from it


def test_a_response_without_time_zone_decodes():
    """F8, the audit's frame: Time and TimeStatus SUCCESS, 0x0002-0x0009 UNSUPPORTED."""
    payload = (
        struct.pack("<HBBI", A.TIME, 0, 0xE2, START)
        + struct.pack("<HBBB", A.TIME_STATUS, 0, 0x18, 0x01)
        + b"".join(struct.pack("<HB", attribute, 0x86) for attribute in range(2, 10))
    )
    reading = time_reading_from_response(payload)
    assert (reading.values, reading.local_time) == ({A.TIME: START, A.TIME_STATUS: 1}, START)


async def test_a_valid_until_time_written_before_any_set_time_is_kept():
    se, ihd, clock = await esi_and_display(53)
    server = TimeServer(se, clock=clock)
    server.start()
    assert server.core.last_set_time == INVALID_TIME  # nothing to be later than
    utc_time = ATTRIBUTE_TYPES[A.VALID_UNTIL_TIME]
    assert await write(ihd, A.VALID_UNTIL_TIME, utc_time, struct.pack("<I", 5)) == b"\x00"
    server.time_zone = 3600  # a new fixed offset keeps it
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert (reading.values[A.VALID_UNTIL_TIME], reading.values[A.TIME_ZONE]) == (5, 3600)


async def test_a_valid_until_time_of_0_is_held_as_0_as_after_a_restart():
    """ZCL 3.12.2.2.10: ValidUntilTime 0 is a UTCTime (2000-01-01 00:00), not the invalid
    0xFFFFFFFF: the server's own record of it is what it serves and what a restart takes
    back from the store (the core held 0xFFFFFFFF while the endpoint served 0)."""
    se, ihd, clock = await esi_and_display(55)
    server = TimeServer(se, clock=clock)
    server.start()
    utc_time = ATTRIBUTE_TYPES[A.VALID_UNTIL_TIME]
    assert await write(ihd, A.VALID_UNTIL_TIME, utc_time, struct.pack("<I", 0)) == b"\x00"
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert reading.values[A.VALID_UNTIL_TIME] == 0
    assert reading.untrusted is not None  # a Time past 2000-01-01 is past it
    assert server.core.valid_until_time == 0
    assert server.core.attributes(clock())[A.VALID_UNTIL_TIME] == 0


async def test_a_time_server_that_is_not_a_master_is_set_over_the_air():
    """ZCL 3.12.2.2.1-2: Time and TimeStatus are read/write on a server that is not a Master.
    The endpoint answered READ_ONLY to every attribute served from a source, whatever the
    server allowed: a written Time now sets the server's clock and LastSetTime, and of
    TimeStatus only Synchronized is taken."""
    se, ihd, clock = await esi_and_display(54)
    server = TimeServer(se, clock=clock, status=TimeStatus(master=False, superseding=False))
    server.start()
    later = clock() + 1000
    utc_time = ATTRIBUTE_TYPES[A.TIME]
    assert await write(ihd, A.TIME, utc_time, struct.pack("<I", later)) == b"\x00"
    status = ATTRIBUTE_TYPES[A.TIME_STATUS]
    assert await write(ihd, A.TIME_STATUS, status, b"\x0f") == b"\x00"
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert reading.values[A.TIME] - later in (0, 1)  # the air's round trip
    assert reading.values[A.LAST_SET_TIME] == later
    assert reading.values[A.TIME_STATUS] == 0x02  # Synchronized only
    standard = ATTRIBUTE_TYPES[A.STANDARD_TIME]
    assert await write(ihd, A.STANDARD_TIME, standard, bytes(4)) == struct.pack(
        "<BH", foundation.Status.READ_ONLY, A.STANDARD_TIME
    )

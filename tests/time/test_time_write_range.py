"""A written Time, TimeZone or DST value can no longer break reads of a Time server.

A Time server that is not a Master took any written Time, even 0xFFFFFFFF (the invalid
UTCTime), and any TimeZone with it: Time, StandardTime and LocalTime then left uint32 and
every Read Attributes of them raised and went unanswered (audit today, finding 3). Such a
write now answers INVALID_VALUE (ZCL 2.5.3.3), and a time that leaves its type anyway (the
clock running on, an Undivided write of Time and TimeZone together) is served as the
invalid value 0xFFFFFFFF, with a warning.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.joined import joined_device
from zse.se.ids import TIME, TimeAttribute
from zse.sim import Air
from zse.time.core import ATTRIBUTE_TYPES, INVALID_TIME, FixedZone, TimeCore, ZoneYear
from zse.time.service import TimeServer, TimeStatus, read_time
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

A = TimeAttribute
START = 800_000_000
SUCCESS, INVALID_VALUE = foundation.Status.SUCCESS, foundation.Status.INVALID_VALUE
DEVICE = TimeStatus(master=False, superseding=False)
TIMES = (A.TIME, A.STANDARD_TIME, A.LOCAL_TIME)


def server(now: Callable[[], int], status: TimeStatus = DEVICE) -> TimeServer:
    endpoint = (
        Air(seed=61)
        .device("00:0d:6f:00:0d:00:00:08", channel=15)
        .add_endpoint(1, device_type=0x0502, in_clusters=[TIME])
    )
    time = TimeServer(endpoint, clock=now, status=status)  # type: ignore[arg-type]
    time.start()
    return time


def read(time: TimeServer, attribute: A) -> int:
    value = time.endpoint.attribute_value(TIME, attribute)  # type: ignore[attr-defined]
    return int(value.value)


def test_an_invalid_or_overflowing_time_is_refused() -> None:
    """0xFFFFFFFF, and a Time whose StandardTime would pass it, answer INVALID_VALUE and
    change nothing; so does a TimeZone that would, or one making StandardTime negative."""
    time = server(lambda: START)
    assert time.write(A.TIME, INVALID_TIME) == INVALID_VALUE
    assert time.write(A.TIME_ZONE, 3600) == foundation.Status.SUCCESS
    assert time.write(A.TIME, INVALID_TIME - 3600) == INVALID_VALUE  # StandardTime 0xFFFFFFFF
    assert time.write(A.TIME, INVALID_TIME - 3601) == foundation.Status.SUCCESS
    assert time.write(A.TIME_ZONE, 7200) == INVALID_VALUE
    assert read(time, A.STANDARD_TIME) == INVALID_TIME - 1
    assert time.write(A.TIME, 100) == foundation.Status.SUCCESS
    assert time.write(A.TIME_ZONE, -3600) == INVALID_VALUE
    assert (read(time, A.TIME), read(time, A.TIME_ZONE)) == (100, 3600)


def test_a_dst_period_that_would_overflow_local_time_is_refused() -> None:
    """LocalTime counts DstShift while DST is in effect: writing DstStart/DstEnd around a
    Time near the top, with a shift, is refused once it would leave uint32."""
    time = server(lambda: START)
    top = INVALID_TIME - 1000
    assert time.write(A.TIME, top) == foundation.Status.SUCCESS
    assert time.write(A.DST_SHIFT, 3600) == foundation.Status.SUCCESS  # no period yet
    assert time.write(A.DST_START, top - 10) == foundation.Status.SUCCESS
    assert time.write(A.DST_END, top + 10) == INVALID_VALUE  # DST in effect: past the top
    assert read(time, A.LOCAL_TIME) == top


def test_the_core_refuses_what_would_leave_the_range() -> None:
    core = TimeCore(FixedZone(ZoneYear(time_zone=-60)))
    assert core.range_refusal(A.TIME, 59, START) == INVALID_VALUE
    assert core.range_refusal(A.TIME, 60, START) is None
    assert core.range_refusal(A.TIME_ZONE, -86_400, 86_399) == INVALID_VALUE
    assert core.range_refusal(A.TIME_ZONE, -86_400, 86_400) is None
    assert core.range_refusal(A.TIME_STATUS, 0xFF, START) is None


def test_a_clock_run_past_the_top_serves_the_invalid_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Accepted near the top, Time runs past 0xFFFFFFFE: served 0xFFFFFFFF, with a warning,
    and the other attributes still read."""
    now = [START]
    time = server(lambda: now[0])
    assert time.write(A.TIME, INVALID_TIME - 5) == foundation.Status.SUCCESS
    now[0] += 10
    assert [read(time, a) for a in TIMES] == [INVALID_TIME] * 3
    assert read(time, A.LAST_SET_TIME) == INVALID_TIME - 5
    assert "out of its type's range" in caplog.text


async def test_an_undivided_write_of_time_and_zone_leaves_time_readable() -> None:
    """On the simulator: a display writes Time near the top and TimeZone +86400 in one
    Write Attributes Undivided (each checked alone, both taken); the server's Time is still
    read, StandardTime and LocalTime as 0xFFFFFFFF. Before, the read went unanswered."""
    air = Air(seed=62)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()
    se = SeEndpoint(app, in_clusters=[TIME])
    await se.start()
    ihd = await joined_device(
        air, app, "00:0d:6f:00:0d:00:00:09", device_type=0x0502, out_clusters=[TIME]
    )
    TimeServer(se, clock=lambda: START + int(loop.time()), status=DEVICE).start()
    top = INVALID_TIME - 1000
    records = struct.pack("<HBI", A.TIME, ATTRIBUTE_TYPES[A.TIME], top)
    records += struct.pack("<HBi", A.TIME_ZONE, ATTRIBUTE_TYPES[A.TIME_ZONE], 86_400)
    reply = await ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Write_Attributes_Undivided,
        records,
        cluster_specific=False,
        encrypt=True,
    )
    assert reply.payload == bytes([foundation.Status.SUCCESS])
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert top <= reading.values[A.TIME] < INVALID_TIME
    assert reading.values[A.STANDARD_TIME] == reading.values[A.LOCAL_TIME] == INVALID_TIME


_UINT32 = st.one_of(
    st.integers(0, INVALID_TIME),
    st.integers(INVALID_TIME - 3 * 86_400, INVALID_TIME),
    st.integers(0, 3 * 86_400),
)
_OFFSET = st.one_of(st.integers(-86_400, 86_400), st.integers(-(2**31), 2**31 - 1))
_WRITE = st.one_of(
    st.tuples(st.sampled_from([A.TIME, A.DST_START, A.DST_END]), _UINT32),
    st.tuples(st.sampled_from([A.TIME_ZONE, A.DST_SHIFT]), _OFFSET),
    st.tuples(st.just(A.TIME_STATUS), st.integers(0, 0xFF)),
    st.tuples(st.just(None), st.integers(0, 200_000)),  # the clock runs on
)


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from([0x00, 0x02, 0x04]), writes=st.lists(_WRITE, max_size=12))
def test_any_sequence_of_writes_leaves_every_attribute_readable(
    status: int, writes: list[tuple[A | None, int]]
) -> None:
    """Whatever is written, and however long the clock runs, every attribute reads within
    its type; right after an accepted write of Time, TimeZone or DST, Time, StandardTime and
    LocalTime are valid (not 0xFFFFFFFF)."""
    now = [START]
    time = server(lambda: now[0], TimeStatus.from_bitmap(status))
    for attribute, value in writes:
        if attribute is None:
            now[0] += value
        elif time.write(attribute, value) == SUCCESS and attribute != A.TIME_STATUS:
            assert all(read(time, a) < INVALID_TIME for a in TIMES), (attribute, value)
        for each in A:
            assert time.endpoint.attribute_value(TIME, each) is not None  # type: ignore[attr-defined]

"""#14.6: the ESI's Read Attributes Response with every Time attribute, as tshark reads it."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.services.test_price_time_services import han
from zse.errors import InvalidFrame
from zse.se.frames import max_zcl_payload
from zse.se.ids import TIME, TimeAttribute
from zse.time.core import ATTRIBUTE_TYPES, to_zigbee
from zse.time.service import TimeServer, read_time, time_reading_from_response
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

A = TimeAttribute


def le(value: int) -> str:
    return (value & 0xFFFFFFFF).to_bytes(4, "little").hex()


async def test_tshark_dissects_every_time_attribute_with_the_served_values(tmp_path):
    _, _, se, _, _, ihd, _, clock = await han(41)
    server = TimeServer(se, clock=clock, zone="America/New_York")
    server.start()
    server.core.set_time(clock() - 60, valid_for=86_400)
    payloads = []
    for part in (list(ATTRIBUTE_TYPES)[:9], list(ATTRIBUTE_TYPES)[9:]):  # 9 fit one frame
        reply = await ihd.endpoints[1].request(
            0x0000,
            SE_ENDPOINT_ID,
            TIME,
            foundation.GeneralCommand.Read_Attributes,
            b"".join(int(a).to_bytes(2, "little") for a in part),
            cluster_specific=False,
            encrypt=True,
        )
        payloads.append(reply.payload)
    now = clock()
    expected = {A.TIME_STATUS: 0b1101, **server.core.attributes(now)}
    assert expected[A.DST_START] == to_zigbee(dt.datetime(2025, 3, 9, 7, tzinfo=dt.UTC))  # 2 EST
    assert expected[A.LOCAL_TIME] == now - 4 * 3600  # EDT in May 2025
    assert time_reading_from_response(b"".join(payloads)).values == expected

    rsp = foundation.GeneralCommand.Read_Attributes_rsp
    frames = [air_frame(TIME, bytes((0x18, 7 + n, rsp)) + p, 1) for n, p in enumerate(payloads)]
    first, second = dissect(frames, tmp_path)
    assert not second.malformed
    assert second.raw("zbee_zcl.attr.utc") == [le(expected[A.VALID_UNTIL_TIME])]
    packet = first
    assert not packet.malformed
    assert packet.show("zbee_zcl_general.time.attr_id") == [
        f"0x{a:04x}" for a in list(ATTRIBUTE_TYPES)[:9]
    ]
    assert packet.show("zbee_zcl.attr.status") == ["0x00"] * 9
    assert packet.show("zbee_zcl.attr.data.type") == [
        f"0x{t:02x}" for t in list(ATTRIBUTE_TYPES.values())[:9]
    ]
    assert packet.show("zbee_zcl_general.time.attr.time_status") == ["0x0d"]
    assert packet.show("zbee_zcl_general.time.attr.time_status.master_zone_dst") == ["1"]
    assert (
        packet.show("zbee_zcl.attr.int32")
        == [
            str(expected[A.TIME_ZONE]),
            str(expected[A.DST_SHIFT]),
        ]
        == ["-18000", "3600"]
    )
    assert packet.show("zbee_zcl.attr.uint32") == [
        str(expected[a]) for a in (A.DST_START, A.DST_END, A.STANDARD_TIME, A.LOCAL_TIME)
    ]
    assert packet.raw("zbee_zcl.attr.utc") == [le(expected[a]) for a in (A.TIME, A.LAST_SET_TIME)]
    assert packet.show("zbee_zcl.attr.utc")[0].startswith("May  8, 2025 ")  # from 2000-01-01


@given(st.binary(max_size=80))
def test_garbage_read_responses_raise_invalid_frame_only(payload):
    try:
        reading = time_reading_from_response(payload)
    except InvalidFrame:
        return
    assert A.TIME in reading.values


async def test_setting_time_zone_serves_that_fixed_offset():
    """TimeServer.time_zone stays settable as in 0.1.0: a fixed offset, no DST."""
    _, _, se, _, _, ihd, _, clock = await han(42)
    server = TimeServer(se, clock=clock, zone="Europe/London")
    server.start()
    server.time_zone = -3600
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert server.time_zone == reading.values[A.TIME_ZONE] == -3600
    assert reading.values[A.DST_SHIFT] == 0
    assert reading.local_time == reading.values[A.TIME] - 3600


async def test_a_read_of_every_time_attribute_is_answered_in_frames_that_fit():
    """The ten Time attributes answered APS-encrypted are 80 octets of ZCL frame, past what
    one 127-octet radio frame carries (70 of payload): the server answers "only as many read
    attribute status records as will fit" (ZCL 2.5.2) and read_time asks again for the rest.
    Before, the one answer was too long for the air (the simulator now refuses such a frame)."""
    _, _, se, _, _, ihd, _, clock = await han(43)
    server = TimeServer(se, clock=clock, zone="America/New_York")
    server.start()
    server.core.set_time(clock() - 60, valid_for=86_400)
    every = b"".join(int(a).to_bytes(2, "little") for a in ATTRIBUTE_TYPES)
    reply = await ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Read_Attributes,
        every,
        cluster_specific=False,
        encrypt=True,
    )
    assert len(reply.payload) <= max_zcl_payload(group=False)
    assert A.VALID_UNTIL_TIME not in time_reading_from_response(reply.payload).values
    reading = await read_time(ihd.endpoints[1], 0x0000, SE_ENDPOINT_ID, encrypt=True)
    assert set(reading.values) == set(ATTRIBUTE_TYPES)

"""The endpoint runtime's own ZCL header codec against zigpy's ``ZCLHeader`` (the oracle), and
the SE endpoint's NWK -> EUI-64 memo against zigpy's device table."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from zse.errors import InvalidFrame
from zse.installcode import InstallCode
from zse.sim import Air
from zse.zcl.endpoint import ZclMessage, decode_zcl_header, encode_zcl_header
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

PRICE = 0x0700


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=8))
def test_decode_reads_what_zigpy_reads_or_refuses_what_zigpy_refuses(data):
    try:
        theirs, rest = foundation.ZCLHeader.deserialize(data)
    except ValueError:
        with pytest.raises(InvalidFrame, match="ZCL frame"):  # the DecodeError family
            decode_zcl_header(data)
        return
    frame_control, manufacturer, tsn, command_id, length = decode_zcl_header(data)
    assert frame_control == int(theirs.frame_control.serialize()[0])
    assert manufacturer == (None if theirs.manufacturer is None else int(theirs.manufacturer))
    assert (tsn, command_id) == (int(theirs.tsn), int(theirs.command_id))
    assert data[length:] == rest


@settings(max_examples=200, deadline=None)
@given(
    cluster=st.booleans(),
    direction=st.sampled_from(foundation.Direction),
    ddr=st.booleans(),
    manufacturer=st.none() | st.integers(0, 0xFFFF),
    tsn=st.integers(0, 255),
    command_id=st.integers(0, 255),
)
def test_encode_writes_what_zigpy_writes(cluster, direction, ddr, manufacturer, tsn, command_id):
    make = foundation.ZCLHeader.cluster if cluster else foundation.ZCLHeader.general
    theirs = make(tsn, command_id, manufacturer=manufacturer, direction=direction)
    theirs.frame_control = theirs.frame_control.replace(disable_default_response=ddr)
    frame_control = int(cluster) | int(direction) << 3 | int(ddr) << 4
    assert encode_zcl_header(frame_control, manufacturer, tsn, command_id) == bytes(
        theirs.serialize()
    )


def test_message_rebuilds_zigpys_header_on_demand():
    msg = ZclMessage(
        src_nwk=1,
        src_ieee=None,
        src_ep=1,
        dst_ep=9,
        cluster_id=PRICE,
        profile_id=0x0109,
        frame_control=0x19,
        manufacturer=0x1234,
        tsn=7,
        command_id=0x02,
        payload=b"",
        aps_encrypted=True,
        group=None,
        broadcast=False,
        timestamp=0.0,
    )
    assert msg.from_server
    assert msg.is_cluster_command
    assert msg.disable_default_response
    assert msg.direction == foundation.Direction.Server_to_Client
    header = msg.header
    assert header.frame_control.is_manufacturer_specific
    assert (header.manufacturer, header.tsn, header.command_id) == (0x1234, 7, 0x02)
    assert header.direction == foundation.Direction.Server_to_Client


async def test_source_address_memo_follows_zigpys_table_when_a_device_changes_address():
    air = Air(seed=90)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[PRICE])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    device = air.device("00:0d:6f:00:0b:00:00:90", install_code=code, channel=15)
    device.add_endpoint(1, device_type=0x0502, out_clusters=[PRICE])
    await app.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
    await device.join()
    await asyncio.sleep(30)
    seen: list[ZclMessage] = []
    se.add_handler(PRICE, seen.append)

    async def get_current_price() -> None:
        await device.endpoints[1].send(0x0000, SE_ENDPOINT_ID, PRICE, 0x00, b"\x00", encrypt=True)
        await asyncio.sleep(1)

    await get_current_price()
    await get_current_price()  # from the memo
    # zigpy learns of a new address for the device (as after a rejoin elsewhere) and another
    # device record takes over the old one: the memo must not keep naming the first device.
    old = device.nwk
    assert old is not None
    app.get_device(ieee=device.ieee).nwk = t.NWK(old ^ 0x4000)
    other = app.add_device(t.EUI64.convert("00:0d:6f:00:0b:00:00:91"), t.NWK(old))
    await get_current_price()
    app.devices.pop(other.ieee)
    await get_current_price()
    assert [m.src_ieee for m in seen] == [device.ieee, device.ieee, other.ieee, None]

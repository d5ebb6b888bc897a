"""The ESI's meter serves its Historical Consumption set (SE 1.2 D.3.2.2.5) over the simulated
air: a display following "today" shows CurrentDayConsumptionDelivered in the meter's
HistoricalConsumptionFormatting after the readings; the day / week / month attributes read,
dissected by tshark, are named as Wireshark 4.0 names them, in their data types, with the
values the meter counted. Real components, virtual time."""

from __future__ import annotations

import asyncio

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.prepayment.test_prepayment_alarms_cost import tshark_names
from tests.roles.han_builder import EUIS, build, close
from zse.metering.core import Readings
from zse.metering.protocol import MeteringClientConfig
from zse.se.ids import METERING, consumption_attribute
from zse.se.ids import MeteringAttribute as A
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

#: Wh, shown as kWh with three digits right of the point for historical consumption.
METER = {"formatting": {A.DIVISOR: 1000, A.HISTORICAL_CONSUMPTION_FORMATTING: 0x03}}
READ_RSP = foundation.GeneralCommand.Read_Attributes_rsp
UINT24, UINT32 = 0x22, 0x23
#: Attribute -> (Wireshark 4.0's name, ZCL data type, its value after the readings).
SHOWN = {
    consumption_attribute("day", 0): ("Current Day Consumption Delivered", UINT24, 250),
    consumption_attribute("day", 1): ("Previous Day Consumption Delivered", UINT24, 0),
    consumption_attribute("day", 8): ("Previous Day 8 Consumption Delivered", UINT24, 0),
    consumption_attribute("week", 0): ("Current Week Consumption Delivered", UINT24, 250),
    consumption_attribute("week", 5): ("Previous Week 5 Consumption Delivered", UINT24, 0),
    consumption_attribute("month", 0): ("Current Month Consumption Delivered", UINT32, 250),
    consumption_attribute("month", 13): ("Previous Month 13 Consumption Delivered", UINT32, 0),
}


@pytest.mark.oracle
async def test_a_display_shows_today_and_tshark_names_the_set(tmp_path) -> None:
    han = await build(tmp_path, meter=METER)
    esi = han.esi
    assert esi.meter is not None
    await esi.provision(EUIS["ihd"])
    ihd = han.add("ihd", metering=True, metering_config=MeteringClientConfig(today=True))
    try:
        await ihd.start()
        await asyncio.sleep(30)
        await esi.settle()
        assert ihd.metering is not None
        await esi.meter.feed(Readings(summation_delivered=1_000))
        await asyncio.sleep(20)
        await esi.meter.feed(Readings(summation_delivered=1_250, instantaneous_demand=800))
        await asyncio.sleep(20)
        assert str(ihd.showing_today()) == "0.250 kWh"
        asked = list(SHOWN)
        reply = await ihd.metering.endpoint.request(
            0x0000, SE_ENDPOINT_ID, METERING, foundation.GeneralCommand.Read_Attributes,
            b"".join(int(a).to_bytes(2, "little") for a in asked), cluster_specific=False,
            encrypt=True,
        )  # fmt: skip
        extra = await ihd.metering.endpoint.request(
            0x0000, SE_ENDPOINT_ID, METERING, foundation.GeneralCommand.Read_Attributes,
            b"".join(int(a).to_bytes(2, "little") for a in (
                A.CURRENT_DAY_MAX_DEMAND, A.HISTORICAL_FREEZE_TIME,
                A.CURRENTDAY_CONSUMPTION_RECEIVED,
            )), cluster_specific=False, encrypt=True,
        )  # fmt: skip
    finally:
        await close(han)
    # int24 800 W, uint16 00:00; a delivered-only meter has no Received
    assert extra.payload == (
        bytes.fromhex("0d04 00 2a") + (800).to_bytes(3, "little")
        + bytes.fromhex("5c04 00 21 0000")
        + bytes.fromhex("0204 86")
    )  # fmt: skip
    frame = air_frame(METERING, bytes((0x18, 1, READ_RSP)) + reply.payload, 1)
    packets = dissect([frame], tmp_path)
    assert not any(packet.malformed for packet in packets)
    (packet,) = packets
    assert [int(v, 0) for v in packet.show("zbee_zcl_se.met.attr_id")] == asked
    assert tshark_names(tmp_path) == [name for name, _, _ in SHOWN.values()]
    assert [int(v, 0) for v in packet.show("zbee_zcl.attr.data.type")] == [
        type_id for _, type_id, _ in SHOWN.values()
    ]
    values = [
        int(value)
        for field, value, _ in packet.fields
        if field in {"zbee_zcl.attr.uint24", "zbee_zcl.attr.uint32"}
    ]
    assert values == [value for _, _, value in SHOWN.values()]

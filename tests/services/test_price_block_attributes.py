"""#14.5: the Price server's block pricing attributes (SE D.4.2.2) read over the air from a
zigpy ESI by a simulated in-home display, and the Read Attributes Response zse sends, as
Wireshark's Price dissector reads it (same ids, same values, nothing malformed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.price.test_price_block import calorific, factor, period
from tests.services.test_price_time_services import han
from zse.price import PriceAttributes
from zse.price.service import PriceAcknowledged, PriceValueReceived
from zse.se.frames import max_zcl_payload
from zse.se.ids import (
    PRICE,
    PriceAttribute,
    block_price_attribute,
    block_threshold_attribute,
    tier_label_attribute,
)
from zse.se.types import BlockPeriodControl, PriceAcknowledgementControl
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

START = 800_000_000
ATTRIBUTES = PriceAttributes(
    tier_labels={1: b"Off-peak", 2: b"Peak"},
    block_thresholds=(1000, 3000),
    threshold_multiplier=1,
    threshold_divisor=100,
    block_prices={(0, 1): 1500, (0, 2): 2000, (0, 3): 2500, (1, 1): 1200},
    standing_charge=2500,
)
#: id -> the value the display reads (and tshark's field for it).
EXPECTED: dict[int, tuple[Any, str]] = {
    tier_label_attribute(1): (b"Off-peak", "zbee_zcl.attr.ostr"),
    block_threshold_attribute(2): (3000, "zbee_zcl.attr.uint48"),
    PriceAttribute.BLOCK_THRESHOLD_COUNT: (2, "zbee_zcl.attr.uint8"),
    PriceAttribute.THRESHOLD_MULTIPLIER: (1, "zbee_zcl.attr.uint24"),
    PriceAttribute.THRESHOLD_DIVISOR: (100, "zbee_zcl.attr.uint24"),
    block_price_attribute(0, 3): (2500, "zbee_zcl.attr.uint32"),
    block_price_attribute(1, 1): (1200, "zbee_zcl.attr.uint32"),
    PriceAttribute.STANDING_CHARGE: (2500, "zbee_zcl.attr.uint32"),
    PriceAttribute.BLOCK_PERIOD_DURATION: (1440, "zbee_zcl.attr.uint24"),
    PriceAttribute.CONVERSION_FACTOR: (1_022_640, "zbee_zcl.attr.uint32"),
    PriceAttribute.CALORIFIC_VALUE: (392, "zbee_zcl.attr.uint32"),
    PriceAttribute.CALORIFIC_VALUE_UNIT: (1, ""),
}
UNSET = tier_label_attribute(3)


async def read_price_attributes() -> tuple[list[bytes], dict[int, Any], Any]:
    """Publish block pricing on a simulated ESI; the display reads the attributes, asking
    again for what did not fit one frame (ZCL 2.5.2: "only as many read attribute status
    records as will fit"); the answers' payloads, one per frame."""
    _, _, _, server, _, ihd, _, clock = await han(40)
    server.protocol.attributes = ATTRIBUTES
    server.serve_attributes()
    await server.publish(period(1, start=0))
    await server.publish(factor(2, start=0))
    await server.publish(calorific(3, start=0))
    asked = [*EXPECTED, PriceAttribute.START_OF_BLOCK_PERIOD, UNSET]
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    payloads: list[bytes] = []
    values: dict[int, Any] = {}
    while asked:
        reply = await ihd.endpoints[1].request(
            0x0000,
            SE_ENDPOINT_ID,
            PRICE,
            foundation.GeneralCommand.Read_Attributes,
            b"".join(attr.to_bytes(2, "little") for attr in asked),
            cluster_specific=False,
            encrypt=True,
        )
        assert len(reply.payload) <= max_zcl_payload(group=False)  # one frame's worth
        records, _ = schema.deserialize(reply.payload)
        assert records.status_records, "an answer without a record"
        values.update(
            (r.attrid, r.value.value if r.status == foundation.Status.SUCCESS else r.status)
            for r in records.status_records
        )
        payloads.append(reply.payload)
        asked = asked[len(records.status_records) :]
    return payloads, values, clock


async def test_a_display_reads_the_block_pricing_attributes() -> None:
    _, values, clock = await read_price_attributes()
    for attr, (value, _) in EXPECTED.items():
        assert values[attr] == value, hex(attr)
    assert values[PriceAttribute.START_OF_BLOCK_PERIOD] <= clock()  # published "now"
    assert values[UNSET] == foundation.Status.UNSUPPORTED_ATTRIBUTE


@pytest.mark.oracle
async def test_tshark_reads_the_price_attributes_zse_sends(tmp_path) -> None:
    payloads, _, _ = await read_price_attributes()
    # Read Attributes Response (0x01): global, server to client, no default response
    rsp = foundation.GeneralCommand.Read_Attributes_rsp
    frames = [air_frame(PRICE, bytes((0x18, 1 + n, rsp)) + p, 1) for n, p in enumerate(payloads)]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    ids = [int(v, 0) for packet in packets for v in packet.show("zbee_zcl_se.price.attr_id")]
    assert ids == [*EXPECTED, PriceAttribute.START_OF_BLOCK_PERIOD, UNSET]
    shown: dict[str, list[str]] = {}
    for name in {field for _, field in EXPECTED.values() if field}:
        shown[name] = [value for packet in packets for value in packet.show(name)]
    for value, field in EXPECTED.values():
        if not field:
            continue
        expected = value.hex(":") if isinstance(value, bytes) else str(value)
        assert expected in shown[field], (field, expected, shown[field])
    assert any(packet.show("zbee_zcl.attr.utc") for packet in packets)


async def test_a_display_keeps_and_acknowledges_a_published_block_period() -> None:
    _, _, _, server, _, ihd, client, _ = await han(41)
    values: list[PriceValueReceived] = []
    acks: list[PriceAcknowledged] = []
    client.on_value(values.append)
    server.on_event(acks.append)
    asked = period(
        7, start=0, block_period_control=BlockPeriodControl.Price_Acknowledgement_Required
    )
    assert ihd.nwk is not None
    await server.publish(asked, dst=ihd.nwk, dst_ep=1)
    await server.publish(factor(8, start=0), dst=ihd.nwk, dst_ep=1)
    await asyncio.sleep(2)
    assert [(v.value, v.new) for v in values] == [(asked, True), (factor(8, start=0), True)]
    assert client.block_periods.current(server.clock()) == asked
    assert client.conversion_factors.current(server.clock()) == factor(8, start=0)
    assert [(a.issuer_event_id, a.control) for a in acks] == [
        (7, PriceAcknowledgementControl.Block_Period)
    ]


async def test_a_display_asks_for_block_periods_conversion_factor_and_calorific_value() -> None:
    """Get Block Periods / Conversion Factor / Calorific Value over the air: the answers are
    kept as they arrive; nothing published yet is a NOT_FOUND, and nothing is kept."""
    _, _, _, server, _, _, client, clock = await han(42)
    await client.ask_calorific_value()
    await asyncio.sleep(2)
    assert len(client.calorific_values) == 0
    tomorrow = clock() + 86_400
    for value in (period(1, start=0), period(2, start=tomorrow), factor(3, start=0)):
        await server.publish(value)  # kept by the server, sent to no one
    await server.publish(calorific(4, start=0))
    await client.ask_block_periods()
    await client.ask_conversion_factor()
    await client.ask_calorific_value()
    await asyncio.sleep(2)
    now = clock()
    assert client.block_periods.current(now).issuer_event_id == 1
    assert client.block_periods.current(tomorrow) == period(2, start=tomorrow)
    assert client.conversion_factors.current(now).issuer_event_id == 3
    assert client.calorific_values.current(now).issuer_event_id == 4

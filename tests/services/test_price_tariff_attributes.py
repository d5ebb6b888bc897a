"""SE 1.2 Tariff Information and Billing Information attributes (D.4.2.2.7-8) served from the
tariff, CO2 value, billing period and consolidated bill in force: a simulated display reads
them from the ESI, and Wireshark reads the Read Attributes Responses zse sends (the same ids
and values, nothing malformed)."""

from __future__ import annotations

from typing import Any

import pytest
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.price.test_price_block import period
from tests.price.test_price_se12_values import bill, billing, co2
from tests.price.test_price_tariffs import information
from tests.services.test_price_time_services import han
from zse.price import TariffCancellation
from zse.price.protocol import PriceServerProtocol
from zse.se.frames import max_zcl_payload
from zse.se.ids import PRICE, PriceAttribute
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

A = PriceAttribute
START = 800_000_000
#: id -> (the value a display reads, tshark's field for it).
EXPECTED: dict[int, tuple[Any, str]] = {
    A.TARIFF_LABEL: (b"Economy 7", "zbee_zcl.attr.ostr"),
    A.NUMBER_OF_PRICE_TIERS_IN_USE: (2, "zbee_zcl.attr.uint8"),
    A.NUMBER_OF_BLOCK_THRESHOLDS_IN_USE: (2, "zbee_zcl.attr.uint8"),
    A.TIER_BLOCK_MODE: (1, ""),
    A.UNIT_OF_MEASURE: (0, ""),
    A.CURRENCY: (826, "zbee_zcl.attr.uint16"),
    A.PRICE_TRAILING_DIGIT: (0x40, ""),
    A.TARIFF_RESOLUTION_PERIOD: (2, ""),
    A.CO2: (185, "zbee_zcl.attr.uint32"),
    A.CO2_UNIT: (1, ""),
    A.CO2_TRAILING_DIGIT: (0x30, ""),
    A.CURRENT_BILLING_PERIOD_DURATION: (1, "zbee_zcl.attr.uint24"),
    A.LAST_BILLING_PERIOD_DURATION: (1, "zbee_zcl.attr.uint24"),
    A.LAST_BILLING_PERIOD_CONSOLIDATED_BILL: (8412, "zbee_zcl.attr.uint32"),
}


async def read_tariff_attributes() -> tuple[list[bytes], dict[int, Any], Any, Any]:
    """Publish a tariff and the SE 1.2 values on a simulated ESI; the display reads the
    attributes, asking again for what did not fit one frame; the answers' payloads."""
    _, _, _, server, _, ihd, _, clock = await han(42)
    await server.publish(period(1, start=0, tariff_resolution_period=2))
    await server.publish(co2(start=0))
    await server.publish(billing(start=0))
    await server.publish(bill(start=clock() - 86400 * 30))
    await server.publish_tariff(information())
    asked = [*EXPECTED, A.CURRENT_BILLING_PERIOD_START, A.LAST_BILLING_PERIOD_START]
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
        assert len(reply.payload) <= max_zcl_payload(group=False)
        records, _ = schema.deserialize(reply.payload)
        assert records.status_records
        values.update(
            (r.attrid, r.value.value if r.status == foundation.Status.SUCCESS else r.status)
            for r in records.status_records
        )
        payloads.append(reply.payload)
        asked = asked[len(records.status_records) :]
    return payloads, values, clock, server


async def test_a_display_reads_the_tariff_and_billing_attributes() -> None:
    _, values, clock, server = await read_tariff_attributes()
    for attr, (value, _) in EXPECTED.items():
        assert values[attr] == value, hex(attr)
    assert values[A.CURRENT_BILLING_PERIOD_START] <= clock()  # published "now": its time
    assert values[A.LAST_BILLING_PERIOD_START] < clock() - 86400 * 29  # the bill's period
    # cancelled, the tariff's attributes are no longer in force (the last value is kept, as
    # for the block period attributes: the server serves what it served)
    await server.cancel_tariff(TariffCancellation(provider_id=5, issuer_tariff_id=7))
    assert A.TARIFF_LABEL not in server.protocol.attribute_values(clock())


def test_the_sets_follow_what_is_in_force_only() -> None:
    """Nothing before a tariff starts; the tariff's values once it has; the received
    tariff (type 1) does not feed the delivered set."""
    server = PriceServerProtocol()
    server.publish_tariff(information(start_time=START + 60), START)
    server.publish_tariff(
        information(
            tariff_id=9, event_id=120, tariff_type_charging_scheme=0x01, tariff_label=b"Export"
        ),
        START,
    )
    assert A.TARIFF_LABEL not in server.attribute_values(START)
    assert server.attribute_values(START + 60)[A.TARIFF_LABEL] == (0x41, b"Economy 7")
    assert server.attribute_values(START + 60)[A.CURRENCY] == (0x21, 826)


@pytest.mark.oracle
async def test_tshark_reads_the_tariff_attributes_zse_sends(tmp_path) -> None:
    payloads, _, _, _ = await read_tariff_attributes()
    rsp = foundation.GeneralCommand.Read_Attributes_rsp
    frames = [air_frame(PRICE, bytes((0x18, 1 + n, rsp)) + p, 1) for n, p in enumerate(payloads)]
    packets = dissect(frames, tmp_path)
    assert not any(packet.malformed for packet in packets)
    ids = [int(v, 0) for packet in packets for v in packet.show("zbee_zcl_se.price.attr_id")]
    assert ids == [*EXPECTED, A.CURRENT_BILLING_PERIOD_START, A.LAST_BILLING_PERIOD_START]
    for value, field in EXPECTED.values():
        if not field:
            continue
        shown = [v for packet in packets for v in packet.show(field)]
        expected = value.hex(":") if isinstance(value, bytes) else str(value)
        assert expected in shown, (field, expected, shown)
    assert len([v for packet in packets for v in packet.show("zbee_zcl.attr.utc")]) == 2

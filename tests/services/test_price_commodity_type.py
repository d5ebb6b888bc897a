"""The Price server's CommodityType (SE D.4.2.2.4, id 0x0300), claimed served but read by no
test: a simulated in-home display reads it over the air from a zigpy ESI, as an enum8."""

from __future__ import annotations

from zigpy.zcl import foundation

from tests.services.test_price_time_services import han
from zse.price import PriceAttributes
from zse.se.ids import PRICE, PriceAttribute
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

ENUM8 = 0x30
GAS = 1  # the MeteringDeviceType values (SE D.3.2.2.4.7): 0 electric, 1 gas, 2 water...


async def test_a_display_reads_the_commodity_type() -> None:
    """The ESI's configured CommodityType comes back as an enum8 of that value."""
    _, _, _, server, _, ihd, _, _ = await han(40)
    server.protocol.attributes = PriceAttributes(commodity_type=GAS)
    server.serve_attributes()
    reply = await ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        PRICE,
        foundation.GeneralCommand.Read_Attributes,
        PriceAttribute.COMMODITY_TYPE.to_bytes(2, "little"),
        cluster_specific=False,
        encrypt=True,
    )
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    records, _ = schema.deserialize(reply.payload)
    [record] = records.status_records
    assert record.attrid == PriceAttribute.COMMODITY_TYPE == 0x0300
    assert record.status == foundation.Status.SUCCESS
    assert record.value.type == ENUM8
    assert record.value.value == GAS

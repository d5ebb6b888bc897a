"""A price asking for a Price Acknowledgement is acknowledged however it was addressed.

zse's client acknowledged a Publish Price whose Price Control bit 0 asks for it only when
it came unicast; sent to a group or broadcast (how an ESI publishes a new price to its HAN)
the ESI never heard who had it (audit drlc-price, finding 12). The SE text (D.4.2.4.1.1.19,
Price Control bit 0 "Price Acknowledgement required") sets no addressing condition, and the
Silicon Labs and NXP certified clients acknowledge whenever the bit is set, to the sender.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t

from tests.price.test_price_schedule import price
from zse.installcode import InstallCode
from zse.price.service import PriceAcknowledged, PriceClient, PriceServer
from zse.sim import Air, SimDevice
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

PRICE = 0x0700
T0 = 800_000_000
GROUP = 0x0E00
#: The SE 1.0 optional fields before Price Control, "not used", and Price Control bit 0.
ASKS_ACK = {
    "price_ratio": 0xFF,
    "generation_price": 0xFFFFFFFF,
    "generation_price_ratio": 0xFF,
    "alternate_cost_delivered": 0xFFFFFFFF,
    "alternate_cost_unit": 0xFF,
    "alternate_cost_trailing_digit": 0xFF,
    "number_of_block_thresholds": 0xFF,
    "price_control": 0x01,
}


async def price_han(
    seed: int, displays: int
) -> tuple[PriceServer, list[PriceAcknowledged], list[tuple[SimDevice, Any]]]:
    """An ESI's Price server and ``displays`` joined displays in group GROUP, each running a
    Price client; the acknowledgements the server records."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return T0 + int(loop.time())

    se = SeEndpoint(app, in_clusters=[PRICE])
    await se.start()
    server = PriceServer(se, clock=clock)
    server.start()
    acks: list[PriceAcknowledged] = []
    server.on_event(acks.append)
    joined = []
    for n in range(displays):
        code = InstallCode.generate(rng=air.rng)
        ihd = air.device(f"00:0d:6f:00:0d:00:01:{n:02x}", install_code=code, channel=15)
        endpoint = ihd.add_endpoint(1, device_type=0x0502, out_clusters=[PRICE])
        endpoint.add_group(GROUP)
        await app.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
        await ihd.join()
        joined.append((ihd, endpoint))
    await asyncio.sleep(30)
    for _, endpoint in joined:
        PriceClient(endpoint, server_ep=SE_ENDPOINT_ID, clock=clock).start()
    return server, acks, joined


@pytest.mark.parametrize(
    ("dst", "dst_mode"),
    [(GROUP, t.AddrMode.Group), (0xFFFD, t.AddrMode.Broadcast)],
    ids=["group", "broadcast"],
)
async def test_a_price_to_a_group_or_broadcast_asking_for_it_is_acknowledged(
    dst: int, dst_mode: t.AddrMode
) -> None:
    server, acks, [(ihd, _)] = await price_han(33, 1)
    await server.publish(price(8, **ASKS_ACK), dst=dst, dst_mode=dst_mode)
    await asyncio.sleep(2)
    assert [(a.issuer_event_id, a.source_ieee) for a in acks] == [(8, ihd.ieee)]

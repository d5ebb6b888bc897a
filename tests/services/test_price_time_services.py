"""Price and Time between a zigpy ESI and a simulated in-home display."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.price.test_price_protocol import publish_frame
from tests.price.test_price_schedule import price
from zse.installcode import InstallCode
from zse.price import PriceEvent
from zse.price.service import PriceAcknowledged, PriceClient, PriceReceived, PriceServer
from zse.sim import Air
from zse.time.service import TIME, TimeServer, TimeStatus, zigbee_time
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

PRICE = 0x0700
START = 800_000_000  # ZigBee time of the simulation's start


async def han(seed: int):
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[PRICE, TIME])
    await se.start()
    server = PriceServer(se, clock=clock)
    server.start()
    time_server = TimeServer(se, clock=clock)
    time_server.start()
    code = InstallCode.generate(rng=air.rng)
    ihd = air.device("00:0d:6f:00:0d:00:00:01", install_code=code, channel=15)
    endpoint = ihd.add_endpoint(1, device_type=0x0502, out_clusters=[PRICE, TIME])
    await app.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
    await ihd.join()
    await asyncio.sleep(30)
    client = PriceClient(endpoint, server_ep=SE_ENDPOINT_ID, clock=clock)
    client.start()
    return air, app, se, server, time_server, ihd, client, clock


async def test_get_current_price_before_and_after_publishing():
    _, _, _, server, _, _, client, clock = await han(30)
    assert await client.get_current_price() is None  # NOT_FOUND
    published_at = clock()
    await server.publish(price(7))  # start 0: now
    current = await client.get_current_price()
    assert current == price(7, start_time=published_at)  # answered with when it started
    assert client.current() == current


async def test_published_price_reaches_device_and_group_and_is_acknowledged():
    _, _, _, server, _, ihd, client, _ = await han(31)
    received: list[PriceReceived] = []
    acks: list[PriceAcknowledged] = []
    client.on_event(received.append)
    server.on_event(acks.append)
    ihd.endpoints[1].add_group(0x0E00)
    assert ihd.nwk is not None
    await server.publish(price(8, price_control=0x01, **_SE11), dst=ihd.nwk, dst_ep=1)
    await server.publish(price(9), dst=0x0E00, dst_mode=t.AddrMode.Group)
    await asyncio.sleep(2)
    assert [(r.price.issuer_event_id, r.new) for r in received] == [(8, True), (9, True)]
    assert client.current().issuer_event_id == 9  # newer id wins
    assert [(a.issuer_event_id, a.source_ieee) for a in acks] == [(8, ihd.ieee)]


async def test_time_server_answers_with_the_injected_clock_and_status():
    _, _, _, _, time_server, ihd, _, clock = await han(32)
    time_server.status = TimeStatus(master=False, synchronized=True, superseding=True)
    reply = await ihd.endpoints[1].request(
        0x0000,
        SE_ENDPOINT_ID,
        TIME,
        foundation.GeneralCommand.Read_Attributes,
        bytes.fromhex("00000100"),
        cluster_specific=False,
        encrypt=True,
    )
    schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema
    records, _ = schema.deserialize(reply.payload)
    values = {r.attrid: r.value.value for r in records.status_records}
    assert values[0x0000] == clock()
    assert values[0x0001] == 0b1010  # Synchronized and Superseding, not Master


def test_time_status_default_is_master_and_never_master_with_synchronized():
    """ZCL 3.12.2.2.2: if the Master bit is 1, the Synchronized bit is 0."""
    assert TimeStatus().bitmap() == 0b1001
    with pytest.raises(ValueError, match=r"ZCL 3\.12\.2\.2\.2"):
        TimeStatus(master=True, synchronized=True)


def test_zigbee_epoch():
    assert zigbee_time(946_684_800) == 0
    assert zigbee_time(946_684_800 + 86_400) == 86_400


_SE11 = {
    "price_ratio": 0xFF,
    "generation_price": 0xFFFFFFFF,
    "generation_price_ratio": 0xFF,
    "alternate_cost_delivered": 0xFFFFFFFF,
    "alternate_cost_unit": 1,
    "alternate_cost_trailing_digit": 0,
    "number_of_block_thresholds": 0,
}
assert PriceEvent  # re-exported type used by the helper


class _UnreachablePort:
    """An endpoint whose every send fails, as when the radio cannot deliver."""

    endpoint_id = 1

    def add_handler(self, cluster_id, handler):
        self.handler = handler

    async def send(self, *args, **kwargs):
        raise ConnectionError("no route")


async def test_client_hears_of_a_price_even_when_its_acknowledgement_cannot_be_sent():
    """#13.2: the shell emits the core's events before it sends the acknowledgement."""
    port = _UnreachablePort()
    client = PriceClient(port, server_ep=SE_ENDPOINT_ID, clock=lambda: START)
    received: list[PriceReceived] = []
    client.on_event(received.append)
    client.start()
    asked = price(8, price_control=0x01, **_SE11)
    with pytest.raises(ConnectionError):
        await port.handler(publish_frame(asked))
    assert [(r.price, r.new) for r in received] == [(asked, True)]
    assert client.current() == asked

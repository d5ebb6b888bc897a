"""#14.4: the Metering client of a simulated in-home display against a zigpy ESI's endpoint.

The ESI's endpoint serves the Metering attributes (``set_attribute``) and sends Report
Attributes (:func:`zse.zcl.reporting.report_payload`) itself: a real endpoint, no mock. Without
a Configure Reporting handler it refuses Configure Reporting (a Configure Reporting Response of
UNREPORTABLE_ATTRIBUTE records), so the client polls; a meter that accepts reporting is one general
handler that answers it. tshark reads the Read Attributes and Configure Reporting the client
sends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.clusters.se_frames import air_frame, dissect
from tests.metering.test_metering_client_protocol import FORMAT, TYPES
from zse.installcode import InstallCode
from zse.metering.protocol import MeteringClientConfig, MeteringClientProtocol, Polling
from zse.metering.service import MeteringClient, MeterNotFound, find_meter
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.sim import Air
from zse.zcl.delivery import Destination
from zse.zcl.frame import ZclMessage
from zse.zcl.reporting import report_payload
from zse.zcl.se_endpoint import SE_ENDPOINT_ID, SeEndpoint

START = 800_000_000
G = foundation.GeneralCommand
CONFIG = MeteringClientConfig(min_interval=5, max_interval=60, answer_timeout=20, poll_interval=30)


async def meter_and_display(seed: int, *, accepts_reporting: bool) -> tuple[Any, ...]:
    """A zigpy ESI whose endpoint is the meter, and a joined display with a Metering client."""
    air = Air(seed=seed)
    app = await air.coordinator(channel=15)
    loop = asyncio.get_running_loop()

    def clock() -> int:
        return START + int(loop.time())

    se = SeEndpoint(app, in_clusters=[METERING])
    await se.start()
    for attr, value in {
        **FORMAT,
        A.CURRENT_SUMM_DELIVERED: 1000,
        A.INSTANTANEOUS_DEMAND: 250,
    }.items():
        se.set_attribute(METERING, attr, value, TYPES[attr])
    configured: list[ZclMessage] = []
    if accepts_reporting:

        async def configure(msg: ZclMessage) -> None:
            configured.append(msg)
            await se.reply(msg, G.Configure_Reporting_rsp, b"\x00", cluster_specific=False)

        se.add_handler(METERING, configure, general=True)
    code = InstallCode.generate(rng=air.rng)
    ihd = air.device("00:0d:6f:00:0d:00:00:07", install_code=code, channel=15)
    endpoint = ihd.add_endpoint(1, device_type=0x0502, out_clusters=[METERING])
    await app.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
    await ihd.join()
    await asyncio.sleep(30)
    nwk, ep = await find_meter(ihd)
    client = MeteringClient(endpoint, meter_nwk=nwk, meter_ep=ep, config=CONFIG, clock=clock)
    events: list[Any] = []
    client.on_event(events.append)
    return se, ihd, client, events, configured, clock


async def report(se: SeEndpoint, ihd: Any, values: dict[int, int]) -> None:
    """The meter sends Report Attributes to the display (ZCL 2.5.11)."""
    payload = report_payload(values.items(), TYPES)
    await se.send(ihd.nwk, 1, METERING, G.Report_Attributes, payload, cluster_specific=False)


async def test_the_display_finds_the_meter_and_shows_its_reports() -> None:
    se, ihd, client, events, configured, _ = await meter_and_display(50, accepts_reporting=True)
    assert client.meter.endpoint == SE_ENDPOINT_ID
    client.start()
    await asyncio.sleep(2)
    assert len(configured) == 1
    assert [str(r) for r in client.current()] == ["1.000 kWh", "0.250 kW"]
    await report(se, ihd, {A.CURRENT_SUMM_DELIVERED: 1234, A.INSTANTANEOUS_DEMAND: -75})
    await asyncio.sleep(1)
    assert [str(r) for r in client.current()] == ["1.234 kWh", "-0.075 kW"]
    assert [e.reported for e in events] == [False, False, True, True]
    await asyncio.sleep(CONFIG.max_interval)  # reporting accepted: nothing polled
    assert len(events) == 4
    await asyncio.sleep(2 * CONFIG.max_interval)  # but no report for twice the maximum
    assert Polling(active=True, reason="no report within twice the maximum interval") in events
    await client.stop()


async def test_a_meter_refusing_reporting_is_polled_until_it_reports() -> None:
    se, ihd, client, events, _, _ = await meter_and_display(51, accepts_reporting=False)
    client.start()
    await asyncio.sleep(2)
    refused = Polling(active=True, reason="Configure Reporting refused: UNREPORTABLE_ATTRIBUTE")
    assert refused in events
    se.set_attribute(METERING, A.CURRENT_SUMM_DELIVERED, 1500, TYPES[A.CURRENT_SUMM_DELIVERED])
    await asyncio.sleep(CONFIG.poll_interval + 2)
    assert str(client.current()[0]) == "1.500 kWh"
    assert not events[-1].reported
    await report(se, ihd, {A.CURRENT_SUMM_DELIVERED: 1600})
    await asyncio.sleep(1)
    assert Polling(active=False, reason="the meter reports") in events
    count = len(events)
    await asyncio.sleep(CONFIG.max_interval)  # polling stopped
    assert len(events) == count
    assert str(client.current()[0]) == "1.600 kWh"
    await client.stop()


async def test_no_meter_on_the_coordinator_is_meter_not_found() -> None:
    air = Air(seed=52)
    app = await air.coordinator(channel=15)
    se = SeEndpoint(app, in_clusters=[0x0700])
    await se.start()
    code = InstallCode.generate(rng=air.rng)
    ihd = air.device("00:0d:6f:00:0d:00:00:08", install_code=code, channel=15)
    ihd.add_endpoint(1, device_type=0x0502, out_clusters=[METERING])
    await app.permit_with_link_key(ihd.ieee, t.KeyData(code.link_key), 60)
    await ihd.join()
    with pytest.raises(MeterNotFound, match="no Metering server on 0x0000"):
        await find_meter(ihd)


@pytest.mark.oracle
async def test_tshark_reads_the_requests_the_client_sends(tmp_path) -> None:
    """Read Attributes (the Formatting set and the values) and Configure Reporting (summation
    uint48 and demand int24, min / max interval, reportable change) as Wireshark reads them."""
    core = MeteringClientProtocol(Destination.device(0x0000, SE_ENDPOINT_ID), CONFIG)
    read, configure = core.start(START).sends
    frames = [
        air_frame(METERING, bytes((0x00, 1, send.command_id)) + send.payload, index)
        for index, send in enumerate((read, configure), start=1)
    ]
    read_packet, configure_packet = dissect(frames, tmp_path)
    assert not read_packet.malformed
    assert not configure_packet.malformed
    read_ids = [int(v, 0) for v in read_packet.show("zbee_zcl_se.met.attr_id")]
    assert read_ids == [*range(0x0300, 0x0307), 0x0000, 0x0400]
    assert [int(v, 0) for v in configure_packet.show("zbee_zcl_se.met.attr_id")] == [0, 0x400]
    assert configure_packet.show("zbee_zcl.attr.minint") == ["5", "5"]
    assert configure_packet.show("zbee_zcl.attr.maxint") == ["60", "60"]
    assert configure_packet.show("zbee_zcl.attr.data.type") == ["0x25", "0x2a"]


async def test_a_garbage_report_is_answered_malformed_and_the_client_goes_on() -> None:
    se, ihd, client, events, _, _ = await meter_and_display(53, accepts_reporting=True)
    client.start()
    await asyncio.sleep(2)
    shown = len(events)
    # attribute 0x0000 said to be uint48, with two bytes of value
    answer = await se.request(
        ihd.nwk, 1, METERING, G.Report_Attributes, bytes.fromhex("0000250102"),
        cluster_specific=False, encrypt=True,
    )  # fmt: skip
    assert answer.command_id == G.Default_Response
    assert answer.payload == bytes((G.Report_Attributes, foundation.Status.MALFORMED_COMMAND))
    assert len(events) == shown
    await report(se, ihd, {A.CURRENT_SUMM_DELIVERED: 2000})
    await asyncio.sleep(1)
    assert str(client.current()[0]) == "2.000 kWh"
    await client.stop()

"""#14.2: the ESI hosts the Metering server on its SE endpoint when asked (``meter=``), and only
then: without it the endpoint's clusters, and so the demo's frames, are as before."""

from __future__ import annotations

import asyncio

import zigpy.types as t
from zigpy.zcl import foundation

from tests.roles.han_builder import EUIS, build, close
from zse.metering.core import Readings
from zse.roles.esi import EnergyServiceInterface
from zse.se.ids import METERING
from zse.se.ids import MeteringAttribute as A
from zse.zcl.se_endpoint import SE_ENDPOINT_ID

G = foundation.GeneralCommand


async def read_metering(han, *attributes: int):
    """Read Attributes of Metering on the ESI from the in-home display's endpoint."""
    payload = b"".join(a.to_bytes(2, "little") for a in attributes)
    return await han.devices["ihd"].endpoint.request(
        0x0000,
        SE_ENDPOINT_ID,
        METERING,
        G.Read_Attributes,
        payload,
        cluster_specific=False,
        direction=foundation.Direction.Client_to_Server,
        encrypt=True,
    )


async def joined(tmp_path, **esi_options):
    han = await build(tmp_path, **esi_options)
    await han.esi.provision(EUIS["ihd"])
    await han.add("ihd").start()
    await asyncio.sleep(30)
    await han.esi.settle()
    return han


async def test_the_esi_serves_the_meter_when_asked(tmp_path):
    han = await joined(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        assert METERING in han.esi.endpoint.in_clusters
        assert METERING in EnergyServiceInterface.descriptor(meter=True).input_clusters
        assert han.esi.meter is not None
        await han.esi.meter.feed(Readings(summation_delivered=123456, instantaneous_demand=-7))
        reply = await read_metering(
            han, A.CURRENT_SUMM_DELIVERED, A.INSTANTANEOUS_DEMAND, A.DIVISOR
        )
        schema = foundation.GENERAL_COMMANDS[G.Read_Attributes_rsp].schema
        records, _ = schema.deserialize(reply.payload)
        assert [(r.attrid, r.value.value) for r in records.status_records] == [
            (A.CURRENT_SUMM_DELIVERED, 123456),
            (A.INSTANTANEOUS_DEMAND, -7),
            (A.DIVISOR, 1000),
        ]
        # persisted in the ESI's store, under the meter's namespace
        assert han.esi.meter.store is han.esi.store
    finally:
        await close(han)


async def test_without_meter_the_esi_has_no_metering(tmp_path):
    han = await joined(tmp_path)
    try:
        assert han.esi.meter is None
        assert METERING not in han.esi.endpoint.in_clusters
        assert METERING not in EnergyServiceInterface.descriptor().input_clusters
        reply = await read_metering(han, A.CURRENT_SUMM_DELIVERED)
        assert reply.command_id == G.Default_Response
        assert reply.payload[1] == foundation.Status.UNSUPPORTED_CLUSTER
    finally:
        await close(han)


async def test_an_esi_that_meters_and_mirrors_reports_as_the_meter(tmp_path):
    """With ``mirrors`` the ESI's endpoint has Metering's client side too (it answers Request
    Mirror); its meter's Report Attributes must still leave as a server's (ZCL 2.4.1.1.3,
    direction bit set), or a display's client drops them: the display follows the meter."""
    formatting = {A.DIVISOR: 1000, A.SUMMATION_FORMATTING: 0x03, A.DEMAND_FORMATTING: 0x03}
    han = await build(tmp_path, meter={"formatting": formatting}, mirrors=1)
    try:
        assert METERING in han.esi.endpoint.in_clusters
        assert METERING in han.esi.endpoint.out_clusters
        assert han.esi.meter is not None
        # held before the display asks for reports (one not held yet is refused, ZCL 2.5.7.3)
        await han.esi.meter.feed(Readings(summation_delivered=1000, instantaneous_demand=500))
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd", metering=True)
        await ihd.start()
        await asyncio.sleep(5)
        await han.esi.meter.feed(Readings(summation_delivered=2500, instantaneous_demand=750))
        await asyncio.sleep(15)  # the minimum reporting interval the display asks for
        assert ihd.metering.protocol.reporting is True
        summation, demand = ihd.metering.current()
        assert (str(summation), str(demand)) == ("2.500 kWh", "0.750 kW")
    finally:
        await close(han)


def reporting_addresses(meter) -> set[int]:
    return {destination.address for destination, _ in meter.core.reporting.configurations()}


async def stored_addresses(meter) -> set[int]:
    return {
        int(key.split("/")[1], 16)
        for key in await meter.store.load(meter.namespace)
        if key.startswith("report/")
    }


async def test_reporting_follows_a_device_that_rejoins_at_another_address(tmp_path):
    """Reporting records are kept by NWK address (ZCL 2.5.7): when a display rejoins with a new
    address (ZB 3.6.1.9) its records follow it; when another device takes a departed one's
    address they are dropped; de-provisioning drops them, so nothing is reported to a device
    that is no longer the one that asked."""
    han = await build(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        await han.esi.provision(EUIS["ihd"])
        ihd = han.add("ihd", metering=True)
        await ihd.start()
        await asyncio.sleep(5)
        meter = han.esi.meter
        assert meter is not None
        ihd_ieee = t.EUI64.convert(EUIS["ihd"])
        first = int(han.app.get_device(ieee=ihd_ieee).nwk)
        assert reporting_addresses(meter) == {first}
        count = len(meter.core.reporting.configurations())
        moved = first ^ 0x0101
        han.app.handle_join(t.NWK(moved), ihd_ieee, t.NWK(0x0000))  # rejoined, new address
        await han.esi.settle()
        assert reporting_addresses(meter) == {moved}
        assert len(meter.core.reporting.configurations()) == count
        assert await stored_addresses(meter) == {moved}
        # a restarted meter server loads the records at the new address
        await meter.stop()
        again = type(meter)(meter.endpoint, store=meter.store, clock=meter.clock)
        await again.start()
        try:
            assert reporting_addresses(again) == {moved}
        finally:
            await again.stop()
        await meter.start()
        # another device joins at the address the display left: not the one that asked
        stranger = t.EUI64.convert("00:0d:6f:00:0e:00:00:42")
        han.app.handle_join(t.NWK(moved), stranger, t.NWK(0x0000))
        await han.esi.settle()
        assert reporting_addresses(meter) == set()
        assert await stored_addresses(meter) == set()
    finally:
        await close(han)


async def test_a_de_provisioned_device_is_reported_to_no_more(tmp_path):
    han = await build(tmp_path, meter={"formatting": {A.DIVISOR: 1000}})
    try:
        await han.esi.provision(EUIS["ihd"])
        await han.add("ihd", metering=True).start()
        await asyncio.sleep(5)
        meter = han.esi.meter
        assert meter is not None
        assert reporting_addresses(meter)
        await han.esi.deprovision(EUIS["ihd"])
        await han.esi.settle()
        assert reporting_addresses(meter) == set()
        assert await stored_addresses(meter) == set()
    finally:
        await close(han)

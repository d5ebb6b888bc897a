"""#14.3: a battery-powered gas meter gets a mirror on the ESI, pushes its attributes there,
and a display reads the mirror over the air (simulator, virtual clock); a restarted ESI keeps
the mirror and its values."""

from __future__ import annotations

import asyncio
import random
import subprocess

import pytest
import zigpy.types as t
from zigpy.zcl import foundation

from tests.oracles import require, zigbee_key_options
from tests.roles.han_builder import CA, EUIS, Han, build, close
from zse.cbke import SUITE1
from zse.cbke.service import eui64_bytes
from zse.installcode import InstallCode
from zse.metering.core import Readings
from zse.metering.mirror import MirrorAdded, MirrorUpdated, mirror_report_payload
from zse.pcap import PcapWriter
from zse.roles.esi import EnergyServiceInterface
from zse.roles.gas_meter import (
    GAS_FORMATTING,
    GasMeter,
    MirrorAssigned,
    MirrorRefused,
    MirrorReleased,
)
from zse.se.ids import BASIC, METERING
from zse.se.ids import MeteringAttribute as A
from zse.store import Batch

GAS_EUI = "00:0d:6f:00:0e:00:00:04"
WATER_EUI = "00:0d:6f:00:0e:00:00:05"
S = foundation.Status
CLIENT_TO_SERVER = foundation.Direction.Client_to_Server
READ = foundation.GeneralCommand.Read_Attributes
NAMESPACE = "metering.mirror/9"


async def meter(han: Han, eui: str, **options) -> GasMeter:
    """Register, admit and start a gas meter on ``han``."""
    code = InstallCode.generate(rng=random.Random(eui))
    await han.registry.register(eui, str(code), label=eui[-2:])
    await han.esi.provision(eui)
    sim = han.air.device(eui, install_code=code, channel=15)
    gas = GasMeter(
        sim,
        credentials=CA.issue(eui64_bytes(sim.ieee), SUITE1, rng=random.Random(eui)),
        clock=han.clock,
        rng=random.Random(eui),
        **options,
    )
    han.devices[eui] = gas
    han.device_events[eui] = []
    gas.on_event(han.device_events[eui].append)
    await gas.start()
    return gas


async def display(han: Han):
    await han.esi.provision(EUIS["ihd"])
    ihd = han.add("ihd")
    await ihd.start()
    return ihd


async def read(device, endpoint: int, cluster: int, *attributes: int) -> dict[int, object]:
    """Read Attributes from ``endpoint`` on the ESI, as a display does: id -> value or status."""
    records = await read_records(device, endpoint, cluster, *attributes)
    return {
        int(r.attrid): (r.value.value if r.status == S.SUCCESS else S(r.status)) for r in records
    }


async def read_records(device, endpoint: int, cluster: int, *attributes: int) -> list:
    """The Read Attributes Response records ``endpoint`` on the ESI answers."""
    reply = await device.endpoint.request(
        0x0000,
        endpoint,
        cluster,
        READ,
        t.List[t.uint16_t](attributes).serialize(),
        cluster_specific=False,
        direction=CLIENT_TO_SERVER,
        encrypt=True,
    )
    assert reply.command_id == foundation.GeneralCommand.Read_Attributes_rsp
    records, rest = t.List[foundation.ReadAttributeRecord].deserialize(reply.payload)
    assert rest == b""
    return list(records)


async def test_a_gas_meter_is_mirrored_and_a_display_reads_the_mirror(tmp_path):
    han = await build(tmp_path, mirrors=2)
    try:
        ihd = await display(han)
        gas = await meter(han, GAS_EUI)
        mirror = gas.mirror
        assert mirror == 10  # the first endpoint after the ESI's (9)
        assert MirrorAssigned(device=gas.name, endpoint=10) in han.device_events[GAS_EUI]
        assert MirrorAdded(device=t.EUI64.convert(GAS_EUI), endpoint=10, new=True) in han.events
        # written before the answer went out: a kill -9 now keeps the mirror
        stored = await han.registry.store.load(NAMESPACE)
        assert stored["10"]["device"] == GAS_EUI
        # nothing pushed yet: the mirror has no readings, and is an undefined mirror meter
        assert await read(
            ihd, mirror, METERING, A.CURRENT_SUMM_DELIVERED, A.METERING_DEVICE_TYPE
        ) == {A.CURRENT_SUMM_DELIVERED: S.UNSUPPORTED_ATTRIBUTE, A.METERING_DEVICE_TYPE: 0xFE}
        assert await gas.wake_up(Readings(summation_delivered=12_345)) == S.SUCCESS
        values = await read(ihd, mirror, METERING, A.CURRENT_SUMM_DELIVERED, *GAS_FORMATTING)
        # the gas meter (MeteringDeviceType 1) is mirrored as 128 Mirrored Gas (D.3.2.2.4.7)
        assert GAS_FORMATTING[A.METERING_DEVICE_TYPE] == 1
        assert values == {
            A.CURRENT_SUMM_DELIVERED: 12_345,
            **GAS_FORMATTING,
            A.METERING_DEVICE_TYPE: 128,
        }
        # the Formatting bitmaps and MeteringDeviceType are map8 (D.3.2.2.4), pushed and
        # served as such
        formatting = (
            A.SUMMATION_FORMATTING,
            A.DEMAND_FORMATTING,
            A.HISTORICAL_CONSUMPTION_FORMATTING,
            A.METERING_DEVICE_TYPE,
        )
        records = await read_records(ihd, mirror, METERING, *formatting)
        assert [int(r.value.type) for r in records] == [0x18] * 4
        assert any(isinstance(e, MirrorUpdated) for e in han.events)
        await asyncio.sleep(3600)  # the meter sleeps an hour, then wakes up
        assert await gas.wake_up(Readings(summation_delivered=12_500, status=0x01)) == S.SUCCESS
        values = await read(ihd, mirror, METERING, A.CURRENT_SUMM_DELIVERED, A.STATUS)
        assert values == {A.CURRENT_SUMM_DELIVERED: 12_500, A.STATUS: 0x01}
        # the mirror's Basic cluster
        assert await read(ihd, mirror, BASIC, 0x0000, 0x0007) == {0x0000: 1, 0x0007: 3}
    finally:
        await close(han)


async def test_only_the_owner_pushes_and_the_pool_runs_out(tmp_path):
    han = await build(tmp_path, mirrors=1)
    try:
        ihd = await display(han)
        # mirror capacity, and Basic's mandatory ZCLVersion and PowerSource (mains)
        assert await read(ihd, 9, BASIC, 0x0011, 0x0000, 0x0007) == {
            0x0011: 1,
            0x0000: 1,
            0x0007: 1,
        }
        gas = await meter(han, GAS_EUI)
        assert await read(ihd, 9, BASIC, 0x0011) == {0x0011: 0}  # none left
        water = await meter(han, WATER_EUI, mirror=False)
        with pytest.raises(MirrorRefused, match="no mirror free"):
            await water.request_mirror()
        assert water.mirror is None
        # the display pretends to be a meter pushing to the gas meter's mirror: refused
        reply = await ihd.endpoint.request(
            0x0000,
            gas.mirror,
            METERING,
            foundation.GeneralCommand.Report_Attributes,
            mirror_report_payload({A.CURRENT_SUMM_DELIVERED: 999}),
            cluster_specific=False,
            direction=foundation.Direction.Server_to_Client,
            encrypt=True,
        )
        assert reply.command_id == foundation.GeneralCommand.Default_Response
        assert reply.payload == bytes((foundation.GeneralCommand.Report_Attributes, 0x7E))
        assert S(reply.payload[1]) == S.NOT_AUTHORIZED
        assert await gas.wake_up(Readings(summation_delivered=5)) == S.SUCCESS
        assert await read(ihd, gas.mirror, METERING, 0x0000) == {0x0000: 5}
        # decommissioned: the mirror is freed and the water meter gets it
        await gas.decommission()
        assert MirrorReleased(device=gas.name, endpoint=10) in han.device_events[GAS_EUI]
        assert await han.registry.store.load(NAMESPACE) == {}
        assert await read(ihd, 10, METERING, 0x0000) == {0x0000: S.UNSUPPORTED_ATTRIBUTE}
        assert await water.request_mirror() == 10
    finally:
        await close(han)


async def test_a_restarted_esi_keeps_the_mirror_and_its_values(tmp_path):
    han = await build(tmp_path, mirrors=2)
    try:
        ihd = await display(han)
        gas = await meter(han, GAS_EUI)
        assert await gas.wake_up(Readings(summation_delivered=777)) == S.SUCCESS
        await han.esi.stop()
        loop = asyncio.get_running_loop()
        han.esi = EnergyServiceInterface(
            han.app,
            credentials=CA.issue(eui64_bytes(han.app.state.node_info.ieee), SUITE1),
            registry=han.registry,
            clock=lambda: 800_000_000 + int(loop.time()),
            mirrors=2,
        )
        await han.esi.start()
        assert han.esi.mirrors is not None
        assert han.esi.mirrors.pool.owner(10) == t.EUI64.convert(GAS_EUI)
        assert await read(ihd, 10, METERING, 0x0000) == {0x0000: 777}
        # the meter asks again after its own restart: the same mirror
        gas.mirror = None
        assert await gas.request_mirror() == 10
        assert await read(ihd, 10, METERING, 0x0000) == {0x0000: 777}
    finally:
        await close(han)


async def test_a_damaged_mirror_record_is_quarantined_and_the_others_load(tmp_path):
    han = await build(tmp_path, mirrors=2)
    try:
        gas = await meter(han, GAS_EUI)
        assert await gas.wake_up(Readings(summation_delivered=31)) == S.SUCCESS
        await han.esi.stop()
        store = han.registry.store
        await store.commit(Batch().put(NAMESPACE, "11", {"device": "nonsense", "values": 3}))
        await store.commit(Batch().put(NAMESPACE, "12", {"device": WATER_EUI, "values": {}}))
        await han.esi.start()
        assert han.esi.mirrors is not None
        pool = han.esi.mirrors.pool
        assert (pool.owner(10), pool.owner(11)) == (t.EUI64.convert(GAS_EUI), None)
        assert pool.values(10)[0x0000][1] == 31
        assert sorted(q.key for q in await store.quarantined(NAMESPACE)) == ["11", "12"]
    finally:
        await close(han)


async def test_the_descriptors_for_a_radio_are_those_the_esi_registers(tmp_path):
    """EmberZNet takes endpoints only before its network is up: the list the radio is given
    (``EnergyServiceInterface.descriptors``) must be what the ESI then registers."""
    han = await build(tmp_path, mirrors=2)
    try:
        registered = han.app.radio.descriptors
        expected = EnergyServiceInterface.descriptors(9, mirrors=2)
        assert [int(d.endpoint) for d in expected] == [9, 10, 11]
        assert [registered[int(d.endpoint)].serialize() for d in expected] == [
            d.serialize() for d in expected
        ]
        assert list(expected[1].input_clusters) == [BASIC, METERING]
        assert EnergyServiceInterface.descriptors(9) == [EnergyServiceInterface.descriptor(9)]
    finally:
        await close(han)


async def test_commands_to_a_meter_are_left_to_the_esis_meter(tmp_path):
    """Get Profile (client to server) is not mirroring's: UNSUP_CLUSTER_COMMAND while the ESI
    has no Metering server; once it has one, mirroring leaves the frame to that server."""
    han = await build(tmp_path, mirrors=1)
    try:
        ihd = await display(han)
        get_profile = (0x0000, 9, METERING, 0x00, b"\x00\x00\x00\x00\x00\x01")

        async def ask():
            return await ihd.endpoint.request(
                *get_profile, direction=CLIENT_TO_SERVER, encrypt=True, timeout=5
            )

        reply = await ask()
        assert reply.command_id == foundation.GeneralCommand.Default_Response
        assert S(reply.payload[1]) == S.UNSUP_CLUSTER_COMMAND
        han.esi.endpoint.descriptor.input_clusters.append(METERING)  # a meter server's place
        with pytest.raises(TimeoutError):
            await ask()
    finally:
        await close(han)


async def test_without_mirrors_the_esi_has_no_mirror_endpoint(tmp_path):
    han = await build(tmp_path)
    try:
        assert han.esi.mirrors is None
        assert METERING not in han.esi.endpoint.out_clusters
        assert BASIC not in han.esi.endpoint.in_clusters
        ihd = await display(han)
        reply = await ihd.endpoint.request(
            0x0000, 9, BASIC, READ, b"\x11\x00", cluster_specific=False,
            direction=CLIENT_TO_SERVER, encrypt=True,
        )  # fmt: skip
        assert reply.command_id == foundation.GeneralCommand.Default_Response
        assert S(reply.payload[1]) == S.UNSUPPORTED_CLUSTER  # no Basic on the ESI
    finally:
        await close(han)


FIELDS = [
    "zbee_aps.src",
    "zbee_aps.dst",
    "zbee_zcl.cmd.id",
    "zbee_zcl_se.met.cmd.srv_tx.id",
    "zbee_zcl_se.met.cmd.srv_rx.id",
    "zbee_zcl_se.met.request_mirror_rsp.endpoint_id",
    "zbee_zcl_se.met.mirror_removed.removed_endpoint_id",
    "zbee_zcl_se.met.attr_id",
]


@pytest.mark.oracle
async def test_the_mirroring_frames_on_the_air_as_tshark_reads_them(tmp_path):
    """Request Mirror / Response, Report Attributes to the mirror endpoint and the display's
    read of it, Remove Mirror / Mirror Removed: captured on the simulator, dissected by tshark
    with no malformed packet."""
    capture = tmp_path / "mirror.pcap"
    han = await build(tmp_path, mirrors=1)
    try:
        han.air.capture = PcapWriter(capture)
        ihd = await display(han)
        gas = await meter(han, GAS_EUI)
        await gas.wake_up(Readings(summation_delivered=4_321))
        assert await read(ihd, 10, METERING, A.CURRENT_SUMM_DELIVERED) == {0x0000: 4_321}
        await gas.remove_mirror()
        await asyncio.sleep(1)
    finally:
        await close(han)  # the air closes the capture
    tshark = require("tshark")

    keys = zigbee_key_options(entry.line() for entry in han.air.keys)  # NWK/APS security (#15.1)

    def run(*args: str) -> str:
        return subprocess.run(
            [tshark, "-r", str(capture), *keys, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert run("-Y", "zbee_zcl and (_ws.malformed or _ws.expert)") == ""
    rows = [
        line.split("\t")
        for line in run(
            "-Y",
            "zbee_aps.cluster == 0x0702 and zbee_zcl",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            *[x for f in FIELDS for x in ("-e", f)],
        ).splitlines()
    ]
    summ_and_formatting = ",".join(f"0x{a:04x}" for a in (0x0000, 0x0200, *range(0x0300, 0x0307)))
    assert rows == [
        ["1", "9", "", "0x01", "", "", "", ""],  # Request Mirror (meter to the ESI's endpoint)
        ["9", "1", "", "", "0x01", "10", "", ""],  # Request Mirror Response: endpoint 10
        ["1", "10", "0x0a", "", "", "", "", summ_and_formatting],  # Report Attributes
        ["10", "1", "0x0b", "", "", "", "", ""],  # Default Response (SUCCESS)
        ["1", "10", "0x00", "", "", "", "", "0x0000"],  # the display reads the mirror
        ["10", "1", "0x01", "", "", "", "", "0x0000"],  # Read Attributes Response
        ["1", "9", "", "0x02", "", "", "", ""],  # Remove Mirror
        ["9", "1", "", "", "0x02", "", "10", ""],  # Mirror Removed: endpoint 10
    ]

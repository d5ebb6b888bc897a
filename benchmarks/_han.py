"""Shared by the simulator benchmarks: simulated HAN devices joined to a zigpy ESI.

Each device joins as a real one does (Beacon Request, beacon, association, Transport Key
under its install-code key, Device_annce), one after the other, and zigpy then interviews
it; the caller says which endpoint each device gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import zigpy.types as t

from zse.installcode import InstallCode
from zse.se.ids import METERING
from zse.sim import SE_PROFILE, Air, SimControllerApplication, SimDevice

#: How long zigpy needs to interview the devices after the last join (virtual seconds).
INTERVIEW_TIME = 60


async def join_devices(
    air: Air,
    esi: SimControllerApplication,
    count: int,
    configure: Callable[[SimDevice, int], None],
    *,
    channel: int = 15,
    first: int = 1,
    interview: bool = True,
) -> list[SimDevice]:
    """Create ``count`` devices (EUI-64 = ``first`` + their index; ``first`` is 1 by default,
    the all-zero EUI-64 being no device address), let ``configure(device, index)`` add their
    endpoints, admit each with its install code, and (``interview``) wait for zigpy's
    interviews."""
    devices = []
    for i in range(count):
        code = InstallCode.generate(rng=air.rng)
        eui = t.EUI64((first + i).to_bytes(8, "little"))
        device = air.device(eui, install_code=code, channel=channel)
        configure(device, i)
        await esi.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    if interview:
        await asyncio.sleep(INTERVIEW_TIME)
    return devices


def metering_endpoint(device: SimDevice, i: int) -> None:
    """A metering device's endpoint 1: Metering server, CurrentSummationDelivered 1000 + i."""
    ep = device.add_endpoint(1, device_type=0x0501, in_clusters=[METERING], out_clusters=[])
    ep.set_attribute(METERING, 0x0000, t.uint48_t(1000 + i), type_id=0x25)


async def read_summations(
    esi: SimControllerApplication, devices: list[SimDevice]
) -> list[t.ZigbeePacket]:
    """The ESI sends Read Attributes (CurrentSummationDelivered) to every device; the list
    returned fills with the Read Attributes Responses as they arrive."""
    responses: list[t.ZigbeePacket] = []
    received = esi.packet_received

    def count(packet: t.ZigbeePacket) -> None:
        if packet.cluster_id == METERING and packet.data.serialize()[2:3] == b"\x01":
            responses.append(packet)
        received(packet)

    esi.packet_received = count  # type: ignore[method-assign]
    for dev in devices:
        tsn = esi.get_sequence()
        await esi.send_packet(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
                src_ep=1,
                dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=dev.nwk),
                dst_ep=1,
                tsn=tsn,
                profile_id=SE_PROFILE,
                cluster_id=METERING,
                data=t.SerializableBytes(bytes((0x00, tsn, 0x00, 0x00, 0x00))),
            )
        )
    return responses

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
from zse.sim import Air, SimControllerApplication, SimDevice

#: How long zigpy needs to interview the devices after the last join (virtual seconds).
INTERVIEW_TIME = 60


async def join_devices(
    air: Air,
    esi: SimControllerApplication,
    count: int,
    configure: Callable[[SimDevice, int], None],
    *,
    channel: int = 15,
) -> list[SimDevice]:
    """Create ``count`` devices (EUI-64 = their index), let ``configure(device, index)`` add
    their endpoints, admit each with its install code, and wait for zigpy's interviews."""
    devices = []
    for i in range(count):
        code = InstallCode.generate(rng=air.rng)
        device = air.device(t.EUI64(i.to_bytes(8, "little")), install_code=code, channel=channel)
        configure(device, i)
        await esi.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    await asyncio.sleep(INTERVIEW_TIME)
    return devices

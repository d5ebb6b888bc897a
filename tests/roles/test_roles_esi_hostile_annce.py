"""A ZDO Device_annce naming an EUI-64 no device has (all zeros, all ones), as a spoofing
joined device broadcasts it: ignored at DEBUG, never an ERROR ("following the network failed")
per frame, no DeviceJoined event, and the devices of the HAN unaffected."""

from __future__ import annotations

import asyncio
import logging

import zigpy.types as t

from tests.roles.han_builder import EUIS, build, close
from zse.roles.esi import DeviceJoined, DeviceLeft


def annce(ieee: bytes, nwk: int = 0x1234) -> bytes:
    """Device_annce (ZDO 0x0013): sequence, NWK address, IEEE address, capability."""
    return bytes([0x42]) + nwk.to_bytes(2, "little") + ieee + bytes([0x80])


async def test_a_device_annce_of_no_device_address_is_ignored_without_an_error(tmp_path, caplog):
    han = await build(tmp_path)
    await han.esi.provision(EUIS["ihd"])
    await han.add("ihd").start()
    await asyncio.sleep(30)  # virtual time: zigpy interviews the device
    sim = next(n for n in han.air.nodes if n.ieee == t.EUI64.convert(EUIS["ihd"]))
    before = list(han.events)
    caplog.set_level(logging.DEBUG, logger="zse")
    for ieee in (bytes(8), b"\xff" * 8, bytes(8)):
        await sim.send_aps(
            dst_mode=t.AddrMode.Broadcast,
            dst_addr=0xFFFD,
            dst_ep=0,
            src_ep=0,
            cluster_id=0x0013,
            profile_id=0,
            payload=annce(ieee),
        )
        await asyncio.sleep(5)
    await han.esi.settle()
    errors = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("zse")
    ]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any("following the network failed" in r.getMessage() for r in caplog.records)
    new = han.events[len(before) :]
    assert not [e for e in new if isinstance(e, DeviceJoined | DeviceLeft)], new
    ihd = han.registry.get(EUIS["ihd"])
    assert ihd.joined
    await close(han)

"""What a node does with a Device_annce it hears (ZB 2.4.3.1.11.2, effect on receipt): it
brings up to date the references it already holds to the announced EUI-64 or address, and adds
none for a device it never dealt with. Every node hears every join's announce, so a node that
added them all held the whole network twice over (address map both ways): memory grew as the
square of the network (docs/performance.md, DRLC at scale)."""

from __future__ import annotations

import zigpy.types as t
import zigpy.zdo.types as zdo_t

from tests.sim.test_sim_address_takeover import zdo_broadcast
from tests.sim.test_sim_faults_capture import han


async def test_a_device_does_not_map_the_devices_it_only_heard_announce():
    _, esi, (a, b, c) = await han(81, n=3)
    for device in (a, b, c):
        held = set(device.address_map.values())
        assert held <= {device.ieee, esi.radio.ieee}, (device, held)
        assert esi.radio.ieee in held  # its Trust Center, from the join
    assert {a.ieee, b.ieee, c.ieee} <= set(esi.radio.address_map.values())


async def test_a_held_reference_follows_the_announce_and_a_contradicted_one_is_forgotten():
    _, _, (a, b, c) = await han(82, n=3)
    assert a.nwk is not None
    assert b.nwk is not None
    a.set_link_key(b.ieee, bytes(range(16)))  # a reference to b (apsDeviceKeyPairSet)
    await b.announce()
    assert a.address_map.get(b.nwk) == b.ieee
    assert b.ieee not in c.address_map.values()  # c holds nothing of b: nothing learnt
    # an announce of b at another address moves a's entry for b (the old address forgotten)
    moved = (b.nwk + 0x100) & 0xFFF0
    await zdo_broadcast(c, zdo_t.ZDOCmd.Device_annce, [t.NWK(moved), b.ieee, t.uint8_t(0x8E)])
    assert a.address_map.get(moved) == b.ieee
    assert b.nwk not in a.address_map
    # another device announced at the address a holds for b: a no longer pairs b with it
    await zdo_broadcast(c, zdo_t.ZDOCmd.Device_annce, [t.NWK(moved), c.ieee, t.uint8_t(0x8E)])
    assert moved not in a.address_map
    assert b.ieee not in a.address_map.values()
    assert c.ieee not in a.address_map.values()

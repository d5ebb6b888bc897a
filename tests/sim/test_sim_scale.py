"""The simulator's cost per device does not grow with the number of devices (issue #19).

Pinned by structure, through the air's counters, never by timing: a broadcast is parsed and
decrypted once however many nodes hear it, and a Beacon Request and its beacon are handed
only to the nodes that use them (the coordinator; nobody is scanning), whatever the number of
devices on the channel. The air stays faithful: every joined node still hears the broadcast.
"""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t

from zse.installcode import InstallCode
from zse.sim import Air, AirStats, JoinRefused, SimControllerApplication, SimDevice
from zse.sim import _frames as f


async def _han(count: int) -> tuple[Air, SimControllerApplication, list[SimDevice]]:
    air = Air(seed=7, epoch=0.0)
    esi = await air.coordinator(channel=15)
    devices = []
    for i in range(count):
        code = InstallCode.generate(rng=air.rng)
        device = air.device(t.EUI64((i + 1).to_bytes(8, "little")), install_code=code, channel=15)
        device.add_endpoint(1, device_type=0x0501, in_clusters=[0x0702])
        await esi.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    await asyncio.sleep(30)  # zigpy's interviews are over: the air is quiet
    return air, esi, devices


def _delta(after: AirStats, before: AirStats) -> dict[str, int]:
    return {
        name: getattr(after, name) - getattr(before, name)
        for name in ("transmitted", "delivered", "nwk_decodes", "nwk_decrypts")
    }


@pytest.mark.parametrize("count", [4, 24])
async def test_a_broadcast_is_decrypted_once_however_many_nodes_hear_it(count: int) -> None:
    air, esi, devices = await _han(count)
    before = AirStats(**vars(air.stats))
    await devices[0].announce()  # a Device_annce: NWK broadcast, secured with the network key
    await asyncio.sleep(1)
    delta = _delta(air.stats, before)
    assert delta["transmitted"] == 1
    assert delta["delivered"] == count  # every other node hears it: the ESI and count - 1
    assert delta["nwk_decodes"] == 1
    assert delta["nwk_decrypts"] == 1
    # and each node did take it in: its frame counter from the announcer moved on
    source = int.from_bytes(bytes(devices[0].ieee.serialize()), "little")
    expected = devices[0].nwk_frame_counter
    for node in [esi.radio, *devices[1:]]:
        assert node._nwk_in[node.network_key_seq].expected(source) == expected


@pytest.mark.parametrize("count", [4, 24])
async def test_a_beacon_request_and_its_beacon_reach_only_the_nodes_that_use_them(
    count: int,
) -> None:
    air, _, _ = await _han(count)
    stranger = air.device("00:0d:6f:00:0b:00:00:01", channel=15)
    stranger.listen(15)
    before = AirStats(**vars(air.stats))
    request = f.encode_mac(
        f.MacHeader(f.MAC_COMMAND, 1, 0xFFFF, 0xFFFF, None, None),
        bytes((f.MAC_CMD_BEACON_REQUEST,)),
    )
    assert await air.transmit(air.frame(stranger, request))
    await asyncio.sleep(1)
    delta = _delta(air.stats, before)
    assert delta["transmitted"] == 2  # the request and the coordinator's beacon
    assert delta["delivered"] == 1  # the request to the coordinator; the beacon to nobody
    assert delta["nwk_decodes"] == 0


async def test_a_scanning_device_still_hears_the_beacon() -> None:
    air, _, _ = await _han(3)
    newcomer = air.device("00:0d:6f:00:0b:00:00:02", channel=15)
    await asyncio.sleep(60)  # the permit to join is over
    before = AirStats(**vars(air.stats))
    with pytest.raises(JoinRefused, match="no network permitting joins"):
        await newcomer.join()  # scans (it hears the beacon) but joining is closed: refused
    delta = _delta(air.stats, before)
    assert delta["transmitted"] == 2
    assert delta["delivered"] == 2  # the coordinator the request, the newcomer the beacon

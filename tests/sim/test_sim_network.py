"""The simulated HAN end to end: Trust Center joins, zigpy interviews, delivery, APS keys."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from zse.installcode import InstallCode
from zse.sim import (
    SE_PROFILE,
    Air,
    DeliveryError,
    JoinRefused,
    SimControllerApplication,
    SimDevice,
    ZclMessage,
)
from zse.sim._node import APS_MAX_FRAME_RETRIES

KEY_EST = 0x0800
PRICE = 0x0700
MESSAGING = 0x0703
IHD_EUI = "00:0d:6f:00:0a:00:00:01"


class Recorder:
    """Wraps the application's packet_received to see exactly what zigpy is handed."""

    def __init__(self, app: SimControllerApplication) -> None:
        self.packets: list[t.ZigbeePacket] = []
        original = app.packet_received

        def record(packet: t.ZigbeePacket) -> None:
            self.packets.append(packet)
            original(packet)

        app.packet_received = record  # type: ignore[method-assign]

    def zcl(self, cluster: int) -> list[t.ZigbeePacket]:
        return [p for p in self.packets if p.cluster_id == cluster and p.profile_id != 0]


def ihd(air: Air, eui: str = IHD_EUI, *, code: InstallCode | None = None) -> SimDevice:
    device = air.device(eui, install_code=code or InstallCode.generate(rng=air.rng), channel=15)
    device.add_endpoint(
        1, device_type=0x0502, in_clusters=[KEY_EST], out_clusters=[PRICE, MESSAGING]
    )
    return device


async def admitted(air: Air, esi: SimControllerApplication, device: SimDevice) -> SimDevice:
    assert device.preconfigured_key is not None
    await esi.permit_with_link_key(device.ieee, t.KeyData(device.preconfigured_key), 60)
    await device.join()
    await asyncio.sleep(30)  # let zigpy interview it
    return device


async def test_join_refused_without_a_key() -> None:
    air = Air(seed=1)
    esi = await air.coordinator(channel=15)
    device = ihd(air)
    await esi.permit(60)  # joining open, but no link key registered for the device
    with pytest.raises(JoinRefused, match="PAN access denied"):
        await device.join()
    assert not device.joined
    assert device.ieee not in esi.devices
    assert esi.get_link_key(device.ieee) is None


async def test_join_refused_with_a_wrong_key() -> None:
    air = Air(seed=2)
    esi = await air.coordinator(channel=15)
    device = ihd(air)
    other = InstallCode.generate(rng=air.rng)
    await esi.permit_with_link_key(device.ieee, t.KeyData(other.link_key), 60)
    with pytest.raises(JoinRefused, match="Transport Key"):
        await device.join()
    assert device.stats.aps_decrypt_failures == 1
    assert device.network_key is None
    await asyncio.sleep(30)
    assert device.ieee not in esi.devices


async def test_join_refused_after_the_permit_window() -> None:
    air = Air(seed=3)
    esi = await air.coordinator(channel=15)
    device = ihd(air)
    assert device.preconfigured_key is not None
    await esi.permit_with_link_key(device.ieee, t.KeyData(device.preconfigured_key), 10)
    await asyncio.sleep(11)
    with pytest.raises(JoinRefused, match="no network permitting joins"):
        await device.join()
    await esi.permit(60)  # joining open again, but the device's key expired with its window
    with pytest.raises(JoinRefused, match="PAN access denied"):
        await device.join()


async def test_join_accepted_with_the_install_code_key_and_interviewed() -> None:
    air = Air(seed=4)
    esi = await air.coordinator(channel=15)
    code = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")
    device = ihd(air, code=code)
    ha = device.add_endpoint(2, profile_id=0x0104, device_type=0x0000, in_clusters=[0x0000])
    ha.set_attribute(0x0000, 0x0004, t.CharacterString("zse-sim"))
    ha.set_attribute(0x0000, 0x0005, t.CharacterString("In-Home Display"))
    await admitted(air, esi, device)

    assert device.joined
    assert device.pan_id == esi.state.network_info.pan_id
    assert device.network_key == bytes(esi.state.network_info.network_key.key)
    assert esi.get_link_key(device.ieee) == code.link_key
    assert device.link_keys[esi.state.node_info.ieee] == code.link_key

    zdev = esi.get_device(ieee=device.ieee)
    assert zdev.nwk == device.nwk
    assert zdev.is_initialized
    assert zdev.node_desc is not None
    assert zdev.node_desc.is_router
    se = zdev.endpoints[1]
    assert se.profile_id == SE_PROFILE
    assert se.device_type == 0x0502
    assert sorted(se.in_clusters) == [KEY_EST]
    assert sorted(se.out_clusters) == [PRICE, MESSAGING]
    # The Home Automation endpoint's Basic cluster answered zigpy's Read Attributes (zigpy
    # 2.4 would drop the same answer on the SE profile: that is issue 5's to fix).
    assert zdev.model == "In-Home Display"
    assert zdev.manufacturer == "zse-sim"

    await esi.load_network_info(load_devices=True)
    keys = {k.partner_ieee: bytes(k.key) for k in esi.state.network_info.key_table}
    assert keys[device.ieee] == code.link_key
    assert esi.state.network_info.nwk_addresses[device.ieee] == device.nwk


async def test_device_leave_reaches_zigpy_and_force_remove() -> None:
    air = Air(seed=5)
    esi = await air.coordinator(channel=15)
    a, b = (
        await admitted(air, esi, ihd(air)),
        await admitted(air, esi, ihd(air, "00:0d:6f:00:0a:00:00:02")),
    )
    left: list[t.EUI64] = []

    class Listener:
        def device_left(self, dev: Any) -> None:
            left.append(dev.ieee)

    esi.add_listener(Listener())
    await a.leave()
    await asyncio.sleep(1)
    assert left == [a.ieee]
    assert esi.get_link_key(a.ieee) is None
    await esi.force_remove(esi.get_device(ieee=b.ieee))
    await asyncio.sleep(1)
    assert not b.joined


async def zcl_frame(
    cluster_specific: bool, tsn: int, command: int, payload: bytes, *, server: bool
) -> bytes:
    make = foundation.ZCLHeader.cluster if cluster_specific else foundation.ZCLHeader.general
    direction = (
        foundation.Direction.Server_to_Client if server else foundation.Direction.Client_to_Server
    )
    return bytes(make(tsn, command, direction=direction).serialize()) + payload


async def test_unicast_both_ways_and_aps_encryption_flag() -> None:
    air = Air(seed=6)
    esi = await air.coordinator(channel=15)
    device = await admitted(air, esi, ihd(air))
    rec = Recorder(esi)
    ep = device.endpoints[1]
    received: list[ZclMessage] = []
    ep.add_handler(PRICE, received.append)

    data = await zcl_frame(True, 0x21, 0x00, b"\x01", server=True)
    for encrypt in (False, True):
        await esi.send_packet(
            t.ZigbeePacket(
                src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
                src_ep=1,
                dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
                dst_ep=1,
                profile_id=SE_PROFILE,
                cluster_id=PRICE,
                data=t.SerializableBytes(data),
                tx_options=t.TransmitOptions.APS_Encryption if encrypt else t.TransmitOptions.NONE,
            )
        )
        await asyncio.sleep(0.1)
    assert [(m.tsn, m.command_id, m.aps_encrypted) for m in received] == [
        (0x21, 0, False),
        (0x21, 0, True),
    ]
    assert received[0].header.direction == foundation.Direction.Server_to_Client

    await ep.send(0x0000, 1, PRICE, 0x00, b"", encrypt=False)  # Get Current Price
    await ep.send(0x0000, 1, PRICE, 0x00, b"", encrypt=True)
    await asyncio.sleep(0.1)
    got = rec.zcl(PRICE)
    assert [bool(p.tx_options & t.TransmitOptions.APS_Encryption) for p in got] == [False, True]
    assert all(p.src.address == device.nwk and p.src_ep == 1 and p.dst_ep == 1 for p in got)


async def test_aps_frames_decrypt_only_with_the_shared_key() -> None:
    air = Air(seed=7)
    esi = await air.coordinator(channel=15)
    device = await admitted(air, esi, ihd(air))
    rec = Recorder(esi)
    ep = device.endpoints[1]
    new_key = bytes(range(16))  # e.g. the CBKE-derived KeyData
    esi.set_link_key(device.ieee, new_key)  # only one side has it so far
    # the ESI cannot read it, so it does not acknowledge it: every resend fails alike
    with pytest.raises(DeliveryError, match="no APS acknowledgement from 0x0000"):
        await ep.send(0x0000, 1, PRICE, 0x00, encrypt=True)
    await asyncio.sleep(0.1)
    assert rec.zcl(PRICE) == []
    assert esi.radio.stats.aps_decrypt_failures == 1 + APS_MAX_FRAME_RETRIES
    device.set_link_key(esi.state.node_info.ieee, new_key)
    await ep.send(0x0000, 1, PRICE, 0x00, encrypt=True)
    await asyncio.sleep(0.1)
    assert len(rec.zcl(PRICE)) == 1
    # A third node with its own key cannot read frames secured for the pair.
    assert esi.get_link_key(device.ieee) == new_key


async def test_broadcast_and_group_delivery() -> None:
    air = Air(seed=8)
    esi = await air.coordinator(channel=15)
    devices = [
        await admitted(air, esi, ihd(air, f"00:0d:6f:00:0a:00:00:0{i}")) for i in range(1, 4)
    ]
    inbox: dict[t.EUI64, list[ZclMessage]] = {d.ieee: [] for d in devices}
    for d in devices:
        d.endpoints[1].add_handler(MESSAGING, inbox[d.ieee].append)
    devices[0].endpoints[1].add_group(0x1234)
    devices[2].endpoints[1].add_group(0x1234)

    data = await zcl_frame(True, 5, 0x00, b"", server=True)
    await esi.broadcast(SE_PROFILE, MESSAGING, 1, 0xFF, 0, 0, 5, data)
    await asyncio.sleep(0.1)
    assert all(len(box) == 1 and box[0].broadcast for box in inbox.values())

    await esi.mrequest(
        0x1234, SE_PROFILE, MESSAGING, 1, 6, await zcl_frame(True, 6, 0x00, b"", server=True)
    )
    await asyncio.sleep(0.1)
    assert [len(inbox[d.ieee]) for d in devices] == [2, 1, 2]
    assert inbox[devices[0].ieee][1].group == 0x1234

    # Device to group: the coordinator sees it only once subscribed to the group.
    rec = Recorder(esi)
    sender, as_server = devices[1].endpoints[1], foundation.Direction.Server_to_Client
    await sender.send(0x1234, 0, MESSAGING, 0x01, dst_mode=t.AddrMode.Group, direction=as_server)
    await asyncio.sleep(0.1)
    assert [len(inbox[d.ieee]) for d in devices] == [3, 1, 3]
    assert rec.zcl(MESSAGING) == []
    await esi.subscribe_to_multicast_group(t.Group(0x1234))
    await sender.send(0x1234, 0, MESSAGING, 0x01, dst_mode=t.AddrMode.Group, direction=as_server)
    await asyncio.sleep(0.1)
    [packet] = rec.zcl(MESSAGING)
    assert packet.dst == t.AddrModeAddress(addr_mode=t.AddrMode.Group, address=0x1234)


async def test_zcl_request_response_and_default_responses() -> None:
    air = Air(seed=9)
    esi = await air.coordinator(channel=15)
    server = await admitted(
        air,
        esi,
        air.device(
            "00:0d:6f:00:0b:00:00:01", install_code=InstallCode.generate(rng=air.rng), channel=15
        ),
    )
    sep = server.add_endpoint(1, in_clusters=[PRICE])

    async def publish(msg: ZclMessage) -> None:
        await sep.reply(msg, 0x00, b"price!")

    sep.add_handler(PRICE, publish)
    client = await admitted(air, esi, ihd(air))
    cep = client.endpoints[1]
    await client.zdo_request(server.nwk or 0, zdo_t.ZDOCmd.NWK_addr_req, server.ieee, 0, 0)
    rsp = await cep.request(server.nwk or 0, 1, PRICE, 0x00)  # Get Current Price
    assert (rsp.command_id, rsp.payload, rsp.header.direction) == (
        0x00,
        b"price!",
        foundation.Direction.Server_to_Client,
    )
    # A cluster the endpoint does not host: Default Response UNSUPPORTED_CLUSTER.
    rsp = await cep.request(server.nwk or 0, 1, MESSAGING, 0x00)
    assert rsp.command_id == foundation.GeneralCommand.Default_Response
    assert rsp.payload == bytes((0x00, foundation.Status.UNSUPPORTED_CLUSTER))
    matches = await client.zdo_request(
        server.nwk or 0, zdo_t.ZDOCmd.Match_Desc_req, t.NWK(0xFFFF), SE_PROFILE, [PRICE], []
    )
    assert list(matches[2]) == [1]

"""Faults, determinism, inter-PAN and capture, checked with tshark."""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError
from zigpy.zcl import foundation

from tests.oracles import zigbee_key_options
from zse.installcode import InstallCode
from zse.sim import SE_PROFILE, Air, Faults, SimControllerApplication, SimDevice, ZclMessage

MESSAGING = 0x0703
PRICE = 0x0700
EPOCH = 1_767_225_600.0  # 2026-01-01 00:00 UTC: captures start there, run after run


async def han(
    seed: int, *, capture: Any = None, n: int = 2, airtime: bool = False
) -> tuple[Air, SimControllerApplication, list[SimDevice]]:
    air = Air(seed=seed, capture=capture, airtime=airtime, epoch=EPOCH)
    esi = await air.coordinator(channel=20)
    await esi.add_endpoint(_se_endpoint())
    devices = []
    for i in range(n):
        code = InstallCode.generate(rng=air.rng)
        device = air.device(f"00:0d:6f:00:0c:00:00:{i + 1:02x}", install_code=code, channel=20)
        device.add_endpoint(
            1, device_type=0x0502, in_clusters=[0x0800], out_clusters=[PRICE, MESSAGING]
        )
        await esi.permit_with_link_key(device.ieee, t.KeyData(code.link_key), 60)
        await device.join()
        devices.append(device)
    await asyncio.sleep(30)
    return air, esi, devices


def _se_endpoint() -> Any:
    import zigpy.zdo.types as zdo_t  # noqa: PLC0415

    return zdo_t.SimpleDescriptor(
        endpoint=9,
        profile=SE_PROFILE,
        device_type=0x0500,
        device_version=0,
        input_clusters=[PRICE, MESSAGING, 0x0800],
        output_clusters=[],
    )


DISPLAY_MESSAGE = (
    struct.pack("<IBIH", 0x01020304, 0x00, 0, 60)
    + bytes((len(b"Peak price now"),))
    + b"Peak price now"
)
PUBLISH_PRICE = (
    struct.pack("<I", 0x00000001)  # provider id
    + bytes((4,))
    + b"Peak"  # rate label
    + struct.pack("<II", 0x0000000A, 0x2E5A0000)  # issuer event id, current time
    + struct.pack("<BHBB", 0x00, 826, 0x21, 0x11)  # kWh, GBP, trailing digit/tier, tiers/register
    + struct.pack("<IHI", 0, 0xFFFF, 1234)  # start now, duration until changed, price
    + struct.pack("<BIB", 0xFF, 0xFFFFFFFF, 0xFF)  # price ratio, generation price and ratio
    + struct.pack("<IBBBB", 0xFFFFFFFF, 0xFF, 0xFF, 0xFF, 0x00)  # alternate cost..., price control
)


async def esi_send(
    esi: SimControllerApplication,
    device: SimDevice,
    cluster: int,
    command: int,
    payload: bytes,
    tsn: int,
    *,
    encrypt: bool = False,
    ack: bool = False,
) -> None:
    """A ZCL command from the ESI's endpoint 9 to ``device``'s endpoint 1, APS-encrypted
    with ``encrypt``, asking for an APS acknowledgement with ``ack``."""
    fc = 0x19  # cluster-specific, server to client, disable default response
    options = t.TransmitOptions.APS_Encryption if encrypt else t.TransmitOptions.NONE
    if ack:
        options |= t.TransmitOptions.ACK
    await esi.send_packet(
        t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
            src_ep=9,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
            dst_ep=1,
            profile_id=SE_PROFILE,
            cluster_id=cluster,
            data=t.SerializableBytes(bytes((fc, tsn, command)) + payload),
            tx_options=options,
        )
    )


def inbox(device: SimDevice, cluster: int) -> list[ZclMessage]:
    box: list[ZclMessage] = []
    device.endpoints[1].add_handler(cluster, box.append)
    return box


async def test_loss_with_mac_retries_and_total_loss() -> None:
    air, esi, (dev, _) = await han(11)
    box = inbox(dev, MESSAGING)
    air.set_link_faults(esi.radio, dev, loss=0.5)
    before = air.stats.transmitted
    failed = 0
    for tsn in range(40):
        try:
            await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
        except DeliveryError:
            failed += 1  # four attempts all lost (probability 1/16 each)
    await asyncio.sleep(0.1)
    delivered = len(box)
    assert air.stats.lost > 0
    assert air.stats.transmitted - before > 40  # MAC retransmissions
    assert delivered + failed == 40
    # Air(seed=11): MAC retries recover most losses; three sends lose all four attempts.
    assert (delivered, failed) == (37, 3)
    air.set_link_faults(esi.radio, dev, loss=1.0)
    with pytest.raises(DeliveryError):
        await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 99)
    await asyncio.sleep(1)
    assert len(box) == delivered
    air.set_link_faults(esi.radio, dev)  # back to the global (perfect) faults
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 100)
    await asyncio.sleep(0.1)
    assert box[-1].tsn == 100


async def test_duplication_is_captured_and_rejected_as_a_replay() -> None:
    """The duplicate carries the NWK frame counter already accepted: dropped as stale
    (ZB 4.3.1.2 step 5) before APS duplicate rejection would see it (#15.1)."""
    capture = io.BytesIO()
    air, esi, (dev, _) = await han(12, capture=capture)
    box = inbox(dev, MESSAGING)
    air.set_faults(duplicate=1.0)
    frames = air.stats.transmitted
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 7)
    await asyncio.sleep(0.1)
    assert air.stats.transmitted - frames == 2
    assert air.stats.duplicated == 1
    assert dev.stats.nwk_stale_counter == 1
    assert dev.stats.aps_duplicates == 0
    assert [m.tsn for m in box] == [7]


async def test_delay_and_reordering() -> None:
    air, esi, (dev, _) = await han(13)
    box = inbox(dev, MESSAGING)
    loop = asyncio.get_running_loop()
    air.set_link_faults(esi.radio, dev, delay=2.5)
    sent = loop.time()
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)  # acknowledged at once
    await asyncio.sleep(3)
    assert box[0].timestamp - sent == pytest.approx(2.5)
    air.set_link_faults(esi.radio, dev, reorder=0.5)
    before = air.stats.transmitted
    await asyncio.gather(
        *(esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn) for tsn in range(10, 30))
    )
    await asyncio.sleep(1)
    # A frame overtaken by a later one carries a frame counter below the one accepted since:
    # NWK replay protection drops it (ZB 4.3.1.2 step 5, #15.1); what arrives is in order.
    order = [m.tsn for m in box[1:]]
    assert order == sorted(order)
    assert len(order) + dev.stats.nwk_stale_counter == 20
    assert dev.stats.nwk_stale_counter > 0
    assert air.stats.transmitted - before == 20  # every frame was on the air once


async def test_partition_and_silent_node() -> None:
    air, esi, (a, b) = await han(14)
    box = inbox(a, MESSAGING)
    air.partition([esi.radio], [a, b])
    with pytest.raises(DeliveryError):
        await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    # Within a partition traffic still flows.
    # as the Messaging server sends it: a's Messaging is a client
    await b.endpoints[1].send(
        a.nwk or 0, 1, MESSAGING, 0x00, direction=foundation.Direction.Server_to_Client
    )
    await asyncio.sleep(0.1)
    assert len(box) == 1
    air.heal()
    await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    air.silence(a)
    with pytest.raises(DeliveryError):
        await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 3)
    air.restore(a)
    await esi_send(esi, a, MESSAGING, 0x00, DISPLAY_MESSAGE, 4)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box[1:]] == [2, 4]


async def test_airtime_model_250_kbit() -> None:
    _, esi, (dev, _) = await han(15, airtime=True)
    box = inbox(dev, MESSAGING)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    # MAC 9 + NWK 8 (no extended source) + NWK auxiliary header 14 (#15.1) + APS 8 + ZCL 3 +
    # payload + MIC 4 + FCS 2, plus 6 octets of SHR/PHR, at 32 us each.
    octets = 6 + 9 + 8 + 14 + 8 + 3 + len(DISPLAY_MESSAGE) + 4 + 2
    assert box[0].timestamp - start == pytest.approx(octets * 32e-6)


async def scenario(seed: int) -> bytes:
    capture = io.BytesIO()
    air, esi, (a, b) = await han(seed, capture=capture)
    air.set_faults(Faults(loss=0.2, duplicate=0.1, reorder=0.01))
    for tsn in range(10):
        with contextlib.suppress(DeliveryError):
            await esi_send(esi, a if tsn % 2 else b, PRICE, 0x00, PUBLISH_PRICE, tsn)
    await asyncio.sleep(1)
    air.close()
    return capture.getvalue()


async def test_same_seed_same_capture() -> None:
    first, second, other = await scenario(21), await scenario(21), await scenario(22)
    assert first == second
    assert first != other


async def test_interpan_crosses_pan_ids_on_the_same_channel() -> None:
    air, esi, (dev, _) = await han(16)
    foreign = air.device("00:0d:6f:00:0d:00:00:01", channel=20)  # never joins
    foreign._tune(20)
    elsewhere = air.device("00:0d:6f:00:0d:00:00:02", channel=25)
    elsewhere._tune(25)
    got_esi: list[bytes] = []
    esi.on_interpan(lambda frame: got_esi.append(frame.data))
    got_dev: list[bytes] = []
    dev.on_interpan(lambda frame: got_dev.append(frame.data))
    got_elsewhere: list[bytes] = []
    elsewhere.on_interpan(lambda frame: got_elsewhere.append(frame.data))
    # Inter-PAN broadcast (SE Annex B): MAC 0xC801, dst PAN/addr 0xFFFF, source PAN 0x7777 and
    # 64-bit source; stub NWK 0x000B; stub APS 0x0B, cluster, profile; ZCL Get Current Price.
    src = foreign.ieee.serialize()
    bcast = (
        struct.pack("<HBHHH", 0xC801, 1, 0xFFFF, 0xFFFF, 0x7777)
        + src
        + struct.pack("<HBHH", 0x000B, 0x0B, PRICE, SE_PROFILE)
        + bytes((0x01, 0x05, 0x00, 0x00))
    )
    assert await foreign.send_interpan(bcast)
    await asyncio.sleep(0.01)
    assert got_esi == [bcast]
    assert got_dev == [bcast]
    assert got_elsewhere == []
    # Unicast to the ESI's EUI-64 in its PAN: only the ESI accepts it.
    pan = esi.state.network_info.pan_id
    unicast = (
        struct.pack("<HBH", 0xCC21, 2, pan)
        + esi.state.node_info.ieee.serialize()
        + struct.pack("<H", 0x7777)
        + src
        + struct.pack("<HBHH", 0x000B, 0x03, PRICE, SE_PROFILE)
        + bytes((0x01, 0x06, 0x00, 0x00))
    )
    assert await foreign.send_interpan(unicast)
    frames = esi.interpan_frames()
    reply_task = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0)
    assert await dev.send_interpan(bcast)
    assert (await reply_task).data == bcast
    assert got_esi == [bcast, unicast, bcast]
    assert got_dev == [bcast]


@pytest.mark.oracle
async def test_tshark_dissects_se_commands_without_malformed_packets(
    tmp_path: Path,
    tshark_json: Callable[..., list[dict[str, Any]]],
    tshark_malformed: Callable[..., str],
) -> None:
    path = tmp_path / "han.pcap"
    air, esi, (dev, _) = await han(17, capture=path)
    await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 0x42)
    await esi_send(esi, dev, PRICE, 0x00, PUBLISH_PRICE, 0x43)
    await dev.endpoints[1].send(0x0000, 9, MESSAGING, 0x01, struct.pack("<II", 0x01020304, 0))
    await asyncio.sleep(0.1)
    air.close()
    keys = zigbee_key_options(entry.line() for entry in air.keys)  # NWK security (#15.1)
    assert tshark_malformed(path, keys) == ""
    packets = tshark_json(path, keys)
    assert all(p["wpan"]["wpan.fcs_ok"] == "1" for p in packets)
    protocols = [p["frame"]["frame.protocols"] for p in packets]
    assert "wpan:zbee_beacon" in protocols
    assert any(p.endswith("zbee_aps:zbee_zdp") for p in protocols)
    msg = [
        p for p in packets if "'zbee_zcl_se.msg.cmd.srv_tx.id': '0x00'" in str(p.get("zbee_zcl"))
    ]
    assert len(msg) == 1
    text = str(msg[0]["zbee_zcl"])
    assert "'zbee_zcl_se.msg.message.id': '0x01020304'" in text
    assert "'zbee_zcl_se.msg.message': 'Peak price now'" in text
    confirm = [
        p for p in packets if "'zbee_zcl_se.msg.cmd.srv_rx.id': '0x01'" in str(p.get("zbee_zcl"))
    ]
    assert len(confirm) == 1
    assert msg[0]["zbee_aps"]["zbee_aps.profile"] == "0x0109"
    assert msg[0]["zbee_aps"]["zbee_aps.cluster"] == "0x0703"
    assert msg[0]["zbee_zcl"]["zbee_zcl.cmd.tsn"] == "66"
    price = [p for p in packets if "zbee_zcl_se.price.provider_id" in str(p.get("zbee_zcl", {}))]
    assert len(price) == 1
    text = str(price[0]["zbee_zcl"])
    assert "'zbee_zcl_se.price.rate_label': 'Peak'" in text
    assert "'zbee_zcl_se.price.issuer_event_id': '10'" in text
    assert "'zbee_zcl_se.price.price': '1234'" in text


def first_record_time(pcap: bytes) -> float:
    """The timestamp of a classic pcap's first record."""
    seconds, micros = struct.unpack_from("<II", pcap, 24)
    return seconds + micros / 1e6


async def test_capture_timestamps_are_the_virtual_clock_on_a_real_epoch() -> None:
    """Captures no longer start in 1970 (#15.2): a given epoch, else the wall clock at the
    air's creation, plus the virtual seconds since."""
    capture = io.BytesIO()
    await han(18, capture=capture)  # epoch EPOCH; the joins take virtual time
    loop = asyncio.get_running_loop()
    stamps = []
    data = capture.getvalue()
    at = 24
    while at < len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, at)
        stamps.append(seconds + micros / 1e6)
        at += 16 + length
    assert stamps[0] == pytest.approx(EPOCH)
    assert stamps == sorted(stamps)
    assert 0 < stamps[-1] - EPOCH <= loop.time()  # virtual seconds since the air's creation
    before = time.time()
    live = io.BytesIO()
    air = Air(seed=18, capture=live)
    after = time.time()
    assert before <= air.epoch <= after
    await air.coordinator(channel=21)
    air.close()
    assert before <= first_record_time(live.getvalue()) <= after + 1
    with pytest.raises(ValueError, match="epoch"):
        Air(epoch=-1.0)

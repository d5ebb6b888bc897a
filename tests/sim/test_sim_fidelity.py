"""Fidelity of the simulated air to 802.15.4 and ZigBee PRO: APS duplicate rejection across
the 8-bit APS counter's wrap, aMaxPHYPacketSize, and MAC acknowledgements under delay."""

from __future__ import annotations

import asyncio
import io
import struct

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    SE_PROFILE,
    esi_send,
    han,
    inbox,
)
from zse.messaging.core import max_zcl_payload
from zse.sim import _frames as f
from zse.sim._node import DUPLICATE_LIFETIME


def _timestamps(capture: io.BytesIO) -> list[float]:
    """The timestamps of a classic pcap's records, in file order."""
    data, offset, out = capture.getvalue(), 24, []
    while offset < len(data):
        sec, usec, length, _ = struct.unpack_from("<IIII", data, offset)
        out.append(sec + usec / 1e6)
        offset += 16 + length
    return out


async def test_round_robin_unicasts_survive_the_aps_counter_wrap() -> None:
    """The APS duplicate table kept (source, counter, cluster) entries with no lifetime: once
    the ESI's 8-bit APS counter wrapped, a device that had seen fewer than 64 of its frames
    dropped every new one as a duplicate, silently (57 % of 600 round-robin sends lost)."""
    _, esi, devices = await han(7, n=4)
    boxes = [inbox(device, MESSAGING) for device in devices]
    for i in range(600):
        await esi_send(esi, devices[i % 4], MESSAGING, 0x00, DISPLAY_MESSAGE, i & 0xFF)
        await asyncio.sleep(1)
    assert [len(box) for box in boxes] == [150] * 4
    assert [device.stats.aps_duplicates for device in devices] == [0] * 4


async def test_counter_seen_again_is_delivered_once_its_entry_expired() -> None:
    """The same APS counter from the same source comes back after 256 frames: a duplicate
    while the source's entry lives (as on Z-Stack or BitCloud), a new frame once it expired
    (DUPLICATE_LIFETIME); before, it was dropped whatever the time."""
    _, esi, (one, other) = await han(21, n=2)
    box = inbox(one, MESSAGING)
    await esi_send(esi, one, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    for tsn in range(255):  # the ESI's APS counter comes round to the one `one` saw
        await esi_send(esi, other, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
    await esi_send(esi, one, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)  # at the same instant
    assert one.stats.aps_duplicates == 1
    for tsn in range(255):
        await esi_send(esi, other, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
    await asyncio.sleep(DUPLICATE_LIFETIME)
    await esi_send(esi, one, MESSAGING, 0x00, DISPLAY_MESSAGE, 3)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [1, 3]
    assert one.stats.aps_duplicates == 1


async def test_aps_retransmission_is_still_rejected() -> None:
    """An APS frame sent again under a fresh NWK frame counter (an APS retry) is dropped by
    the duplicate table, also after counters further ahead and behind were seen."""
    _, esi, (device, _) = await han(22, n=2)
    box = inbox(device, MESSAGING)
    radio, nwk_dst = esi.radio, device.nwk
    assert nwk_dst is not None
    zcl = bytes((0x19, 5, 0x00)) + DISPLAY_MESSAGE

    async def send(counter: int) -> None:
        aps = f.ApsHeader(
            f.APS_DATA, f.APS_DELIVERY_UNICAST, counter, 1, None, MESSAGING, SE_PROFILE, 9
        )
        nwk = f.NwkHeader(nwk_dst, radio.nwk or 0, 30, 0)
        assert await radio._send_nwk(nwk, f.encode_aps(aps, zcl))

    # 3 is ahead of 250 across the wrap; 1 and 2 are behind 3, not yet seen; 200 is too far
    # behind to tell (taken as new, the window stays on 3)
    for counter in (250, 3, 1, 250, 3, 2, 1, 200, 3):
        await send(counter)
    await asyncio.sleep(0.1)
    assert len(box) == 5  # 250, 3, 1, 2, 200
    assert device.stats.aps_duplicates == 4
    # the window is 32 counters: 228, 31 behind 3, is remembered; 227, 32 behind, is not
    for counter in (228, 228, 227, 227):
        await send(counter)
    await asyncio.sleep(0.1)
    assert len(box) == 8  # 228, 227 and 227 again
    assert device.stats.aps_duplicates == 5


async def test_frame_over_a_max_phy_packet_size_is_refused() -> None:
    """A 331-octet frame was put on the air and delivered: the MAC now refuses a PSDU over
    aMaxPHYPacketSize (127) with FRAME_TOO_LONG, counted, nothing on the air."""
    capture = io.BytesIO()
    air, esi, (device, _) = await han(23, capture=capture)
    box = inbox(device, MESSAGING)
    frames = air.stats.transmitted
    big = DISPLAY_MESSAGE + b"x" * 200
    with pytest.raises(DeliveryError) as refused:
        await esi_send(esi, device, MESSAGING, 0x00, big, 1, encrypt=True)
    assert refused.value.status == t.MACStatus.MAC_FRAME_TOO_LONG
    assert air.stats.too_long == 1
    assert air.stats.transmitted == frames
    # raw (inter-PAN) frames too; 125 octets plus the FCS is the largest frame
    # data frame, short broadcast destination, 64-bit source (no PAN id compression)
    header = bytes((0x01, 0xC8, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x34, 0x12)) + bytes(8)
    with pytest.raises(DeliveryError):
        await device.send_interpan(header + bytes(126 - len(header)))
    assert air.stats.too_long == 2
    assert await device.send_interpan(header + bytes(125 - len(header)))
    await esi_send(esi, device, MESSAGING, 0x00, DISPLAY_MESSAGE, 2, encrypt=True)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [2]


async def test_the_largest_se_unicast_fits_one_frame() -> None:
    """The simulator framed APS data with the optional NWK extended source and APS extended
    nonce (16 octets): a 57-octet Display Message text, the SE D.5.2.3.1.1.5 limit zse
    enforces, no longer fit aMaxPHYPacketSize. The 70-octet APS-encrypted ZCL payload fits."""
    capture = io.BytesIO()
    air, esi, (device, _) = await han(26, capture=capture)
    box = inbox(device, MESSAGING)
    largest = max_zcl_payload(group=False)
    await esi_send(esi, device, MESSAGING, 0x00, b"z" * largest, 1, encrypt=True)
    with pytest.raises(DeliveryError):
        await esi_send(esi, device, MESSAGING, 0x00, b"z" * (largest + 1), 2, encrypt=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, len(m.payload)) for m in box] == [(1, largest)]
    assert air.stats.too_long == 1


@pytest.mark.parametrize("airtime", [False, True])
async def test_delay_acknowledges_at_reception_and_the_capture_runs_forward(
    airtime: bool,
) -> None:
    """A delayed link moved the MAC Ack to the delivery time: the send took the whole delay
    (the Ack seconds after macAckWaitDuration), the capture's timestamps ran backwards and,
    with air time, the whole channel was blocked for the delay."""
    capture = io.BytesIO()
    air, esi, (slow, fast) = await han(24, capture=capture, airtime=airtime)
    slow_box, fast_box = inbox(slow, MESSAGING), inbox(fast, MESSAGING)
    loop = asyncio.get_running_loop()
    air.set_link_faults(esi.radio, slow, delay=2.0)
    sent = loop.time()
    await esi_send(esi, slow, MESSAGING, 0x00, DISPLAY_MESSAGE, 1)
    await esi_send(esi, fast, MESSAGING, 0x00, DISPLAY_MESSAGE, 2)
    assert loop.time() - sent < 0.02  # two unicasts' air time, not the delay
    await asyncio.sleep(0.1)
    assert [m.tsn for m in fast_box] == [2]
    assert slow_box == []
    await asyncio.sleep(2.0)
    assert [m.tsn for m in slow_box] == [1]
    assert slow_box[0].timestamp - sent == pytest.approx(2.0, abs=0.01)
    air.set_link_faults(esi.radio, slow, delay=0.5, reorder=0.5, duplicate=0.5)
    await asyncio.gather(
        *(esi_send(esi, slow, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn) for tsn in range(10, 20))
    )
    await asyncio.sleep(2.0)
    air.close()
    stamps = _timestamps(capture)
    assert air.stats.duplicated > 0
    assert stamps == sorted(stamps)


async def test_node_descriptor_server_mask() -> None:
    """Every node claimed to be the Network Manager (bit 6) with stack compliance revision 0,
    against its comment's revision 21 (ZB 2.3.2.3.10: the revision is bits 9-15)."""
    _, esi, (device,) = await han(25, n=1)
    coordinator = esi.radio.node_descriptor().server_mask
    assert (coordinator & 0x0001, coordinator & 0x0040, coordinator >> 9) == (1, 0x40, 21)
    mask = device.node_descriptor().server_mask
    assert (mask & 0x0041, mask >> 9) == (0, 21)

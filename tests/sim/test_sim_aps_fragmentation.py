"""APS fragmentation on the simulated air (ZB 2.2.8.4.5; the extended header ZB 2.2.5.1.8).

Every frame had to fit one APS frame. Now an acknowledged unicast whose payload does not fit
one frame goes in blocks: the first block's extended header carries the number of blocks, the
others their block number; each window of blocks (apsMaxWindowSize, 1 by default) is answered
by an APS ack with the window's first block and a bitfield of the blocks received, missing
blocks are sent again, and the receiver delivers the whole once, bounded in what it holds.
tshark reassembles what the simulator sends.

The figures are written out here, not imported, so that the tests hold the code to them: a
unicast data frame is 127 octets at most with the FCS (802.15.4 aMaxPHYPacketSize); MAC header
9 + FCS 2, NWK header 8, NWK security 14 + MIC 4, APS header 8 (+ 2 for the extended header of
a block), APS security 5 + MIC 4 leave 82 octets of payload in clear (80 a block) and 73
APS-encrypted (71 a block).
"""

from __future__ import annotations

import asyncio
import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.oracles import require, zigbee_key_options
from tests.sim.test_sim_aps_acks import aps_frames, aps_mic_verifies, forged
from tests.sim.test_sim_faults_capture import MESSAGING, PRICE, SE_PROFILE, han, inbox
from tests.sim.test_sim_security import Tap, drops
from zse.errors import InvalidFrame
from zse.security import AuxHeader, aps_header_length, unsecure_nwk
from zse.sim import Air, Fragmentation, SimControllerApplication, SimDevice
from zse.sim import _frames as f

ACK_WAIT, ATTEMPTS = 1.6, 4  # apsAckWaitDuration, 1 + apscMaxFrameRetries (ZB Table 2.23-24)
ROOM, BLOCK = 82, 80  # payload octets of one frame in clear, of one block
SECURED_ROOM, SECURED_BLOCK = 73, 71  # APS-encrypted
ESI_EP, DEVICE_EP = 9, 1


def zcl(tsn: int, size: int, command: int = 0x00, fc: int = 0x19) -> bytes:
    """A ZCL frame of ``size`` octets (header: frame control, TSN, command) whose payload
    counts up, so that a block out of place shows."""
    return bytes((fc, tsn, command)) + bytes(i & 0xFF for i in range(size - 3))


async def esi_sends(
    esi: SimControllerApplication, device: SimDevice, data: bytes, *, ack: bool, encrypt: bool
) -> None:
    """The ESI's Messaging frame ``data`` to the device through zigpy's ``send_packet``."""
    options = t.TransmitOptions.ACK if ack else t.TransmitOptions.NONE
    if encrypt:
        options |= t.TransmitOptions.APS_Encryption
    await esi.send_packet(
        t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
            src_ep=ESI_EP,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
            dst_ep=DEVICE_EP,
            profile_id=SE_PROFILE,
            cluster_id=MESSAGING,
            data=t.SerializableBytes(data),
            tx_options=options,
        )
    )


def zigpy_packets(esi: SimControllerApplication, cluster: int) -> list[t.ZigbeePacket]:
    """The packets of ``cluster`` the radio hands zigpy from now on."""
    got: list[t.ZigbeePacket] = []
    original = esi.packet_received

    def record(packet: t.ZigbeePacket) -> None:
        if packet.cluster_id == cluster:
            got.append(packet)
        original(packet)

    esi.packet_received = record  # type: ignore[method-assign]
    return got


def aps_of(frame: bytes, key: bytes) -> f.ApsHeader | None:
    """The APS header of a NWK-secured data frame (opened with the network key ``key``)."""
    mac, nwk_frame = f.decode_mac(frame)
    if mac.frame_type != f.MAC_DATA or not nwk_frame[:1] or nwk_frame[0] & 3:
        return None
    if not f.decode_nwk(nwk_frame)[0].security:
        return None
    return f.decode_aps(unsecure_nwk(nwk_frame, {0: key}).payload)[0]


class Dropper(Tap):
    """A capture that makes the air lose chosen frames: every attempt of a frame ``match``
    picks (its APS header) on the link it is sent on, ``times`` attempts in all."""

    def __init__(self) -> None:
        super().__init__()
        self.rules: list[tuple[Air, Any, Any, Callable[[f.ApsHeader], bool], list[int]]] = []
        self.key = b""

    def lose(
        self,
        air: Air,
        sender: Any,
        receiver: Any,
        match: Callable[[f.ApsHeader], bool],
        *,
        times: int = ATTEMPTS,
    ) -> None:
        self.rules.append((air, sender, receiver, match, [times]))

    def write(self, frame: bytes, timestamp: float) -> None:
        super().write(frame, timestamp)  # the air decides the attempt's fate after this
        aps = aps_of(frame, self.key) if self.key else None
        for air, sender, receiver, match, left in self.rules:
            hit = aps is not None and left[0] > 0 and match(aps)
            left[0] -= hit
            if hit:
                air.set_link_faults(sender, receiver, loss=1.0, both_ways=False)
            else:
                air.set_link_faults(sender, receiver, both_ways=False)


def block(number: int) -> Callable[[f.ApsHeader], bool]:
    """A data frame that is block ``number`` of a fragmented transmission."""

    def match(aps: f.ApsHeader) -> bool:
        if aps.frame_type != f.APS_DATA or not aps.fragmentation:
            return False
        return (0 if aps.fragmentation == f.FIRST_BLOCK else aps.block) == number

    return match


def block_ack(first: int) -> Callable[[f.ApsHeader], bool]:
    """The ack of the window starting at block ``first``."""
    return lambda aps: aps.frame_type == f.APS_ACK and aps.fragmentation > 0 and aps.block == first


def data_blocks(tap: Tap, key: bytes, since: int) -> list[f.ApsHeader]:
    return [
        h
        for h in (f.decode_aps(aps)[0] for _, _, aps in aps_frames(tap, key, since))
        if h.frame_type == f.APS_DATA
    ]


def reassembled(capture: Path, keys: list[str]) -> list[bytes]:
    """The ASDUs tshark reassembles from ``capture`` (its "Reassembled ZigBee APS" data
    sources, read from the hex dump ``-x`` prints)."""
    dump = subprocess.run(
        [require("tshark"), "-r", str(capture), *zigbee_key_options(keys), "-2", "-x"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = []
    for match in re.finditer(
        r"^Reassembled ZigBee APS \((\d+) bytes\):\n((?:[0-9a-f]{4}  .*\n)+)", dump, re.M
    ):
        octets = bytearray()
        for line in match.group(2).splitlines():
            octets += bytes.fromhex(line[6:53])
        assert len(octets) == int(match.group(1))
        found.append(bytes(octets))
    return found


def test_the_extended_header_format() -> None:
    """A first block carries the extended header bit (0x80), extended frame control 0b01 and
    the number of blocks; another block 0b10 and its number; a window's ack 0b01 (first
    window) or 0b10, the window's first block and the bitfield (ZB 2.2.5.1.8). zse.security
    finds the same header length. A reserved fragmentation value, an extended header on a
    command and a truncated one are InvalidFrame; 0b00 reads as not fragmented."""
    data = f.ApsHeader(f.APS_DATA, 0, 0x44, 1, None, MESSAGING, SE_PROFILE, 9, ack_request=True)
    first = struct.pack("<BBHHBBBB", 0xC0, 1, MESSAGING, SE_PROFILE, 9, 0x44, 0x01, 5)
    other = struct.pack("<BBHHBBBB", 0xC0, 1, MESSAGING, SE_PROFILE, 9, 0x44, 0x02, 3)
    first_hdr = f.ApsHeader(
        f.APS_DATA, 0, 0x44, 1, None, MESSAGING, SE_PROFILE, 9, True, fragmentation=1, block=5
    )
    assert f.encode_aps(first_hdr, b"ab") == first + b"ab"
    assert f.decode_aps(first + b"ab") == (first_hdr, b"ab")
    other_hdr, rest = f.decode_aps(other)
    assert (other_hdr.fragmentation, other_hdr.block, rest) == (2, 3, b"")
    ack = struct.pack("<BBHHBBBBB", 0x82, 9, MESSAGING, SE_PROFILE, 1, 0x44, 0x01, 0, 0xFD)
    assert f.encode_aps(f.aps_block_ack(data, 0, 0xFD), b"") == ack
    later = f.decode_aps(
        struct.pack("<BBHHBBBBB", 0x82, 9, MESSAGING, SE_PROFILE, 1, 7, 2, 3, 0xFF)
    )
    assert (later[0].fragmentation, later[0].block, later[0].ack_bits) == (2, 3, 0xFF)
    for frame in (first, other, ack):
        assert aps_header_length(frame) == len(frame)
    plain, rest = f.decode_aps(other[:-2] + b"\x00xyz")  # 0b00: one extended octet, no more
    assert (plain.fragmentation, rest) == (0, b"xyz")
    with pytest.raises(InvalidFrame, match="reserved fragmentation value 0b11"):
        f.decode_aps(other[:-2] + b"\x03\x01")
    with pytest.raises(InvalidFrame, match="extended header on a command"):
        f.decode_aps(bytes((0x81, 0x10, 0x01, 0x01)))
    for short in (first[:-1], other[:-2], ack[:-1]):
        with pytest.raises(InvalidFrame, match="truncated"):
            f.decode_aps(short)


@pytest.mark.parametrize(
    ("encrypt", "room", "size"),
    [(False, ROOM, BLOCK), (True, SECURED_ROOM, SECURED_BLOCK)],
    ids=["clear", "aps-encrypted"],
)
async def test_a_payload_that_fits_goes_whole_one_octet_more_in_blocks(
    encrypt: bool, room: int, size: int
) -> None:
    """A payload of exactly one frame's room goes in one 127-octet frame with no extended
    header; one octet more goes in two blocks (a full one and the rest), every frame at
    most 127 octets; the device takes each whole, once."""
    tap = Tap()
    _air, esi, (dev, _) = await han(71 + encrypt, capture=tap)
    box = inbox(dev, MESSAGING)
    key = esi.radio.network_key or b""
    start = len(tap.sent)
    await esi_sends(esi, dev, zcl(1, room), ack=True, encrypt=encrypt)
    whole = data_blocks(tap, key, start)
    middle = len(tap.sent)
    await esi_sends(esi, dev, zcl(2, room + 1), ack=True, encrypt=encrypt)
    split = data_blocks(tap, key, middle)
    await asyncio.sleep(0.1)
    assert [(h.fragmentation, h.security) for h in whole] == [(0, encrypt)]
    assert [(h.fragmentation, h.block, h.security) for h in split] == [
        (1, 2, encrypt),
        (2, 1, encrypt),
    ]
    assert max(len(frame) + 2 for frame in tap.sent) == 127  # the FCS: the largest PSDU
    frames = aps_frames(tap, key, middle)
    lengths = [len(aps) for _, _, aps in frames if f.decode_aps(aps)[0].frame_type == 0]
    overhead = 10 + 9 * encrypt  # the APS header and extended header; APS security
    assert lengths == [size + overhead, room + 1 - size + overhead]
    assert [(m.tsn, 3 + len(m.payload)) for m in box] == [(1, room), (2, room + 1)]
    assert drops(dev.stats) == drops(esi.radio.stats) == {}


async def test_300_octets_cross_both_ways_aps_encrypted_and_tshark_reassembles_them(
    tmp_path: Path,
) -> None:
    """A 300-octet ZCL frame from zigpy (``request`` without a reply expected: the ACK
    option) to the device, and one from the device's endpoint to the ESI, both
    APS-encrypted: 5 blocks each (4 x 71 + 16), each APS-secured on its own (its own frame
    counter, a MIC that verifies by hand), each acknowledged; the device's handler and
    zigpy's ``packet_received`` get each frame once, whole. tshark decrypts every block,
    reassembles each frame to the bytes sent and dissects the fragments and their acks with
    no malformed packet."""
    tap = Tap()
    air, esi, (dev, _) = await han(73, capture=tap)
    box = inbox(dev, MESSAGING)
    upward = zigpy_packets(esi, PRICE)
    key = esi.radio.network_key or b""
    link_key = dev.link_keys[esi.radio.ieee]
    down = zcl(0x21, 300)
    start = len(tap.sent)
    await esi.request(
        esi.get_device(nwk=t.NWK(dev.nwk or 0)),
        SE_PROFILE,
        MESSAGING,
        ESI_EP,
        DEVICE_EP,
        0x21,
        down,
        expect_reply=False,
        aps_encryption=True,
    )
    payload = bytes(range(256)) + b"up" * 20 + b"!"
    tsn = await dev.endpoints[1].send(0x0000, ESI_EP, PRICE, 0x00, payload, encrypt=True)
    await asyncio.sleep(0.1)
    assert [(m.tsn, m.aps_encrypted, m.payload) for m in box] == [(0x21, True, down[3:])]
    assert len(upward) == 1
    up = upward[0].data.serialize()
    assert up[1:] == bytes((tsn, 0x00)) + payload
    assert upward[0].tx_options & t.TransmitOptions.APS_Encryption
    frames = [(n, aps, f.decode_aps(aps)[0]) for _, n, aps in aps_frames(tap, key, start)]
    blocks = [(n, aps) for n, aps, h in frames if h.fragmentation and h.frame_type == 0]
    acks = [h for _, _, h in frames if h.fragmentation and h.frame_type == 2]
    assert len(blocks) == len(acks) == 10
    counters: dict[int, list[int]] = {}
    for nwk, aps in blocks:
        sender = esi.radio if nwk.src == 0x0000 else dev
        assert f.decode_aps(aps)[0].security
        assert aps_mic_verifies(aps, link_key, sender.ieee)
        aux = AuxHeader.decode(aps[aps_header_length(aps) :])[0]
        counters.setdefault(nwk.src, []).append(aux.counter)
    for each in counters.values():  # each block under the link key's next frame counter
        assert each == list(range(each[0], each[0] + 5))
    assert [(a.fragmentation, a.block, a.ack_bits, a.security) for a in acks[:5]] == [
        (1, 0, 0xFF, True),
        *((2, n, 0xFF, True) for n in range(1, 5)),
    ]
    assert drops(dev.stats) == drops(esi.radio.stats) == {}
    capture = tmp_path / "fragments.pcap"
    capture.write_bytes(tap.buffer.getvalue())
    keys = [entry.line() for entry in air.keys]
    assert reassembled(capture, keys) == [down, up]
    packets = dissect(capture, [*zigbee_key_options(keys), "-2"])  # fails on a malformed one
    fragments = [p for p in packets if p.get("zbee_aps.type") == ["0x00"] and "zbee_aps.block" in p]
    assert len(fragments) == 10
    assert all("zbee_aps.reassembled.in" in p for p in fragments[:4] + fragments[5:9])
    whole = [p for p in packets if "zbee_aps.reassembled.length" in p]
    assert [(p["zbee_aps.reassembled.length"], p["zbee_aps.fragment.count"]) for p in whole] == [
        (["300"], ["5"]),
        (["300"], ["5"]),
    ]
    shown = [p for p in packets if p.get("zbee_aps.type") == ["0x02"] and "zbee_aps.block" in p]
    assert [p["zbee_aps.block_acks"] for p in shown] == [["0xff"]] * 10


async def test_a_lost_block_is_sent_again_and_delivered_once() -> None:
    """Block 2 of 5 is lost on the air (every MAC attempt): no ack comes, the ESI sends it
    again 1.6 s later (the same block, a new NWK frame), the rest follows; the device
    delivers the frame once, whole, and drops nothing."""
    tap = Dropper()
    air, esi, (dev, _) = await han(74, capture=tap)
    box = inbox(dev, MESSAGING)
    tap.key = esi.radio.network_key or b""
    tap.lose(air, esi.radio, dev, block(2))
    loop = asyncio.get_running_loop()
    start, sent = loop.time(), len(tap.sent)
    await esi_sends(esi, dev, zcl(9, 360), ack=True, encrypt=True)
    assert loop.time() - start == pytest.approx(ACK_WAIT)
    await asyncio.sleep(0.1)
    assert [(m.tsn, 3 + len(m.payload)) for m in box] == [(9, 360)]
    numbers = [0 if h.fragmentation == 1 else h.block for h in data_blocks(tap, tap.key, sent)]
    assert numbers == [0, 1, 2, 2, 2, 2, 2, 3, 4, 5]  # block 2: 4 attempts lost, then again
    assert drops(dev.stats) == drops(esi.radio.stats) == {}


async def test_a_lost_ack_brings_the_block_again_acked_again_and_delivered_once() -> None:
    """The device's ack of block 1 is lost: the ESI sends block 1 again after 1.6 s, the
    device takes it as a duplicate (counted), acks it again, and the transfer goes on; the
    frame is delivered once. The same from the device to zigpy."""
    tap = Dropper()
    air, esi, (dev, _) = await han(75, capture=tap)
    box = inbox(dev, MESSAGING)
    upward = zigpy_packets(esi, PRICE)
    tap.key = esi.radio.network_key or b""
    tap.lose(air, dev, esi.radio, block_ack(1))
    await esi_sends(esi, dev, zcl(3, 200), ack=True, encrypt=False)
    tap.lose(air, esi.radio, dev, block_ack(1))
    await dev.endpoints[1].send(0x0000, ESI_EP, PRICE, 0x00, bytes(250))
    await asyncio.sleep(0.1)
    assert [(m.tsn, 3 + len(m.payload)) for m in box] == [(3, 200)]
    assert [len(p.data.serialize()) for p in upward] == [253]
    assert drops(dev.stats) == drops(esi.radio.stats) == {"aps_duplicates": 1}


async def test_a_receiver_gone_mid_transfer_fails_the_send_and_its_blocks_are_freed() -> None:
    """The device goes silent after acknowledging block 1: block 2 gets no ack, the send
    fails after 4 attempts 1.6 s apart with zigpy's DeliveryError, APS_NO_ACK, the APS text.
    The device held blocks 0 and 1; 4.8 s after the last one came it drops them (counted),
    holding nothing; nothing was delivered."""
    tap = Dropper()
    air, esi, (dev, _) = await han(76, capture=tap)
    box = inbox(dev, MESSAGING)
    tap.key = esi.radio.network_key or b""
    loop = asyncio.get_running_loop()

    def gone(aps: f.ApsHeader) -> bool:
        if block_ack(1)(aps):
            loop.call_soon(air.silence, dev)  # once its ack is on the air
        return False

    tap.lose(air, dev, esi.radio, gone)
    start = loop.time()
    send = loop.create_task(esi_sends(esi, dev, zcl(4, 300), ack=True, encrypt=True))
    await asyncio.sleep(0.1)
    assert (len(dev.reassembly), dev.reassembly.octets) == (1, 2 * SECURED_BLOCK)
    with pytest.raises(DeliveryError) as failed:
        await send
    assert str(failed.value) == f"no APS acknowledgement from 0x{dev.nwk:04X} after 4 attempts"
    assert failed.value.status == t.APSStatus.APS_NO_ACK
    assert loop.time() - start == pytest.approx(ATTEMPTS * ACK_WAIT)
    assert (len(dev.reassembly), dev.reassembly.octets) == (0, 0)  # dropped at 4.8 s
    assert drops(dev.stats) == {"aps_reassembly_timeouts": 1}
    assert box == []


async def test_windows_of_three_send_again_only_the_missing_block() -> None:
    """Both ends with apsMaxWindowSize 3 and 30-octet blocks (TP/PRO/BV-43's shape): 240
    octets in 8 blocks; block 1 is lost, so the ack of the first window (after its block 2)
    has bitfield 0xFD; only block 1 is sent again, acked 0xFF; then the windows at blocks
    3 and 6 are acked 0xFF (the unused bits set)."""
    tap = Dropper()
    air, esi, (dev, _) = await han(77, capture=tap)
    box = inbox(dev, MESSAGING)
    tap.key = esi.radio.network_key or b""
    for node in (esi.radio, dev):
        node.fragmentation = Fragmentation(block_size=30, window=3)
    tap.lose(air, esi.radio, dev, block(1))
    sent = len(tap.sent)
    await esi_sends(esi, dev, zcl(5, 240), ack=True, encrypt=False)
    await asyncio.sleep(0.1)
    assert [(m.tsn, 3 + len(m.payload)) for m in box] == [(5, 240)]
    headers = [f.decode_aps(aps)[0] for _, _, aps in aps_frames(tap, tap.key, sent)]
    shown = [
        ("ack", h.block, h.ack_bits)
        if h.frame_type == 2
        else (0 if h.fragmentation == 1 else h.block)
        for h in headers
    ]
    assert shown == [
        0, 1, 1, 1, 1, 2, ("ack", 0, 0xFD), 1, ("ack", 0, 0xFF),
        3, 4, 5, ("ack", 3, 0xFF), 6, 7, ("ack", 6, 0xFF),
    ]  # fmt: skip
    assert headers[0].block == 8  # the first block carries the count


async def test_too_long_even_for_fragmentation_is_refused_before_anything_is_sent() -> None:
    """Over the largest transfer (1500 octets), or needing more than 255 blocks (the count
    is one octet): APS_ASDU_TOO_LONG, named, before anything is on the air."""
    air, esi, (dev, _) = await han(78)
    frames = air.stats.transmitted
    with pytest.raises(DeliveryError, match="1501 octets is too long even for fragmentation") as e:
        await esi_sends(esi, dev, zcl(1, 1501), ack=True, encrypt=True)
    assert e.value.status == t.APSStatus.APS_ASDU_TOO_LONG
    esi.radio.fragmentation = Fragmentation(block_size=5)
    with pytest.raises(DeliveryError, match="256 blocks of 5 octets") as e:
        await esi_sends(esi, dev, zcl(2, 1276), ack=True, encrypt=False)
    assert e.value.status == t.APSStatus.APS_ASDU_TOO_LONG
    assert air.stats.transmitted == frames
    await esi_sends(esi, dev, zcl(3, 1275), ack=True, encrypt=False)  # 255 blocks go


async def test_a_too_long_frame_not_acknowledged_is_refused_saying_why() -> None:
    """Only an acknowledged unicast is fragmented: a too long unicast without the ACK option,
    a broadcast, a group frame, and a device's unicast with its APS acks off are refused by
    the MAC (FRAME_TOO_LONG), saying so; nothing is delivered."""
    air, esi, (dev, _) = await han(79)
    box = inbox(dev, MESSAGING)
    big = zcl(1, 100)
    with pytest.raises(DeliveryError, match="only an acknowledged unicast is fragmented") as e:
        await esi_sends(esi, dev, big, ack=False, encrypt=False)
    assert e.value.status == t.MACStatus.MAC_FRAME_TOO_LONG
    ep = dev.endpoints[1]
    for mode, address in ((t.AddrMode.Broadcast, 0xFFFD), (t.AddrMode.Group, 0x1234)):
        with pytest.raises(DeliveryError, match="only an acknowledged unicast is fragmented"):
            await ep.send(address, ESI_EP, PRICE, 0x00, bytes(100), dst_mode=mode)
    dev.aps_ack = False
    with pytest.raises(DeliveryError, match="only an acknowledged unicast is fragmented"):
        await ep.send(0x0000, ESI_EP, PRICE, 0x00, bytes(100))
    await asyncio.sleep(0.1)
    assert box == []
    assert air.stats.too_long == 4


def forged_block(
    counter: int,
    fragmentation: int,
    number: int,
    payload: bytes,
    *,
    cluster: int = MESSAGING,
    fc: int = 0xC0,
) -> bytes:
    """A block to the ESI's endpoint laid out by hand (ZB 2.2.5.1.8), unsecured."""
    header = struct.pack("<BBHHBB", fc, ESI_EP, cluster, SE_PROFILE, DEVICE_EP, counter)
    return header + bytes((fragmentation, number)) + payload


async def test_garbage_blocks_are_dropped_and_counted() -> None:
    """An insider's blocks to the ESI that make no transfer: a first block of 0 blocks,
    block 0 marked as another block, a later block of a transfer never begun, a block past
    the count, the first block again with another count, a block again with other content,
    a block of another cluster than its transfer's, a block without the ack request, one in
    a broadcast, a reserved fragmentation value: each dropped and counted, none delivered,
    no crash. The transfer's own blocks still make it whole."""
    air, esi, (a, insider) = await han(80)
    got = zigpy_packets(esi, MESSAGING)
    src = insider.nwk or 0

    async def inject(aps: bytes) -> None:
        await air.transmit(air.frame(insider, forged(air, insider, src, aps)))

    garbage = [
        forged_block(1, 1, 0, b"x"),  # no blocks
        forged_block(2, 2, 0, b"x"),  # block 0 is the first block
        forged_block(3, 2, 1, b"x"),  # a window past the first of a transfer never begun
    ]
    await inject(forged_block(7, 1, 3, b"aa"))  # the transfer: 3 blocks
    garbage += [
        forged_block(7, 2, 3, b"dd"),  # past the count
        forged_block(7, 1, 4, b"aa"),  # the count again, another
        forged_block(7, 1, 3, b"zz"),  # block 0 again, other content
        forged_block(7, 2, 1, b"bb", cluster=PRICE),  # another cluster
        forged_block(7, 2, 1, b"bb", fc=0x80),  # no ack request
    ]
    for aps in garbage:
        await inject(aps)
    broadcast = forged(air, insider, src, forged_block(8, 1, 2, b"x", fc=0xC8), dst=0xFFFD)
    broadcast = broadcast[:5] + b"\xff\xff" + broadcast[7:]  # MAC destination 0xFFFF
    await air.transmit(air.frame(insider, broadcast))
    assert drops(esi.radio.stats) == {"aps_fragments_invalid": len(garbage) + 1}
    await inject(forged_block(9, 3, 1, b"x"))  # reserved: not a frame
    assert esi.radio.stats.malformed == 1
    await inject(forged_block(7, 2, 1, b"bb"))
    await inject(forged_block(7, 2, 2, b"cc"))
    await asyncio.sleep(0.1)
    assert [p.data.serialize() for p in got] == [b"aabbcc"]
    assert len(esi.radio.reassembly) == 0
    del a


async def test_a_fragment_flood_is_bounded_and_forgotten() -> None:
    """An insider starts 1000 transfers of 255 blocks at the ESI, from its own address and
    800 forged ones: the ESI holds at most 2 per sender and 10 in all (the rest refused,
    counted), a transfer growing past 1500 octets is dropped, and 4.8 s after the last new
    block everything held is gone. A device's own transfer then goes through."""
    air, esi, (dev, insider) = await han(81)
    radio = esi.radio
    box = zigpy_packets(esi, PRICE)

    async def inject(src: int, aps: bytes) -> None:
        await air.transmit(air.frame(insider, forged(air, insider, src, aps)))

    for n in range(1000):  # 200 from its own address, 800 from as many forged ones
        src = (insider.nwk or 0) if n < 200 else 0x4000 + n
        await inject(src, forged_block(n & 0xFF, 1, 255, bytes(70)))
    assert (len(radio.reassembly), radio.reassembly.octets) == (10, 10 * 70)
    assert drops(radio.stats) == {"aps_fragments_refused": 990}
    # 2 of them from its own address (counters 0 and 1): a later block of its third was
    # never begun (garbage), one of its second is held; 8 from the first forged addresses
    await inject(insider.nwk or 0, forged_block(2, 2, 1, bytes(70)))
    assert drops(radio.stats) == {"aps_fragments_refused": 990, "aps_fragments_invalid": 1}
    for src, counter in ((insider.nwk or 0, 1), (0x4000 + 207, 207)):
        await inject(src, forged_block(counter, 2, 1, bytes(70)))
    assert (len(radio.reassembly), radio.reassembly.octets) == (10, 12 * 70)
    for number in range(1, 22):  # the insider's first transfer grows: 21 x 70 octets held
        await inject(insider.nwk or 0, forged_block(0, 2, number, bytes(70)))
    # 22 x 70 > 1500: dropped
    assert drops(radio.stats) == {"aps_fragments_refused": 991, "aps_fragments_invalid": 1}
    assert (len(radio.reassembly), radio.reassembly.octets) == (9, 11 * 70)
    await asyncio.sleep(4.7)
    assert len(radio.reassembly) == 9
    await asyncio.sleep(0.2)
    assert (len(radio.reassembly), radio.reassembly.octets) == (0, 0)
    assert radio.stats.aps_reassembly_timeouts == 9
    await dev.endpoints[1].send(0x0000, ESI_EP, PRICE, 0x00, bytes(500))
    await asyncio.sleep(0.1)
    assert [len(p.data.serialize()) for p in box] == [503]


def test_settings_out_of_range_are_refused() -> None:
    """A window of 0 or past the 8-bit ack bitfield, a block of no octets, a negative delay, a
    timeout of 0, no room for a transfer: ValueError, naming the setting."""
    for bad, name in (
        ({"window": 0}, "window"),
        ({"window": 9}, "window"),
        ({"block_size": 0}, "block_size"),
        ({"interframe_delay": -1.0}, "interframe_delay"),
        ({"timeout": 0.0}, "timeout"),
        ({"in_flight": 0}, "in_flight"),
        ({"max_transfer": 0}, "max_transfer"),
    ):
        with pytest.raises(ValueError, match=name):
            Fragmentation(**bad)  # type: ignore[arg-type]
    assert Fragmentation(window=8).window == 8


async def test_a_new_transfer_reusing_a_recent_aps_counter_is_delivered() -> None:
    """ZB 2.2.8.4.5.2 with the 8-bit APS counter wrapped (ZB 2.2.5.1.5): the receiver
    remembers a delivered transfer to acknowledge its last block again, not every block
    with its counter; a new transfer whose counter came round within that time is a new
    frame, delivered, not acknowledged and dropped as the old one's duplicate."""
    _air, esi, (device, other) = await han(130)
    box = inbox(device, MESSAGING)
    await esi_sends(esi, device, zcl(1, 200), ack=True, encrypt=False)
    for tsn in range(255):  # the ESI's APS counter comes round to the transfer's again
        await esi_sends(esi, other, zcl(tsn, 10), ack=False, encrypt=False)
    await esi_sends(esi, device, zcl(2, 150), ack=True, encrypt=False)
    assert [(m.tsn, len(m.payload)) for m in box] == [(1, 197), (2, 147)]

"""zse capture puts APS blocks back together (ZB 2.2.8.4.5) with bounded memory: blocks in
any order and resent, transfers told apart as Wireshark tells them apart (PAN ID, NWK source
and destination, APS counter), and transfers never finished forgotten by count, by capture
time and by frames, whatever a hostile capture holds. The frames are laid out by hand here
(unsecured, link type 230), not with zse's encoders."""

from __future__ import annotations

import struct

from zse.capture import CaptureDecoder, Decoded
from zse.capture.reader import Record
from zse.capture.reassembly import MAX_AGE_NS, MAX_FRAMES, MAX_OCTETS, MAX_TRANSFERS, Reassembly

SE_PROFILE, MESSAGING = 0x0109, 0x0703
SECOND = 1_000_000_000


def block_frame(
    fragmentation: int,
    block: int,
    payload: bytes,
    *,
    counter: int = 7,
    src: int = 0x0000,
    dst: int = 0x1234,
    pan: int = 0x1A62,
) -> bytes:
    """A MAC data frame, NWK data frame and APS data frame with the extended header
    (ZB 2.2.5.1.8: 0x80 in the frame control, then fragmentation and block number)."""
    mac = struct.pack("<HBHHH", 0x8861, counter, pan, dst, src)
    nwk = struct.pack("<HHHBB", 0x0008, dst, src, 30, counter)
    aps = struct.pack("<BBHHBBBB", 0xC0, 1, MESSAGING, SE_PROFILE, 9, counter, fragmentation, block)
    return mac + nwk + aps + payload


def ack_frame(block: int, bits: int, *, counter: int = 7) -> bytes:
    """An APS ack of a window: extended header with the window's first block and bitfield."""
    mac = struct.pack("<HBHHH", 0x8861, 0, 0x1A62, 0x0000, 0x1234)
    nwk = struct.pack("<HHHBB", 0x0008, 0x0000, 0x1234, 30, 0)
    aps = struct.pack("<BBHHBBBBB", 0x82, 9, MESSAGING, SE_PROFILE, 1, counter, 0x02, block, bits)
    return mac + nwk + aps


class Feed:
    """One decoder, fed frames as records numbered in turn (or as told)."""

    def __init__(self) -> None:
        self.decoder = CaptureDecoder()
        self.number = 0

    def __call__(self, frame: bytes, *, time_ns: int = 0, number: int | None = None) -> Decoded:
        self.number = number if number is not None else self.number + 1
        return self.decoder.decode(Record(self.number, time_ns, 230, frame, len(frame)))


ZCL = bytes((0x19, 0x42, 0x00)) + bytes(range(60))  # a Display Message, cut in three below


def test_blocks_out_of_order_and_resent_reassemble_on_the_completing_frame() -> None:
    """Block 0 (of 3), block 2, block 2 again (other bytes: the first copy is kept), block 1:
    no block is decoded as a ZCL frame; block 1's frame has the whole, in block order, and
    the frames of every copy; the ack shows its window and bitfield."""
    feed = Feed()
    parts = [ZCL[:20], ZCL[20:40], ZCL[40:]]
    got = [
        feed(block_frame(1, 3, parts[0])),
        feed(block_frame(2, 2, parts[2])),
        feed(block_frame(2, 2, b"another copy")),
        feed(block_frame(2, 1, parts[1])),
    ]
    assert [(d.aps.fragmentation, d.aps.block) for d in got if d.aps] == [
        (1, 3),
        (2, 2),
        (2, 2),
        (2, 1),
    ]
    assert [d.command for d in got[:3]] == [None] * 3
    assert [d.error for d in got] == [None] * 4
    whole = got[3].reassembled
    assert whole is not None
    assert (whole.payload, whole.blocks, whole.frames) == (ZCL, 3, (1, 4, 2, 3))
    assert got[3].command is not None
    assert (got[3].command["command"], got[3].command["tsn"]) == ("display_message", 0x42)
    assert len(feed.decoder.reassembly) == 0  # done with
    ack = feed(ack_frame(3, 0xFD))
    assert ack.aps is not None
    assert ack.aps.fragment_fields() == {
        "fragmentation": "later block",
        "block": 3,
        "block_acks": "0xfd",
    }


def test_transfers_are_told_apart_by_pan_source_destination_and_counter() -> None:
    """Four transfers interleaved that differ in one of PAN ID, NWK source, NWK destination
    or APS counter each reassemble their own blocks."""
    feed = Feed()
    variants = [{}, {"pan": 0x2222}, {"src": 0x0001}, {"dst": 0x4321}, {"counter": 8}]
    firsts = [feed(block_frame(1, 2, bytes([i]) * 5, **v)) for i, v in enumerate(variants)]
    assert all(d.reassembled is None for d in firsts)
    lasts = [feed(block_frame(2, 1, bytes([i + 16]) * 3, **v)) for i, v in enumerate(variants)]
    assert [d.reassembled.payload for d in lasts if d.reassembled] == [
        bytes([i]) * 5 + bytes([i + 16]) * 3 for i in range(len(variants))
    ]


def test_a_first_block_of_one_block_or_no_payload_completes_nothing() -> None:
    """A first block counting 1 block, and a block with no payload, are shown, never
    reassembled (as Wireshark)."""
    feed = Feed()
    assert feed(block_frame(1, 1, ZCL)).reassembled is None
    assert feed(block_frame(1, 2, b"")).command is None
    assert feed(block_frame(2, 1, ZCL)).reassembled is None  # block 0 never held


def test_unfinished_transfers_are_forgotten_past_the_count() -> None:
    """The oldest of more than MAX_TRANSFERS unfinished transfers is forgotten: its last
    block completes nothing; the newest still completes."""
    feed = Feed()
    count = MAX_TRANSFERS + 1
    for n in range(count):
        feed(block_frame(1, 2, b"x", src=n))
    assert len(feed.decoder.reassembly) == MAX_TRANSFERS
    assert feed(block_frame(2, 1, b"y", src=0)).reassembled is None
    assert feed(block_frame(2, 1, b"y", src=count - 1)).reassembled is not None


def test_unfinished_transfers_are_forgotten_by_capture_time_and_by_frames() -> None:
    """A transfer whose last block is more than MAX_AGE_NS of capture time, or MAX_FRAMES
    frames, behind is forgotten; one just inside both limits is not."""
    feed = Feed()
    feed(block_frame(1, 2, b"a", counter=1), time_ns=0)
    assert feed(block_frame(2, 1, b"b", counter=1), time_ns=MAX_AGE_NS).reassembled is not None
    feed(block_frame(1, 2, b"a", counter=2), time_ns=0)
    assert feed(block_frame(2, 1, b"b", counter=2), time_ns=MAX_AGE_NS + 1).reassembled is None
    start = feed(block_frame(1, 2, b"a", counter=3)).record.number
    late = feed(block_frame(2, 1, b"b", counter=3), number=start + MAX_FRAMES + 1)
    assert late.reassembled is None
    start = feed(block_frame(1, 2, b"a", counter=4)).record.number
    assert feed(block_frame(2, 1, b"b", counter=4), number=start + MAX_FRAMES).reassembled


def test_a_hostile_capture_cannot_grow_what_is_held() -> None:
    """Large blocks of ever new transfers, and one block resent without end, keep the
    octets held at most MAX_OCTETS (a resend noted counts as 8) and the transfers at most
    MAX_TRANSFERS; every block number of every transfer held stays within bounds too."""
    reassembly = Reassembly()
    for n in range(200):
        assert reassembly.add((1, n, 0, 0), 2, 1, bytes(40_000), n, 0) is None
        assert reassembly.octets <= MAX_OCTETS
        assert len(reassembly) <= MAX_TRANSFERS
    for _ in range(MAX_OCTETS // 8 + 10):
        reassembly.add((2, 0, 0, 0), 2, 1, bytes(100), 1000, 0)
    assert reassembly.octets <= MAX_OCTETS
    assert len(reassembly) >= 1  # the resent one is held, the large ones went first
    for block in range(256):
        reassembly.add((3, 0, 0, 0), 2, block, bytes(10), 2000, 0)
    assert reassembly.octets <= MAX_OCTETS


def test_blocks_on_the_timeline_and_in_json() -> None:
    """The timeline shows ``block 0 of 3``, ``block 2``, an ack's ``block 3 acks 0xfd``, and
    on the completing frame the octets reassembled and the frames; JSON the same facts."""
    from zse.capture.output import as_line, frame_fields  # noqa: PLC0415

    feed = Feed()
    first = feed(block_frame(1, 2, ZCL[:30]), time_ns=SECOND)
    last = feed(block_frame(2, 1, ZCL[30:]), time_ns=SECOND)
    ack = feed(ack_frame(1, 0xFF))
    assert as_line(first).endswith("APS data cluster 0x0703 profile 0x0109 #7 block 0 of 2")
    assert "#7 block 1 | reassembled 63 octets of 2 blocks from frames 1,2 | ZCL Messaging" in (
        as_line(last)
    )
    assert "#7 block 1 acks 0xff" in as_line(ack)
    aps = frame_fields(first)["aps"]
    assert (aps["fragmentation"], aps["block"], aps["blocks"]) == ("first block", 0, 2)
    assert "command" not in frame_fields(first)
    fields = frame_fields(last)
    assert fields["reassembled"] == {"length": 63, "blocks": 2, "frames": [1, 2]}
    assert (fields["aps"]["fragmentation"], fields["aps"]["block"]) == ("later block", 1)
    assert fields["command"]["command"] == "display_message"
    assert frame_fields(ack)["aps"]["block_acks"] == "0xff"

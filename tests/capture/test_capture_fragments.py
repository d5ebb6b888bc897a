"""zse capture against tshark on fragmented APS transfers (ZB 2.2.8.4.5), captured on the
simulated air (the simulator fragments an acknowledged unicast too long for one frame,
tests/sim/test_sim_aps_fragmentation.py):

* a 300-octet APS-encrypted ZCL frame each way;
* a 360-octet one whose block 2 is lost on the air (every MAC attempt) and sent again;
* a transfer never finished (the receiver goes silent after block 1), then one to another
  device that finishes.

For every frame, besides tests/capture/tshark_view.py's fields and decrypted payloads: the
extended header (fragmentation, block number, an ack's bitfield) and, on the frame that
completes a transfer, the frames of its blocks (resends included), their number and the
reassembled length, all read from zse capture's JSON; the reassembled payloads are tshark's
"Reassembled ZigBee APS" data. tshark reads in one pass here (zse capture is one pass: the
earlier blocks' "reassembled in" of ``tshark -2`` is not shown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zigpy.types as t
from zigpy.exceptions import DeliveryError

from tests.capture.tshark_view import compare, key_options, tshark_fields
from tests.sim.test_sim_aps_fragmentation import (
    DEVICE_EP,
    ESI_EP,
    MESSAGING,
    PRICE,
    SE_PROFILE,
    Dropper,
    block,
    block_ack,
    esi_sends,
    han,
    reassembled,
    zcl,
)
from tests.sim.test_sim_security import Tap
from zse.capture import Decoded, KeyRing, read_key_file
from zse.capture.output import frame_fields
from zse.sim import Air, VirtualClockLoop

pytestmark = pytest.mark.oracle

FRAGMENT_FIELDS = (
    "frame.number",
    "zbee_aps.fragmentation",
    "zbee_aps.block",
    "zbee_aps.block_acks",
    "zbee_aps.fragment",
    "zbee_aps.fragment.count",
    "zbee_aps.reassembled.length",
)
_FRAGMENTATION = {"first block": "0x01", "later block": "0x02"}


def on_the_air(story: Callable[[Tap], Awaitable[Air]], path: Path) -> tuple[Path, KeyRing]:
    """Run ``story`` on the simulated air (virtual time) and write its capture to ``path``;
    the keys the air's nodes installed."""

    async def run() -> Air:
        tap = Dropper()
        air = await story(tap)
        await asyncio.sleep(0.1)
        path.write_bytes(tap.buffer.getvalue())
        return air

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        air = runner.run(run())
    return path, KeyRing(read_key_file(entry.line() for entry in air.keys))


def fragment_row(frame: Decoded) -> dict[str, str]:
    """FRAGMENT_FIELDS from zse capture's JSON of ``frame``, in tshark's notation."""
    fields = frame_fields(frame)
    aps: dict[str, Any] = fields.get("aps", {})
    whole: dict[str, Any] = fields.get("reassembled", {})
    fragmented = "fragmentation" in aps
    octet = aps.get("blocks", aps.get("block"))  # the first block's octet is the count
    return {
        "frame.number": str(fields["frame"]),
        "zbee_aps.fragmentation": _FRAGMENTATION[aps["fragmentation"]] if fragmented else "",
        "zbee_aps.block": str(octet) if fragmented else "",
        "zbee_aps.block_acks": aps.get("block_acks", ""),
        "zbee_aps.fragment": ",".join(map(str, whole.get("frames", []))),
        "zbee_aps.fragment.count": str(len(whole["frames"])) if whole else "",
        "zbee_aps.reassembled.length": str(whole.get("length", "")),
    }


def agree(capture: Path, ring: KeyRing) -> list[Decoded]:
    """zse capture and tshark agree on every frame: tshark_view's fields and decrypted
    payloads, FRAGMENT_FIELDS, and the reassembled payloads."""
    keys = {key.label: key.key for key in ring.keys}
    frames = compare(capture, ring, keys)
    theirs = tshark_fields(capture, key_options(keys), FRAGMENT_FIELDS)
    assert [fragment_row(frame) for frame in frames] == theirs
    lines = [f'"{key.hex().upper()}","Normal","{label}"' for label, key in keys.items()]
    whole = [frame.reassembled.payload for frame in frames if frame.reassembled is not None]
    assert whole == reassembled(capture, lines)
    return frames


def blocks_of(frames: list[Decoded], counter: int) -> list[Decoded]:
    return [
        frame
        for frame in frames
        if frame.aps is not None
        and frame.aps.frame_type == 0
        and frame.aps.counter == counter
        and frame.aps.fragmentation
    ]


def test_300_octets_both_ways_aps_encrypted_agree_with_tshark(tmp_path: Path) -> None:
    """Five blocks each way, each acked: each block shows its number (the first its count
    of 5) and no ZCL frame; each ack its window and bitfield 0xff; the fifth block's frame
    shows the 300 octets reassembled and the ZCL frame decoded from them, the bytes sent."""
    down = zcl(0x21, 300)
    up = bytes(range(256)) + b"up" * 20 + b"!"

    async def story(tap: Tap) -> Air:
        air, esi, (dev, _) = await han(73, capture=tap)
        device = esi.get_device(nwk=t.NWK(dev.nwk or 0))
        await esi.request(
            device, SE_PROFILE, MESSAGING, ESI_EP, DEVICE_EP, 0x21, down,
            expect_reply=False, aps_encryption=True,
        )  # fmt: skip
        await dev.endpoints[1].send(0x0000, ESI_EP, PRICE, 0x00, up, encrypt=True)
        return air

    frames = agree(*on_the_air(story, tmp_path / "both-ways.pcap"))
    wholes = [frame for frame in frames if frame.reassembled is not None]
    payloads = [w.reassembled.payload for w in wholes if w.reassembled]
    assert [payloads[0], payloads[1][3:]] == [down, up]  # the device's ZCL header: its own
    for whole in wholes:
        assert whole.aps is not None
        sent = blocks_of(frames, whole.aps.counter or 0)
        assert [b.aps.block for b in sent if b.aps] == [5, 1, 2, 3, 4]
        assert [b.command for b in sent[:4]] == [None] * 4  # no block decoded as a ZCL frame
        assert whole is sent[-1]
        assert whole.reassembled is not None
        assert whole.reassembled.frames == tuple(b.record.number for b in sent)
        assert all(s.key is not None for b in sent for s in b.security)
    assert [(w.command or {}).get("tsn") for w in wholes] == [0x21, payloads[1][1]]
    assert (wholes[0].command or {}).get("command") == "display_message"
    assert (wholes[1].command or {}).get("command") == "get_current_price"
    acks = [f for f in frames if f.aps and f.aps.frame_type == 2 and f.aps.fragmentation]
    assert [(a.aps.block, a.aps.block_acks) for a in acks if a.aps] == [
        (n, 0xFF) for n in range(5)
    ] * 2


def test_a_lost_block_sent_again_agrees_with_tshark(tmp_path: Path) -> None:
    """Block 2 of 6 is lost on the air four times, then sent again: the five copies are
    listed among the transfer's frames (as tshark lists them), the first kept; the 360
    octets are reassembled once, on block 5's frame."""
    sent = zcl(9, 360)

    async def story(tap: Tap) -> Air:
        air, esi, (dev, _) = await han(74, capture=tap)
        assert isinstance(tap, Dropper)
        tap.key = esi.radio.network_key or b""
        tap.lose(air, esi.radio, dev, block(2))
        await esi_sends(esi, dev, sent, ack=True, encrypt=True)
        return air

    frames = agree(*on_the_air(story, tmp_path / "lost-block.pcap"))
    wholes = [frame for frame in frames if frame.reassembled is not None]
    assert len(wholes) == 1
    whole = wholes[0].reassembled
    assert whole is not None
    assert whole.payload == sent
    assert whole.blocks == 6
    assert wholes[0].aps is not None
    blocks = blocks_of(frames, wholes[0].aps.counter or 0)
    assert [b.aps.block for b in blocks if b.aps] == [6, 1, 2, 2, 2, 2, 2, 3, 4, 5]
    assert whole.frames == tuple(b.record.number for b in blocks)


def test_an_unfinished_transfer_is_never_decoded_and_the_next_one_is(tmp_path: Path) -> None:
    """The receiver goes silent after acknowledging block 1: block 2 is sent (and lost) 16
    times and the send fails; nothing of that transfer is reassembled or decoded, by zse or
    tshark. A 300-octet transfer to the other device then completes."""

    async def story(tap: Tap) -> Air:
        air, esi, (dev, other) = await han(76, capture=tap)
        assert isinstance(tap, Dropper)
        tap.key = esi.radio.network_key or b""
        loop = asyncio.get_running_loop()

        def gone(aps: Any) -> bool:
            if block_ack(1)(aps):
                loop.call_soon(air.silence, dev)
            return False

        tap.lose(air, dev, esi.radio, gone)
        with pytest.raises(DeliveryError):
            await esi_sends(esi, dev, zcl(4, 300), ack=True, encrypt=True)
        await esi_sends(esi, other, zcl(5, 300), ack=True, encrypt=True)
        return air

    capture, ring = on_the_air(story, tmp_path / "unfinished.pcap")
    frames = agree(capture, ring)
    data = [f for f in frames if f.aps and f.aps.frame_type == 0 and f.aps.fragmentation]
    first, second = data[0].aps, data[-1].aps
    assert first is not None
    assert second is not None
    unfinished = blocks_of(frames, first.counter or 0)
    assert [b.aps.block for b in unfinished if b.aps] == [5, 1] + [2] * 16
    assert all(b.reassembled is None and b.command is None for b in unfinished)
    assert data[-1].reassembled is not None
    assert (data[-1].command or {}).get("tsn") == 5

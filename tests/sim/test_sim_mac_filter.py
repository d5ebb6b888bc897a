"""The simulated MAC's receive filter on short addresses (IEEE 802.15.4-2006 7.5.6.2): a frame
whose destination is a short address is accepted only by the node of that address on the
destination PAN (or on any PAN for the broadcast PAN id 0xFFFF), not by every node of the PAN
that hears it. Every unicast of the suite relies on it, but a stack unicast a wrong node took
in is dropped by that node's NWK layer (another NWK destination), so only a test at the MAC
tells; these send raw MAC frames and watch what each node's MAC hands up (``on_interpan``) and
the air's ``delivered`` count."""

from __future__ import annotations

import asyncio

import zigpy.types as t

from tests.sim.test_sim_faults_capture import han
from zse.sim import Air, RawFrame, SimControllerApplication, SimDevice
from zse.sim import _frames as f

#: a short address no node holds: addresses are assigned below 0xFFF8 (ZB 3.6.1.7)
UNUSED = 0xFFFA


def _frame(seq: int, dst_pan: int, dst: int, src_pan: int, src: int) -> bytes:
    """A MAC data frame asking for an acknowledgement, short addresses at both ends."""
    header = f.MacHeader(f.MAC_DATA, seq, dst_pan, dst, src_pan, src, True)
    return f.encode_mac(header, b"zse mac filter")


def _heard(*nodes: SimDevice | SimControllerApplication) -> list[list[bytes]]:
    """Per node, the raw frames its MAC accepts from now on."""
    boxes: list[list[bytes]] = []
    for node in nodes:
        box: list[bytes] = []

        def keep(frame: RawFrame, box: list[bytes] = box) -> None:
            box.append(frame.data)

        node.on_interpan(keep)
        boxes.append(box)
    return boxes


async def _send(
    air: Air, sender: SimDevice | SimControllerApplication, frame: bytes
) -> tuple[bool, int]:
    """Send ``frame``: whether it was acknowledged, and to how many nodes the air delivered
    it."""
    before = air.stats.delivered
    acked = await sender.send_interpan(frame)
    await asyncio.sleep(0.01)
    return acked, air.stats.delivered - before


async def test_a_unicast_to_a_short_address_is_accepted_by_that_node_only() -> None:
    """The ESI's frame to device A's short address, on their PAN and channel, reaches A and
    is acknowledged; device B, on the same PAN and channel and hearing it, does not take it
    in, nor does A take B's; a short address nobody holds is taken by none and not
    acknowledged."""
    air, esi, (a, b) = await han(31)
    pan = esi.state.network_info.pan_id
    assert a.nwk is not None
    assert b.nwk is not None
    assert a.channel == b.channel == esi.radio.channel
    assert a.pan_id == b.pan_id == pan
    got_esi, got_a, got_b = _heard(esi, a, b)

    to_a = _frame(1, pan, a.nwk, pan, 0x0000)
    assert await _send(air, esi, to_a) == (True, 1)  # acknowledged, one delivery
    assert got_a == [to_a]
    assert got_b == []

    to_b = _frame(2, pan, b.nwk, pan, 0x0000)
    assert await _send(air, esi, to_b) == (True, 1)
    assert got_a == [to_a]
    assert got_b == [to_b]

    # A to the ESI's short address 0x0000: the ESI only, not B
    to_esi = _frame(3, pan, 0x0000, pan, a.nwk)
    assert await _send(air, a, to_esi) == (True, 1)
    assert got_esi == [to_esi]
    assert got_b == [to_b]

    nobody = _frame(4, pan, UNUSED, pan, 0x0000)
    assert await _send(air, esi, nobody) == (False, 0)
    assert (got_esi, got_a, got_b) == ([to_esi], [to_a], [to_b])


async def test_a_short_address_on_the_broadcast_pan_is_accepted_by_that_node_only() -> None:
    """Destination PAN 0xFFFF with a short address (7.5.6.2: the PAN id may be the broadcast
    one, the short address must still be the node's): A accepts it, B does not."""
    air, esi, (a, b) = await han(32)
    pan = esi.state.network_info.pan_id
    assert a.nwk is not None
    assert b.nwk is not None
    got_a, got_b = _heard(a, b)
    frame = _frame(5, 0xFFFF, a.nwk, pan, 0x0000)
    assert await _send(air, esi, frame) == (True, 1)
    assert got_a == [frame]
    assert got_b == []


async def test_the_same_short_address_on_another_pan_of_the_channel_is_not_accepted() -> None:
    """Two networks on one channel both have a coordinator at 0x0000: a frame to 0x0000 on
    one PAN is taken by that PAN's coordinator only."""
    air, esi, (a, b) = await han(33)
    other = await air.coordinator(channel=20, pan_id=esi.state.network_info.pan_id ^ 0x0100)
    await asyncio.sleep(1)
    pan, other_pan = esi.state.network_info.pan_id, other.state.network_info.pan_id
    assert pan != other_pan
    assert other.radio.nwk == esi.radio.nwk == 0x0000
    assert a.nwk is not None
    got_esi, got_other, got_b = _heard(esi, other, b)

    to_other = _frame(6, other_pan, 0x0000, pan, a.nwk)
    assert await _send(air, a, to_other) == (True, 1)
    assert got_other == [to_other]
    assert got_esi == []

    to_esi = _frame(7, pan, 0x0000, pan, a.nwk)
    assert await _send(air, a, to_esi) == (True, 1)
    assert got_esi == [to_esi]
    assert got_other == [to_other]
    assert got_b == []


async def test_a_frame_for_another_pan_is_not_accepted_by_extended_address_or_broadcast() -> None:
    """The PAN id filter (7.5.6.2, third level): a frame to device A's extended address is
    taken by A on A's PAN only, not when it names another PAN; a broadcast to short address
    0xFFFF on another PAN of the channel is taken by no node of this PAN."""
    air, esi, (a, b) = await han(32)
    pan = esi.state.network_info.pan_id
    other = pan ^ 0x0100
    got_esi, got_a, got_b = _heard(esi, a, b)

    def frame(seq: int, dst_pan: int, dst: int | t.EUI64, ack: bool) -> bytes:
        header = f.MacHeader(f.MAC_DATA, seq, dst_pan, dst, pan, 0x0000, ack)
        return f.encode_mac(header, b"zse pan filter")

    assert await _send(air, esi, frame(1, other, a.ieee, True)) == (False, 0)
    assert await _send(air, esi, frame(2, other, 0xFFFF, False)) == (True, 0)  # sent, taken by none
    assert got_esi == got_a == got_b == []
    to_a = frame(3, pan, a.ieee, True)
    assert await _send(air, esi, to_a) == (True, 1)  # on its own PAN: taken
    assert got_a == [to_a]

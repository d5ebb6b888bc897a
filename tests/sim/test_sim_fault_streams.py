"""The air's seeded faults follow each link, not the order frames reach the air: two senders
whose frames interleave differently meet the same losses, duplicates, lost acknowledgements
and delays, frame for frame, under the same seed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import zigpy.types as t

from zse.sim import Air, RawFrame, SimDevice
from zse.sim import _frames as f
from zse.sim._draws import ACK_LOSS, LOSS, REORDER, FaultDraws, chance

CHANNEL = 15
FRAMES = 40


def _frame(sender: SimDevice, dst: t.EUI64 | int, seq: int, ack: bool) -> bytes:
    """A MAC data frame from ``sender`` (on no PAN) whose payload names it and ``seq``."""
    hdr = f.MacHeader(f.MAC_DATA, seq, f.BROADCAST_PAN, dst, f.BROADCAST_PAN, sender.ieee, ack)
    return f.encode_mac(hdr, bytes(sender.ieee.serialize()) + bytes((seq,)))


async def _scenario(seed: int, *, a_first: bool, broadcast: bool = False) -> dict[str, Any]:
    """Senders A and B each put FRAMES frames on the air, a second apart, for receiver R;
    ``a_first`` says whose frame of each second goes first (1 ms apart, virtual time).
    Returns, per sender, what R received (payload, virtual time since it was sent) and
    which of its sends were acknowledged."""
    air = Air(seed=seed)
    air.set_faults(loss=0.4, ack_loss=0.3, duplicate=0.2, reorder=0.004)
    a, b, r = (air.device(f"00:0d:6f:00:0c:00:0f:0{i}", channel=CHANNEL) for i in (1, 2, 3))
    for node in (a, b, r):
        node.listen()
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0
    sent: dict[bytes, float] = {}
    got: dict[str, list[tuple[bytes, float]]] = defaultdict(list)

    def heard(frame: RawFrame) -> None:
        _, payload = f.decode_mac(frame.data)
        got[payload[:8].hex()].append((payload, round(frame.timestamp - sent[payload], 9)))

    r.on_interpan(heard)

    async def send(node: SimDevice, offset: float) -> list[bool]:
        results = []
        dst = f.BROADCAST_SHORT if broadcast else r.ieee
        for seq in range(FRAMES):
            await asyncio.sleep(start + seq + offset - loop.time())
            frame = _frame(node, dst, seq, ack=not broadcast)
            sent[frame[-9:]] = loop.time()
            results.append(await node.send_interpan(frame))
        return results

    early, late = (0.0, 0.001) if a_first else (0.001, 0.0)
    acked_a, acked_b = await asyncio.gather(send(a, early), send(b, late))
    await asyncio.sleep(5)
    return {
        "A": (got[bytes(a.ieee.serialize()).hex()], acked_a),
        "B": (got[bytes(b.ieee.serialize()).hex()], acked_b),
        "lost": air.stats.lost,
        "acks_lost": air.stats.acks_lost,
        "duplicated": air.stats.duplicated,
    }


async def test_each_link_meets_the_same_faults_whatever_the_order_of_its_senders() -> None:
    a_first = await _scenario(5, a_first=True)
    b_first = await _scenario(5, a_first=False)
    # the faults bite on both links (so the comparison below is not of two clean runs)
    for sender in ("A", "B"):
        received, acked = a_first[sender]
        seqs = [payload[-1] for payload, _ in received]
        assert len(set(seqs)) < FRAMES  # some frames never arrived (every attempt lost)
        assert len(seqs) > len(set(seqs))  # some arrived twice (MAC retry or duplicate)
        assert not all(acked)  # some sends failed (every attempt or its ack lost)
        assert len({delay for _, delay in received}) > 1  # reorder delays vary
    assert a_first == b_first


async def test_a_broadcast_meets_each_receivers_faults_whatever_the_order() -> None:
    a_first = await _scenario(6, a_first=True, broadcast=True)
    b_first = await _scenario(6, a_first=False, broadcast=True)
    for sender in ("A", "B"):
        received, acked = a_first[sender]
        assert 0 < len({payload for payload, _ in received}) < FRAMES
        assert all(acked)  # a broadcast is never acknowledged, always "sent"
    assert a_first == b_first


class _Node:
    def __init__(self, ieee: str) -> None:
        self.ieee = t.EUI64.convert(ieee)


A, B = _Node("00:0d:6f:00:0c:00:0f:01"), _Node("00:0d:6f:00:0c:00:0f:02")


def test_a_seed_gives_the_same_draws_in_every_process() -> None:
    """The streams are seeded from BLAKE2b of (seed, EUI-64s), not from Python's ``hash``
    (salted per process): these values are the same in any process and on any machine."""
    draws = FaultDraws(5)
    assert [round(chance(draws.unicast(A, B), LOSS), 6) for _ in range(3)] == [
        0.749744,
        0.340588,
        0.551251,
    ]
    assert [round(chance(draws.to(draws.broadcast(A), B), REORDER), 6) for _ in range(2)] == [
        0.597,
        0.849433,
    ]


def test_the_draws_are_uniform_and_each_kind_and_direction_independent() -> None:
    draws = FaultDraws(7)
    n = 20_000
    there = [draws.unicast(A, B) for _ in range(n)]
    back = [draws.unicast(B, A) for _ in range(n)]
    loss = [chance(v, LOSS) for v in there]
    assert abs(sum(loss) / n - 0.5) < 0.01
    assert abs(sum(x < 0.1 for x in loss) / n - 0.1) < 0.01
    for other in ([chance(v, ACK_LOSS) for v in there], [chance(v, LOSS) for v in back]):
        both = sum(x < 0.5 and y < 0.5 for x, y in zip(loss, other, strict=True))
        assert abs(both / n - 0.25) < 0.015

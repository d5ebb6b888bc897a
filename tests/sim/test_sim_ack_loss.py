"""The ``ack_loss`` fault and MAC duplicate detection (IEEE 802.15.4-2006 7.2.1.2, 7.5.6.2,
7.5.6.4.3). The air never lost a MAC acknowledgement: a frame was either delivered and
acknowledged or lost and reported failed, so "delivered yet reported failed" could not be
tested. Now an acknowledgement can be lost: the sender retries the frame it delivered, the
receiver's MAC drops the copies by source and sequence number, and a send whose every
acknowledgement is lost fails although the frame arrived."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.exceptions import DeliveryError

from tests.interpan.tshark_json import dissect
from tests.sim.test_sim_faults_capture import (
    DISPLAY_MESSAGE,
    MESSAGING,
    PRICE,
    PUBLISH_PRICE,
    esi_send,
    han,
    inbox,
)
from zse.sim import Faults, run
from zse.sim import _frames as f
from zse.sim._node import MAC_DUPLICATE_LIFETIME


def _drops(stats: object) -> dict[str, int]:
    return {name: value for name, value in vars(stats).items() if value}


def test_ack_loss_is_a_probability() -> None:
    with pytest.raises(ValueError, match="ack_loss"):
        Faults(ack_loss=1.5)


async def test_every_ack_lost_the_send_fails_yet_the_frame_arrived_once() -> None:
    """The air never lost an acknowledgement, so a failed send never reached the device; now
    all four acknowledgements are lost: the send fails, the device got the frame once and its
    MAC dropped the three retransmissions."""
    air, esi, (dev, _) = await han(50)
    box = inbox(dev, MESSAGING)
    air.set_link_faults(esi.radio, dev, ack_loss=1.0, both_ways=False)
    frames, acks = air.stats.transmitted, air.stats.acknowledgements
    with pytest.raises(DeliveryError):
        await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 5)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [5]
    attempts = 1 + air.mac_retries
    assert air.stats.transmitted - frames == attempts
    # each attempt was acknowledged on the air; the sender missed every acknowledgement
    assert air.stats.acknowledgements - acks == attempts
    assert air.stats.acks_lost == attempts
    assert _drops(dev.stats) == {"mac_duplicates": air.mac_retries}


async def test_a_lost_ack_is_retried_and_the_next_one_ends_the_send(tmp_path: Path) -> None:
    """Ack loss 1/2 (seeded): the sends succeed after retries, every data frame asked for an
    acknowledgement, each retransmission carries its frame's sequence number, and the
    device takes each frame once (what arrives more than once is dropped by its MAC, never
    by NWK replay protection or APS duplicate rejection)."""
    path = tmp_path / "ack_loss.pcap"
    air, esi, (dev, _) = await han(51, capture=str(path))
    box = inbox(dev, PRICE)
    start = air.stats.frames
    air.set_link_faults(esi.radio, dev, ack_loss=0.5, both_ways=False)
    sent = []
    for tsn in range(20):
        try:
            await esi_send(esi, dev, PRICE, 0x00, PUBLISH_PRICE, tsn)
        except DeliveryError:
            continue
        sent.append(tsn)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == list(range(20))
    assert len(sent) < 20  # Air(seed=51): some sends lost all four acknowledgements
    assert air.stats.acks_lost > 20 - len(sent)  # and some were retried to success
    assert _drops(dev.stats) == {"mac_duplicates": air.stats.acks_lost - (20 - len(sent))}
    air.close()
    packets = dissect(path)[start:]
    for frame, ack in itertools.pairwise(packets):
        if frame["wpan.frame_type"] == ["0x0001"] and frame["wpan.ack_request"] == ["1"]:
            assert ack["wpan.frame_type"] == ["0x0002"]  # every attempt arrived
            assert ack["wpan.seq_no"] == frame["wpan.seq_no"]
    from_esi = [p["wpan.seq_no"][0] for p in packets if p.get("wpan.src16") == ["0x0000"]]
    assert len(from_esi) == len(sent) + air.stats.acks_lost  # one attempt per lost ack, and
    assert len(set(from_esi)) == 20  # its retransmissions repeat the frame's sequence number


async def test_with_air_time_the_retransmission_waits_and_is_still_a_duplicate() -> None:
    """With air time each retry waits macAckWaitDuration after its frame: milliseconds apart,
    within MAC duplicate detection's lifetime, so the MAC (not NWK replay protection) drops
    them."""
    air, esi, (dev, _) = await han(52, airtime=True)
    box = inbox(dev, MESSAGING)
    air.set_link_faults(esi.radio, dev, ack_loss=1.0, both_ways=False)
    with pytest.raises(DeliveryError):
        await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, 6)
    await asyncio.sleep(0.1)
    assert [m.tsn for m in box] == [6]
    assert _drops(dev.stats) == {"mac_duplicates": air.mac_retries}


async def test_mac_duplicate_detection_is_by_source_sequence_and_time() -> None:
    """A frame is a duplicate only with its source's sequence number and bytes, within
    MAC_DUPLICATE_LIFETIME of the last: another frame under the same sequence number (a
    sender that wrapped it) and the same frame later (a replay, for NWK security) pass."""
    air, _, (dev, _) = await han(53)
    got: list[bytes] = []
    dev.on_interpan(lambda frame: got.append(frame.data))
    attacker = air.device("00:0d:6f:00:0c:00:00:99", channel=20)
    attacker.listen()
    assert dev.pan_id is not None
    assert dev.nwk is not None

    def frame(seq: int, body: bytes) -> bytes:
        header = f.MacHeader(f.MAC_DATA, seq, dev.pan_id, dev.nwk, dev.pan_id, 0x4242, True)
        return f.encode_mac(header, body)

    first = frame(7, b"\x01\x02")
    for data in (first, first, frame(7, b"\x03"), frame(8, b"\x03")):
        assert await attacker.send_interpan(data)
    assert got == [first, frame(7, b"\x03"), frame(8, b"\x03")]
    assert dev.stats.mac_duplicates == 1
    await asyncio.sleep(MAC_DUPLICATE_LIFETIME / 2)  # a late retransmission: still dropped
    assert await attacker.send_interpan(frame(8, b"\x03"))
    assert (len(got), dev.stats.mac_duplicates) == (3, 2)
    await asyncio.sleep(MAC_DUPLICATE_LIFETIME * 1.5)  # forgotten since: taken
    assert await attacker.send_interpan(frame(8, b"\x03"))
    assert (len(got), dev.stats.mac_duplicates) == (4, 2)


async def _at_most_once(seed: int, ack_loss: float, loss: float, sends: int) -> None:
    air, esi, (dev,) = await han(seed, n=1)
    box = inbox(dev, MESSAGING)
    air.set_link_faults(esi.radio, dev, Faults(ack_loss=ack_loss, loss=loss))
    succeeded = []
    for tsn in range(sends):
        try:
            await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
        except DeliveryError:
            continue
        succeeded.append(tsn)
    await asyncio.sleep(0.1)
    received = [m.tsn for m in box]
    assert len(received) == len(set(received))  # at most once
    assert set(succeeded) <= set(received)  # an acknowledged frame arrived
    assert received == sorted(received)
    # copies are dropped by the MAC, never by NWK replay protection or APS duplicate rejection
    assert dev.stats.nwk_stale_counter == dev.stats.aps_duplicates == 0
    air.close()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    ack_loss=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    loss=st.sampled_from([0.0, 0.3]),
    sends=st.integers(1, 6),
)
def test_a_frame_reaches_the_application_at_most_once(
    seed: int, ack_loss: float, loss: float, sends: int
) -> None:
    """Whatever acknowledgements and attempts are lost, the device's application gets each
    frame at most once, and every frame whose send succeeded."""
    run(_at_most_once(seed, ack_loss, loss, sends))


async def _capture(seed: int) -> bytes:
    capture = io.BytesIO()
    air, esi, (dev,) = await han(seed, capture=capture, n=1)
    air.set_faults(ack_loss=0.5)
    for tsn in range(8):
        with contextlib.suppress(DeliveryError):
            await esi_send(esi, dev, MESSAGING, 0x00, DISPLAY_MESSAGE, tsn)
    await asyncio.sleep(1)
    air.close()
    return capture.getvalue()


def test_ack_loss_is_seeded() -> None:
    """The same seed loses the same acknowledgements: byte-identical captures."""
    assert run(_capture(54)) == run(_capture(54))
    assert run(_capture(54)) != run(_capture(55))


async def test_mac_duplicate_detection_keeps_only_sources_heard_within_its_lifetime() -> None:
    """Every spoofed source of a flood left its last frame in the MAC's duplicate table for
    good (about 1 KB a source in ``benchmarks/interpan_flood.py``); what is past
    MAC_DUPLICATE_LIFETIME can never match again and goes, and detection still works."""
    air, _, (dev, _) = await han(54)
    attacker = air.device("00:0d:6f:00:0c:00:00:98", channel=20)
    attacker.listen()
    assert dev.pan_id is not None
    assert dev.nwk is not None

    def frame(source: int, body: bytes) -> bytes:
        header = f.MacHeader(f.MAC_DATA, 1, dev.pan_id, dev.nwk, dev.pan_id, source, True)
        return f.encode_mac(header, body)

    for source in range(0x1000, 0x1000 + 500):
        assert await attacker.send_interpan(frame(source, b"\x01" * 100))
        await asyncio.sleep(MAC_DUPLICATE_LIFETIME / 4)
    assert len(dev._mac_last) <= 8  # the sources of the last lifetime, and a few behind
    assert await attacker.send_interpan(frame(0x1000 + 499, b"\x01" * 100))
    assert dev.stats.mac_duplicates == 1  # the latest source's copy is still caught

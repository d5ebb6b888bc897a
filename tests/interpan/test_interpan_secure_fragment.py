"""APS-secured inter-PAN frames and inter-PAN fragments, sans-IO: failures dropped and counted,
replays refused, a fragment flood bounded, a message that never completes forgotten."""

from __future__ import annotations

import contextlib
import struct
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zigpy.types import EUI64

from zse.errors import DecodeError, InvalidFrame
from zse.interpan._codec import DeliveryMode, InterPanFrame
from zse.interpan.fragment import (
    FragmentFailed,
    FragmentSender,
    Reassembler,
    fragment_response,
    is_fragment,
    is_fragment_response,
    split,
)
from zse.interpan.secure import InterPanSecurity, open_frame, seal_frame
from zse.security import ENC_MIC_32, AuxHeader, KeyId, nonce, split_interpan_aps
from zse.security.ccm import ccm_encrypt

HUB = EUI64.convert("00:0d:6f:00:00:00:00:01")
HHT = EUI64.convert("00:0d:6f:00:00:00:00:02")
KEY = bytes(range(16))


def frame(payload: bytes = b"\x11\x01\x02\x07\x00data", src: EUI64 = HHT) -> InterPanFrame:
    return InterPanFrame(
        src_pan_id=0x2222,
        src_ieee=src,
        dst_pan_id=0x1111,
        dst_address=HUB if src == HHT else HHT,
        delivery_mode=DeliveryMode.UNICAST,
        cluster_id=0x0704,
        payload=payload,
    )


def test_sealed_frame_round_trips_on_the_air_and_fails_counted():
    hht, hub = InterPanSecurity(), InterPanSecurity()
    hht.add_key(HUB, KEY)
    sealed = hht.seal(frame())
    on_air = InterPanFrame.from_bytes(sealed.to_bytes())
    assert on_air.aps_security
    assert b"data" not in on_air.payload
    assert hub.open(on_air) is None  # no key yet
    hub.add_key(HHT, KEY)
    opened = hub.open(on_air)
    assert opened is not None
    assert (opened.payload, opened.verified) == (frame().payload, True)
    assert hub.open(on_air) is None  # the same counter again: a replay
    tampered = replace(on_air, payload=on_air.payload[:-1] + bytes([on_air.payload[-1] ^ 1]))
    assert hub.open(hht.seal(frame())) is not None
    assert hub.open(tampered) is None
    spoofed = replace(hht.seal(frame()), src_ieee=EUI64.convert("00:0d:6f:00:00:00:00:09"))
    assert hub.open(spoofed) is None  # no key for that source
    assert hub.dropped == {
        "no_key": 2,
        "stale_counter": 2,  # the replay, and the tampered frame's old counter
        "bad_mic": 0,
        "invalid": 0,
        "unsecured": 0,
    }
    wrong_key = seal_frame(frame(), link_key=bytes(16), counter=99)
    assert hub.open(wrong_key) is None
    assert hub.dropped["bad_mic"] == 1
    assert hub.open(frame()) is None  # not secured at all: refused, and counted as such
    assert (hub.dropped["unsecured"], hub.dropped["invalid"]) == (1, 0)
    # a new key restarts the counters
    hub.add_key(HHT, KEY)
    assert hub.open(on_air) is not None


def test_only_unicast_frames_are_secured():
    broadcast = InterPanFrame(
        src_pan_id=1,
        src_ieee=HHT,
        dst_pan_id=0xFFFF,
        dst_address=0xFFFF,
        delivery_mode=DeliveryMode.BROADCAST,
        cluster_id=0x0700,
        payload=b"\x01\x00\x00",
    )
    with pytest.raises(ValueError, match="unicast"):
        seal_frame(broadcast, link_key=KEY, counter=0)
    with pytest.raises(ValueError, match="fragment it"):
        seal_frame(frame(b"x" * 80), link_key=KEY, counter=0)


@given(st.binary(max_size=40))
def test_garbage_secured_payload_raises_decode_error(payload):
    garbage = replace(frame(), aps_security=True, payload=payload)
    with contextlib.suppress(DecodeError):
        open_frame(garbage, link_key=KEY)


def test_fragments_put_together_in_order_with_repeats():
    message = bytes(range(200))
    sender = FragmentSender(message, size=70, timeout=2)
    receiver = Reassembler()
    fragment = sender.start(0)
    whole = None
    now = 0.0
    while fragment is not None:
        assert is_fragment(fragment)
        response, whole = receiver.receive(b"hht", fragment, now)
        if fragment[1] == 1:  # the response to fragment 1 is lost: it comes again
            fragment = sender.handle_timeout(now + 2)
            response, again = receiver.receive(b"hht", fragment, now + 2)
            assert again is None
        assert is_fragment_response(response)
        fragment = sender.receive(response, now)
        now += 0.1
    assert whole == message
    assert sender.done
    assert receiver.counts["completed"] == 1


def test_sender_gives_up_and_refusals_fail():
    sender = FragmentSender(b"x" * 100, size=40, timeout=1, attempts=2)
    sender.start(0)
    sender.handle_timeout(1)
    with pytest.raises(FragmentFailed, match="no response"):
        sender.handle_timeout(2)
    sender = FragmentSender(b"x" * 100, size=40)
    sender.start(0)
    with pytest.raises(FragmentFailed, match="refused"):
        sender.receive(fragment_response(0, ok=False), 0)


def test_fragment_flood_is_bounded_and_an_unfinished_message_expires():
    receiver = Reassembler(max_partners=4, timeout=5)
    first = split(b"y" * 100, 40)[0]
    for source in range(10_000):
        response, _ = receiver.receive(source.to_bytes(8, "little"), first, 0.0)
    assert len(receiver) == 4
    assert receiver.counts["refused_full"] == 10_000 - 4
    assert response == fragment_response(0, ok=False)
    assert receiver.next_deadline() == 5.0
    # nobody finishes: forgotten at the deadline, and the table is free for the terminal
    assert receiver.handle_timeout(5.0) == 4
    assert receiver.counts["expired"] == 4
    message = b"z" * 100
    whole = None
    for fragment in split(message, 40):
        _, whole = receiver.receive(b"terminal", fragment, 6.0)
    assert whole == message


def test_fragment_limits():
    receiver = Reassembler(max_length=100)
    fragments = split(b"q" * 150, 60)
    receiver.receive(b"a", fragments[0], 0)
    response, _ = receiver.receive(b"a", fragments[1], 0)
    assert response == fragment_response(1, ok=False)
    assert receiver.counts["refused_length"] == 1
    response, _ = receiver.receive(b"b", fragments[2], 0)  # no start
    assert response == fragment_response(2, ok=False)
    assert receiver.counts["out_of_order"] == 1


@given(st.binary(min_size=4, max_size=40), st.floats(0, 100))
def test_garbage_fragments_never_raise(payload, now):
    receiver = Reassembler()
    fragment = bytes((0, payload[1], payload[2], len(payload) - 4)) + payload[4:]
    response, _ = receiver.receive(b"x", fragment, now)
    assert is_fragment_response(response)


def test_a_sniffer_splits_and_opens_a_secured_frame_as_zse_capture_does():
    sealed = seal_frame(frame(), link_key=KEY, counter=7)
    aps = sealed.to_bytes()[25:]  # after the MAC header and the stub NWK frame control
    split = split_interpan_aps(aps)
    assert split.aux.counter == 7
    assert split.open(KEY, int.from_bytes(bytes(HHT.serialize()), "little")) == frame().payload
    with pytest.raises(InvalidFrame):
        split_interpan_aps(frame().to_bytes()[25:])  # not secured


@given(st.binary(max_size=40))
def test_garbage_interpan_aps_splits_raise_decode_errors(data):
    with contextlib.suppress(DecodeError):
        split_interpan_aps(data)


def test_silicon_labs_header_without_extended_nonce_round_trips():
    """Silicon Labs' form (5-octet auxiliary header, nonce source = MAC source) is accepted,
    and sent when asked for (issue #20.4); a carried source must be the MAC source."""
    hht, hub = InterPanSecurity(extended_nonce=False), InterPanSecurity()
    hht.add_key(HUB, KEY)
    hub.add_key(HHT, KEY)
    short = hht.seal(frame())
    long = seal_frame(frame(), link_key=KEY, counter=hht.counter)
    assert len(long.payload) - len(short.payload) == 8
    assert short.payload[0] == 0x00  # security control: data key, no extended nonce, level 0
    assert long.payload[0] == 0x20
    on_air = InterPanFrame.from_bytes(short.to_bytes())
    opened = hub.open(on_air)
    assert opened is not None
    assert opened.payload == frame().payload
    assert hub.open(InterPanFrame.from_bytes(long.to_bytes())) is not None
    # the same 5-octet frame heard from another MAC source does not verify: the nonce differs
    other = EUI64.convert("00:0d:6f:00:00:00:00:09")
    hub.add_key(other, KEY)
    assert hub.open(replace(on_air, src_ieee=other)) is None
    assert hub.dropped["bad_mic"] == 1


def test_a_full_size_silicon_labs_secured_frame_is_opened():
    """Audit finding 1: Silicon Labs secures a unicast as long as its 9 octets of overhead fit
    the 125-octet MAC frame (``interpan.c``, ``handleApsSecurity``), so a secured frame may
    carry 95 octets: 86 of ZCL in its 5-octet form. Sealed here as its stack does (ZB 4.5:
    data key, no extended nonce, the MAC source in the nonce), zse opens it."""
    zcl = b"\x11\x01\x02\x07\x00" + bytes(range(81))
    assert len(zcl) == 86
    aux = AuxHeader(KeyId.DATA, 41, None)
    source = int.from_bytes(bytes(HHT.serialize()), "little")
    stub_aps = bytes((0x23,)) + struct.pack("<HH", 0x0704, 0x0109)
    sealed = ccm_encrypt(KEY, nonce(aux, source), stub_aps + aux.encode(ENC_MIC_32), zcl)
    payload = aux.encode(0) + sealed
    assert len(payload) == 95
    on_air = InterPanFrame.from_bytes(
        replace(frame(), payload=payload, aps_security=True).to_bytes()
    )
    hub = InterPanSecurity()
    hub.add_key(HHT, KEY)
    opened = hub.open(on_air)
    assert opened is not None
    assert (opened.payload, opened.verified) == (zcl, True)
